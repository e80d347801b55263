"""Never pay twice: a route whose submit is billed (BFL) is submitted once, whatever times out;
the task id is kept on the run at submit and a stored task can be collected after a restart;
a self-hosted call that timed out is not queued again. All through the executor the product
uses (and the run service for what the run log keeps), counted on the fakes' wire logs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from routes.config import parse_config
from routes.errors import RouteError, RouteTimeoutError
from routes.executor import RouteExecutor
from routes.model import ImageRequest
from routes.registry import build_route
from routes.tasks import SubmittedTask
from tests.conftest import RuntimeOpener
from tests.fakes.bfl import BflFake
from tests.fakes.server import FakeServer, RecordedRequest, Reply

SUBMIT = "/v1/flux-pro-1.1"
POLL = "/us1/v1/get_result"


class Sleeps:
    """The executor's backoff, recorded and not waited (the polls themselves take real time)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def bfl() -> Iterator[BflFake]:
    fake = BflFake().start()
    fake.statuses = []  # Ready at once, unless `ready_after` says the render is slow
    yield fake
    fake.stop()


def flux_config(bfl: BflFake, *, timeout: float, retries: int) -> str:
    return (
        f'[routes.flux]\nkind = "bfl"\nmodel = "flux-pro-1.1"\napi_key = "bfl-key"\n'
        f'base_url = "{bfl.server.url}"\npoll_interval_seconds = 0.02\n'
        f"timeout_seconds = {timeout}\nretries = {retries}\n"
    )


def flux(bfl: BflFake, *, timeout: float, retries: int) -> RouteExecutor:
    config = parse_config(flux_config(bfl, timeout=timeout, retries=retries), "r.toml")
    return RouteExecutor(build_route(config.routes["flux"]), sleep=Sleeps())


async def test_polling_that_outlives_the_timeout_submits_once_and_finishes_by_polling(
    bfl: BflFake,
) -> None:
    bfl.ready_after = 0.8  # slower than one attempt's timeout
    executor = flux(bfl, timeout=0.5, retries=2)
    reported: list[tuple[SubmittedTask, float]] = []

    def on_task(task: SubmittedTask) -> None:
        reported.append((task, time.time()))

    result = await executor.generate(ImageRequest(prompt="a fox in snow"), on_task=on_task)
    assert len(bfl.server.calls(SUBMIT)) == 1  # billed once
    assert result.images and result.response_id == "task-1"
    # Timed out at least once, then finished by polling the same task. On a loaded machine a
    # resumed attempt may time out too before the task is ready: how many is not the point.
    *waiting, last = result.attempts
    assert waiting and last.ok and not any(a.ok for a in waiting)
    assert {a.error_class for a in waiting} == {"timeout"}
    # The task was reported at submit, before the first poll, and the resumed attempt polled it.
    [(task, when)] = reported
    polls = bfl.server.calls(POLL)
    assert task.task_id == "task-1" and when <= polls[0].received_at
    assert {p.query["id"][0] for p in polls} == {"task-1"}
    assert polls[-1].received_at - polls[0].received_at >= 0.5
    assert result.cost.usd == pytest.approx(0.04)  # the one image, priced once
    await executor.route.aclose()


async def test_a_task_never_ready_fails_saying_its_id_and_is_never_resubmitted(
    bfl: BflFake,
) -> None:
    bfl.ready_after = 60.0
    executor = flux(bfl, timeout=0.3, retries=2)
    with pytest.raises(RouteTimeoutError) as info:
        await executor.generate(ImageRequest(prompt="a fox in snow"))
    error = info.value
    assert len(bfl.server.calls(SUBMIT)) == 1
    assert len(error.attempts) == 3 and error.request_id == "task-1"
    assert "task task-1, submitted once and never submitted again" in error.sentence()
    await executor.route.aclose()


async def test_a_submit_with_no_answer_is_not_sent_again(bfl: BflFake) -> None:
    bfl.submit_reply = Reply(200, {"id": "late", "polling_url": "http://x"}, delay=2.0)
    executor = flux(bfl, timeout=0.3, retries=2)
    with pytest.raises(RouteError) as info:
        await executor.generate(ImageRequest(prompt="a fox"))
    assert len(bfl.server.calls(SUBMIT)) == 1
    assert not info.value.retryable and "may have accepted" in info.value.sentence()
    await executor.route.aclose()


async def test_a_refused_submit_is_retried_because_nothing_was_billed(bfl: BflFake) -> None:
    answers = iter([Reply(503, "unavailable")])

    def submit(req: RecordedRequest) -> Reply:
        task = f"task-{len(bfl.server.calls(method='POST'))}"
        url = f"{bfl.server.url}{POLL}?id={task}"
        return next(answers, None) or Reply(200, {"id": task, "polling_url": url})

    bfl.server.on("POST", "/v1/{model}", submit)
    executor = flux(bfl, timeout=5, retries=2)
    result = await executor.generate(ImageRequest(prompt="a fox"))
    assert len(bfl.server.calls(SUBMIT)) == 2 and result.response_id == "task-2"
    await executor.route.aclose()


async def test_the_run_keeps_the_task_and_a_restart_collects_it_without_paying_again(
    bfl: BflFake, open_runtime: RuntimeOpener
) -> None:
    from bot.core.runs import RunOrigin

    bfl.ready_after = 0.6
    runtime = open_runtime(flux_config(bfl, timeout=0.2, retries=0))
    outcome = await runtime.runs.run("flux", ImageRequest(prompt="a fox"), RunOrigin())
    run = outcome.run
    assert run.status == "failed" and run.task_id == "task-1"
    assert run.task_polling_url == f"{bfl.server.url}{POLL}?id=task-1"
    assert run.task_submitted_at is not None and run.task_expires_at is not None
    assert "task-1" in (run.error_message or "")
    # Billed, cost unknown: counted as unpriced, never as $0.
    assert runtime.runlog.spend(run.created_at).unpriced_runs == 1

    # After a restart the stored task is collected: polled, never submitted again.
    runtime.runlog.update(run.id, status="interrupted")  # type: ignore[arg-type]
    [stored] = runtime.runlog.collectable_tasks()
    task = SubmittedTask(
        task_id=stored.task_id or "",
        polling_url=stored.task_polling_url,
        submitted_at=stored.task_submitted_at.timestamp(),  # type: ignore[union-attr]
        result_ttl_s=600,
    )
    restarted = flux(bfl, timeout=2, retries=1)
    result = await restarted.resume(ImageRequest(prompt="a fox"), task)
    assert result.images and result.response_id == "task-1"
    assert len(bfl.server.calls(SUBMIT)) == 1
    await restarted.route.aclose()


async def test_an_expired_task_is_not_polled(bfl: BflFake) -> None:
    executor = flux(bfl, timeout=2, retries=2)
    old = SubmittedTask("task-9", None, submitted_at=time.time() - 700, result_ttl_s=600)
    with pytest.raises(RouteError, match="expired"):
        await executor.resume(ImageRequest(prompt="x"), old)
    assert bfl.server.calls() == []
    await executor.route.aclose()


# -- self-hosted ---------------------------------------------------------------------------------


@pytest.fixture
def gpu() -> Iterator[FakeServer]:
    server = FakeServer("a1111").start()
    yield server
    server.stop()


async def test_a_self_hosted_call_that_timed_out_is_not_queued_again(gpu: FakeServer) -> None:
    slow: dict[str, Any] = {"images": [], "info": "{}"}
    gpu.on("POST", "/sdapi/v1/txt2img", Reply(200, slow, delay=2.0))
    text = (
        f'[routes.gpu]\nkind = "self-hosted"\nflavor = "automatic1111"\nbase_url = "{gpu.url}"\n'
        "timeout_seconds = 0.3\nretries = 2\n"
    )
    executor = RouteExecutor(
        build_route(parse_config(text, "r.toml").routes["gpu"]), sleep=Sleeps()
    )
    with pytest.raises(RouteTimeoutError) as info:
        await executor.generate(ImageRequest(prompt="a castle"))
    assert len(gpu.calls("/sdapi/v1/txt2img")) == 1
    assert not info.value.retryable
    assert "may still be working on it" in info.value.sentence()
    await executor.route.aclose()

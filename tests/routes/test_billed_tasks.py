"""Never pay twice: a route whose submit is billed (BFL) is submitted once, whatever times out;
the task id is kept on the run at submit and a stored task can be collected after a restart;
a self-hosted call that timed out is not queued again. All through the executor the product
uses (and the run service for what the run log keeps), counted on the fakes' wire logs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from routes.config import parse_config
from routes.errors import RouteError, RouteTimeoutError
from routes.executor import RouteExecutor
from routes.model import Attempt, ImageRequest
from routes.registry import build_route
from routes.tasks import SubmittedTask
from tests.conftest import RuntimeOpener
from tests.fakes.bfl import BflFake
from tests.fakes.self_hosted import A1111Fake
from tests.fakes.server import Reply
from tests.routes.conftest import Executor

SUBMIT = "/v1/flux-pro-1.1"
POLL = "/us1/v1/get_result"


@pytest.fixture
def bfl() -> Iterator[BflFake]:
    fake = BflFake().start()
    fake.statuses = []  # Ready at once, unless `rendering` says the render goes on
    yield fake
    fake.stop()


def flux_config(bfl: BflFake, *, timeout: float, retries: int) -> str:
    return (
        f'[routes.flux]\nkind = "bfl"\nmodel = "flux-pro-1.1"\napi_key = "bfl-key"\n'
        f'base_url = "{bfl.server.url}"\npoll_interval_seconds = 0.02\n'
        f"timeout_seconds = {timeout}\nretries = {retries}\n"
    )


def flux(executor: Executor, bfl: BflFake, *, timeout: float, retries: int) -> RouteExecutor:
    config = parse_config(flux_config(bfl, timeout=timeout, retries=retries), "r.toml")
    return executor(build_route(config.routes["flux"]))


async def test_polling_that_outlives_the_timeout_submits_once_and_finishes_by_polling(
    bfl: BflFake,
    executor: Executor,
) -> None:
    timed_out = threading.Event()
    bfl.rendering = lambda: not timed_out.is_set()  # slower than one attempt's timeout
    routed = flux(executor, bfl, timeout=1.5, retries=2)
    reported: list[tuple[SubmittedTask, float]] = []

    def on_task(task: SubmittedTask) -> None:
        reported.append((task, time.time()))

    def on_attempt(attempt: Attempt) -> None:
        if attempt.error_class == "timeout":
            timed_out.set()

    result = await routed.generate(
        ImageRequest(prompt="a fox in snow"), on_attempt=on_attempt, on_task=on_task
    )
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
    # Polled during the attempt that timed out, and again by the one that resumed it.
    first = result.attempts[0]
    assert polls[0].received_at < first.started_at + first.latency_s < polls[-1].received_at
    assert result.cost.usd == pytest.approx(0.04)  # the one image, priced once


async def test_a_task_never_ready_fails_saying_its_id_and_is_never_resubmitted(
    bfl: BflFake,
    executor: Executor,
) -> None:
    bfl.rendering = lambda: True  # never ready
    routed = flux(executor, bfl, timeout=0.3, retries=2)
    with pytest.raises(RouteTimeoutError) as info:
        await routed.generate(ImageRequest(prompt="a fox in snow"))
    error = info.value
    assert len(bfl.server.calls(SUBMIT)) == 1
    assert len(error.attempts) == 3 and error.request_id == "task-1"
    assert "task task-1, submitted once and never submitted again" in error.sentence()


async def test_a_submit_with_no_answer_is_not_sent_again(bfl: BflFake, executor: Executor) -> None:
    bfl.submit_reply = Reply(200, {"id": "late", "polling_url": "http://x"}, delay=2.0)
    routed = flux(executor, bfl, timeout=0.3, retries=2)
    with pytest.raises(RouteError) as info:
        await routed.generate(ImageRequest(prompt="a fox"))
    assert len(bfl.server.calls(SUBMIT)) == 1
    assert not info.value.retryable and "may have accepted" in info.value.sentence()


async def test_a_refused_submit_is_retried_because_nothing_was_billed(
    bfl: BflFake, executor: Executor
) -> None:
    bfl.queue_submits(Reply(503, "unavailable"))
    routed = flux(executor, bfl, timeout=5, retries=2)
    result = await routed.generate(ImageRequest(prompt="a fox"))
    assert len(bfl.server.calls(SUBMIT)) == 2 and bfl.accepted == 1
    assert result.response_id == "task-1" and [a.ok for a in result.attempts] == [False, True]


async def test_the_run_keeps_the_task_and_a_restart_collects_it_without_paying_again(
    bfl: BflFake, open_runtime: RuntimeOpener, executor: Executor
) -> None:
    from bot.core.runs import RunOrigin

    first_run_over = threading.Event()
    bfl.rendering = lambda: not first_run_over.is_set()
    runtime = open_runtime(flux_config(bfl, timeout=0.2, retries=0))
    outcome = await runtime.runs.run("flux", ImageRequest(prompt="a fox"), RunOrigin())
    first_run_over.set()  # the render finishes while nobody is polling
    run = outcome.run
    assert run.status == "failed" and run.task_id == "task-1"
    assert run.task_polling_url == f"{bfl.server.url}{POLL}?id=task-1"
    assert run.task_submitted_at is not None and run.task_expires_at is not None
    assert "task-1" in (run.error_message or "")
    # Billed, cost unknown: counted as unpriced, never as $0.
    assert runtime.runlog.spend(run.created_at).unpriced_runs == 1

    # After a restart the stored task is collected: polled, never submitted again.
    assert run.id is not None
    runtime.runlog.update(run.id, status="interrupted")
    [stored] = runtime.runlog.collectable_tasks()
    assert stored.task_id and stored.task_submitted_at is not None
    task = SubmittedTask(
        task_id=stored.task_id,
        polling_url=stored.task_polling_url,
        submitted_at=stored.task_submitted_at.timestamp(),
        result_ttl_s=600,
    )
    restarted = flux(executor, bfl, timeout=2, retries=1)
    result = await restarted.resume(ImageRequest(prompt="a fox"), task)
    assert result.images and result.response_id == "task-1"
    assert len(bfl.server.calls(SUBMIT)) == 1


async def test_an_expired_task_is_not_polled(bfl: BflFake, executor: Executor) -> None:
    routed = flux(executor, bfl, timeout=2, retries=2)
    old = SubmittedTask("task-9", None, submitted_at=time.time() - 700, result_ttl_s=600)
    with pytest.raises(RouteError, match="expired"):
        await routed.resume(ImageRequest(prompt="x"), old)
    assert bfl.server.calls() == []


# -- self-hosted ---------------------------------------------------------------------------------


@pytest.fixture
def gpu() -> Iterator[A1111Fake]:
    fake = A1111Fake().start()
    yield fake
    fake.stop()


async def test_a_self_hosted_call_that_timed_out_is_not_queued_again(
    gpu: A1111Fake, executor: Executor
) -> None:
    gpu.render_seconds = 2.0  # the GPU is busy: slower than the route's timeout
    text = (
        f'[routes.gpu]\nkind = "self-hosted"\nflavor = "automatic1111"\nbase_url = "{gpu.url}"\n'
        "timeout_seconds = 0.3\nretries = 2\n"
    )
    routed = executor(build_route(parse_config(text, "r.toml").routes["gpu"]))
    with pytest.raises(RouteTimeoutError) as info:
        await routed.generate(ImageRequest(prompt="a castle"))
    assert len(gpu.calls("txt2img")) == 1 and not gpu.rejections
    assert not info.value.retryable
    assert "may still be working on it" in info.value.sentence()

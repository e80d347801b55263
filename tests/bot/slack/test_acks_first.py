"""Work started after an ack gives way to the acks still being sent: it starts, and each of its
heavy steps goes, once no request has been answered for a moment (bounded by a patience)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.slack.tasks import Answering, BackgroundTasks
from routes.pacing import give_way

REQUEST = AsyncBoltRequest(body="")


class Requests:
    """Requests going through the Answering middleware, each answered when told."""

    def __init__(self, answering: Answering) -> None:
        self.answering = answering
        self.answered: list[float] = []

    def start(self) -> tuple[asyncio.Event, asyncio.Task[Any]]:
        release = asyncio.Event()

        async def next() -> BoltResponse:
            await release.wait()
            return BoltResponse(status=200, body="")

        async def answer() -> Any:
            response = await self.answering.middleware(REQUEST, next)
            self.answered.append(time.monotonic())
            return response

        return release, asyncio.create_task(answer())


def bot_parts(settle: float, patience: float = 5.0) -> tuple[Requests, BackgroundTasks]:
    """The requests being answered and the background work of one bot, as SlackBot wires them."""
    answering = Answering(patience=patience, settle=settle)
    return Requests(answering), BackgroundTasks(answering)


def recorder(started: list[float]) -> Callable[[], Coroutine[Any, Any, None]]:
    """Work that records when it started."""

    async def work() -> None:
        started.append(time.monotonic())

    return work


async def test_background_work_starts_once_requests_have_settled() -> None:
    requests, tasks = bot_parts(settle=0.05)
    started: list[float] = []
    work = recorder(started)
    release, request = requests.start()
    await asyncio.sleep(0)
    tasks.spawn(work(), name="work")
    await asyncio.sleep(0.1)
    assert started == []  # a request is being answered
    release.set()
    await request
    await tasks.idle()
    assert started[0] - requests.answered[0] >= 0.045  # and then none for `settle` seconds


async def test_a_burst_keeps_background_work_waiting_until_its_last_ack() -> None:
    requests, tasks = bot_parts(settle=0.05)
    started: list[float] = []
    work = recorder(started)
    # One request after another, each answered 10 ms after the previous one: never idle
    # for 50 ms, though never more than one request at a time. The first one's listener
    # starts the work (as /imagegen does).
    for n in range(8):
        release, request = requests.start()
        await asyncio.sleep(0)
        if n == 0:
            tasks.spawn(work(), name="work")
        release.set()
        await request
        await asyncio.sleep(0.01)
    await tasks.idle()
    assert started[0] >= requests.answered[-1]


async def test_heavy_steps_of_running_work_give_way_to_new_requests() -> None:
    requests, tasks = bot_parts(settle=0.02)
    steps: list[float] = []
    step_two = asyncio.Event()

    async def work() -> None:
        await give_way()
        steps.append(time.monotonic())
        await step_two.wait()
        await give_way()  # e.g. the upload, once the provider has answered
        steps.append(time.monotonic())

    tasks.spawn(work(), name="work")
    while not steps:
        await asyncio.sleep(0.005)
    release, request = requests.start()
    await asyncio.sleep(0)
    step_two.set()
    await asyncio.sleep(0.1)
    assert len(steps) == 1  # the second step waits for the request being answered
    release.set()
    await request
    await tasks.idle()
    assert steps[1] >= requests.answered[0]


async def test_patience_bounds_the_wait() -> None:
    requests, tasks = bot_parts(settle=0.02, patience=0.1)
    done = asyncio.Event()

    async def work() -> None:
        done.set()

    release, request = requests.start()  # never answered while the work waits
    await asyncio.sleep(0)
    t0 = time.monotonic()
    tasks.spawn(work(), name="work")
    await asyncio.wait_for(done.wait(), 2)
    assert 0.09 <= time.monotonic() - t0 < 1.0
    release.set()
    await request


async def test_a_run_waits_for_the_requests_the_bot_is_answering(start_harness) -> None:
    h = await start_harness()
    answering = h.bot.tasks.answering
    answering.patience = 5.0  # so only the release below lets the run go
    release, held = Requests(answering).start()  # a request the bot is still answering
    await asyncio.sleep(0)

    response = await h.command("/imagegen", 'route=demo prompt="a kite"')
    assert response.status_code == 200  # acked at once, held request or not
    await asyncio.sleep(0.3)
    assert h.slack.calls("chat.postMessage") == []
    released_at = time.time()
    release.set()
    await held
    await h.settle()

    posted = h.slack.calls("chat.postMessage") + h.slack.calls("files.completeUploadExternal")
    assert len(posted) >= 3  # scoreboard, upload, result
    assert min(call.received_at for call in posted) >= released_at


async def test_work_cancelled_before_it_starts_is_closed_quietly() -> None:
    """At shutdown, a task cancelled before its first step never ran its work: the work's
    coroutine is closed, not left for Python to warn about ("never awaited")."""
    tasks = BackgroundTasks(Answering())

    async def work() -> None:
        raise AssertionError("never runs")

    coro = work()
    task = tasks.spawn(coro, name="work")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"  # not left CORO_CREATED

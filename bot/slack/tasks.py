"""Background work started by listeners after ack: kept referenced, waited for at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from routes.pacing import giving_way_to

if TYPE_CHECKING:
    from slack_bolt.request.async_request import AsyncBoltRequest

    from bot.slack.middleware import Next

log = logging.getLogger(__name__)


# Background work waits at most this long for the requests being answered to be answered.
ACK_PATIENCE_S = 0.5
# ...and starts once no request has been answered for this long: in a burst, one request ends
# a moment before the next one starts, and work let in at each such moment (a run's admission,
# its upload) would be paid for by the acks still to come.
ACK_SETTLE_S = 0.02


class Answering:
    """The Slack requests this process is answering right now (a Bolt middleware counts them).

    Work started after an ack waits until no request has been answered for ACK_SETTLE_S, at
    most ACK_PATIENCE_S, before it starts: in a burst of commands every ack goes out first,
    and the runs of the first commands never delay the acks of the last ones."""

    def __init__(self, patience: float = ACK_PATIENCE_S, settle: float = ACK_SETTLE_S) -> None:
        self.patience = patience
        self.settle = settle
        self.now = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._last_answer = 0.0
        self._timer: asyncio.TimerHandle | None = None

    async def middleware(self, req: AsyncBoltRequest, next: Next) -> Any:
        self.now += 1
        self._quiet.clear()
        try:
            return await next()
        finally:
            self.now -= 1
            if self.now == 0:
                loop = asyncio.get_running_loop()
                self._last_answer = loop.time()
                if self._timer is None:
                    self._timer = loop.call_later(self.settle, self._settled)

    def _settled(self) -> None:
        self._timer = None
        if self.now:
            return  # the request being answered schedules this again when it is answered
        loop = asyncio.get_running_loop()
        left = self._last_answer + self.settle - loop.time()
        if left > 0:
            self._timer = loop.call_later(left, self._settled)
        else:
            self._quiet.set()

    async def quiet(self) -> None:
        """Return once no request has been answered for `settle` seconds, or after `patience`
        seconds."""
        if not self._quiet.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), self.patience)


class BackgroundTasks:
    """Keeps references to running tasks (so they are not garbage collected) and lets
    shutdown wait for them: a run in flight is finished, not dropped. Each task starts once
    the requests being answered are answered (see Answering), and so does each of its heavy
    steps."""

    def __init__(self, answering: Answering | None = None) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.answering = answering or Answering()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(self._after_acks(coro), name=name)
        # A task cancelled before its first step (shutdown) never started `coro`: closed here,
        # so Python does not warn that it was never awaited. Once done, closing is a no-op.
        task.add_done_callback(lambda _task: coro.close())
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._done)
        return task

    async def _after_acks(self, coro: Coroutine[Any, Any, Any]) -> Any:
        try:
            await self.answering.quiet()
        except BaseException:
            coro.close()  # cancelled before it started: never awaited, nothing to warn about
            raise
        # Its heavy steps (parsing and decoding a provider's answer, storing, uploading,
        # checking) give way to the acks in progress too (routes.pacing).
        with giving_way_to(self.answering.quiet):
            return await coro

    async def idle(self) -> None:
        """Return once no task is running (at once when none is)."""
        await self._idle.wait()

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, seconds: float) -> None:
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

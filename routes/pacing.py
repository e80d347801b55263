"""Heavy steps of background work give way to more urgent work in the same process.

A bot answers Slack on the same event loop (and under the same GIL) that runs its runs. The
work a run does when its provider answers (parsing megabytes of JSON, decoding the image,
storing and uploading it) would otherwise land in the middle of a burst of commands and delay
every acknowledgement in it. Whoever starts background work sets a hook for it with
`giving_way_to` (the Slack bot: wait until the requests being answered are answered, bounded);
the heavy steps call `give_way()` first. Work started anywhere else (the CLI, probes) has no
hook and never waits. The hook is a context variable, so it follows the work into the tasks it
starts and belongs to the bot that started it. The time a call waits for its turn is counted
(`counting_turns`) and left out of the latency a route reports (`Stopwatch`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

Hook = Callable[[], Awaitable[None]]
P = ParamSpec("P")
T = TypeVar("T")

_hook: ContextVar[Hook | None] = ContextVar("imageroute_give_way", default=None)


class Turns:
    """Seconds the work in a `counting_turns` block spent waiting for its turn in this process:
    giving way, and in line for the crunch thread. The bot's time, not the provider's."""

    def __init__(self) -> None:
        self.seconds = 0.0


_turns: ContextVar[Turns | None] = ContextVar("imageroute_turns", default=None)


@contextmanager
def counting_turns() -> Iterator[Turns]:
    """Count the turns waited for inside this block (and the tasks it starts)."""
    turns = Turns()
    token = _turns.set(turns)
    try:
        yield turns
    finally:
        _turns.reset(token)


def _waited(seconds: float) -> None:
    turns = _turns.get()
    if turns is not None:
        turns.seconds += seconds


class Stopwatch:
    """Seconds since it was made, less the turns counted meanwhile (`counting_turns`): what a
    route reports as a call's latency is the provider's time, even when the bot made the call
    wait for its turn under load."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._turns = _turns.get()
        self._turns0 = self._turns.seconds if self._turns is not None else 0.0

    def __call__(self) -> float:
        elapsed = time.perf_counter() - self._t0
        if self._turns is not None:
            elapsed -= self._turns.seconds - self._turns0
        return max(elapsed, 0.0)


async def give_way() -> None:
    """Before a heavy step: wait as long as whoever started this work asks (at once if no one
    set a hook)."""
    hook = _hook.get()
    if hook is not None:
        t0 = time.perf_counter()
        try:
            await hook()
        finally:
            _waited(time.perf_counter() - t0)


@contextmanager
def giving_way_to(hook: Hook) -> Iterator[None]:
    """Heavy steps of the work run inside this block (and of the tasks it starts) await
    `hook` first."""
    token = _hook.set(hook)
    try:
        yield
    finally:
        _hook.reset(token)


# CPU-heavy steps (megabytes of JSON or base64) run one at a time, in a thread of their own.
# Each holds the GIL for milliseconds at a stretch; run side by side in the default pool, a batch
# of answers arriving together kept several threads asking for the GIL at once, and the event
# loop, answering Slack, waited its turn behind each of them.
_CRUNCHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crunch")


async def crunch(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`func(*args, **kwargs)`, CPU-heavy, off the event loop: after giving way, one at a time."""
    await give_way()
    loop = asyncio.get_running_loop()
    queued = time.perf_counter()
    began: list[float] = []

    def run() -> T:
        began.append(time.perf_counter())
        return func(*args, **kwargs)

    try:
        return await loop.run_in_executor(_CRUNCHER, run)
    finally:
        if began:
            _waited(began[0] - queued)  # in line behind other answers

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

The bot also finishes its runs in a `Lane`: only a few at once read, parse, store and post their
answer, so a batch of answers arriving together does not hold the event loop for the whole
batch. Work started anywhere else sets no lane either, and never waits for one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import ParamSpec, Protocol, TypeVar

Hook = Callable[[], Awaitable[None]]
P = ParamSpec("P")
T = TypeVar("T")


class Answer(Protocol):
    """What the response hook reads of an answer (an httpx.Response)."""

    @property
    def headers(self) -> Mapping[str, str]: ...


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
    await take_turn()
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


# A run waits at most this long for its place in the lane. Places are normally held for a
# fraction of a second; one held longer means a run stuck mid-finish (an answer or an upload
# trickling in), and the runs behind it then go on without a place rather than wait for it.
LANE_PATIENCE_S = 10.0


class Lane:
    """At most `width` runs of this process finish at once: read their provider's answer,
    parse and store it, post it to Slack. The others wait for a place, first come, first served.

    Waiting on a provider costs a process nothing, so many runs may be in flight (the bot's
    in-flight limit); finishing one costs tens of milliseconds of the interpreter lock. When a
    batch of answers arrives together, reading and storing them all side by side kept the event
    loop busy for as long as the whole batch took, and the Slack requests arriving meanwhile
    waited for it. In the lane, a request arriving meanwhile waits for at most `width` of them.
    """

    def __init__(self, width: int, patience: float = LANE_PATIENCE_S) -> None:
        if width < 1:
            raise ValueError("a lane is at least 1 wide")
        self.width = width
        self.patience = patience
        self.finishing = 0  # runs holding a place right now
        self._waiting: deque[asyncio.Future[None]] = deque()

    @contextmanager
    def turn(self) -> Iterator[Turn]:
        """The work inside this block (and the tasks it starts) finishes one run: it takes its
        place in the lane when its answer starts arriving (`take_turn`), and leaves it at the
        end of the block at the latest."""
        turn = Turn(self)
        token = _turn.set(turn)
        try:
            yield turn
        finally:
            _turn.reset(token)
            turn.close()

    async def _enter(self) -> bool:
        """A place: True once held, False if none came free within `patience`."""
        if self.finishing < self.width and not self._waiting:
            self.finishing += 1
            return True
        place: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(place)
        try:
            async with asyncio.timeout(self.patience):
                await place
        except TimeoutError:
            if place.done() and not place.cancelled():
                return True  # handed over just as the time ran out
            self._drop(place)
            return False
        except asyncio.CancelledError:
            if place.done() and not place.cancelled():
                self._leave()
            else:
                self._drop(place)
            raise
        return True

    def _leave(self) -> None:
        self.finishing -= 1
        while self._waiting and self.finishing < self.width:
            place = self._waiting.popleft()
            if not place.done():
                place.set_result(None)
                self.finishing += 1

    def _drop(self, place: asyncio.Future[None]) -> None:
        place.cancel()
        with suppress(ValueError):
            self._waiting.remove(place)


class Turn:
    """One run's place in a Lane: taken at most once at a time, left when done. Once its
    block ends, taking it is a no-op (a task started inside, e.g. the run's checks, may still
    hold it in its context); so is taking it again after waiting in vain."""

    def __init__(self, lane: Lane) -> None:
        self._lane = lane
        self.held = False
        self._passed = False  # waited `patience` in vain: goes on without a place
        self._closed = False

    async def take(self) -> None:
        if self.held or self._passed or self._closed:
            return
        t0 = time.perf_counter()
        try:
            self.held = await self._lane._enter()
            self._passed = not self.held
        finally:
            _waited(time.perf_counter() - t0)

    def leave(self) -> None:
        self._passed = False
        if self.held:
            self.held = False
            self._lane._leave()

    def close(self) -> None:
        self._closed = True
        self.leave()


_turn: ContextVar[Turn | None] = ContextVar("imageroute_lane_turn", default=None)


async def take_turn() -> None:
    """Before the work of finishing a run (its answer arriving, parsed, stored): wait for a
    place in the lane of whoever started this run (at once if no one set one)."""
    turn = _turn.get()
    if turn is not None:
        await turn.take()


def leave_turn() -> None:
    """A failed attempt gives its place back: the run may wait minutes before its next one."""
    turn = _turn.get()
    if turn is not None:
        turn.leave()


# Answers smaller than this (errors, task ids, polling states) are read without a turn.
LARGE_ANSWER_BYTES = 64 * 1024


async def answer_arriving(response: Answer) -> None:
    """An httpx response hook: a large answer (or one of unknown length) waits for the run's
    turn before its body is read."""
    length = response.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > LARGE_ANSWER_BYTES:
        await take_turn()

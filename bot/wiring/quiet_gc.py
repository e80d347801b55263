"""Full garbage collections at quiet moments, not in the middle of a burst of commands.

A full collection walks every object the process made since start-up (start-up's own are
frozen, see serve.settled) and stops everything while it does: with a thousand requests queued
that was 150 to 250 ms (bench/bench_acks.py at 200 in flight). CPython starts one whenever
enough objects have survived, in the middle of a burst as likely as between two, and every ack
waiting on the event loop then waits for it too.

So while the bot serves, CPython's own full collection is off (the two young generations are
still collected as usual, in a few milliseconds) and `QuietCollector` runs the full one itself:
once CPython would have considered one due (its third threshold), at a moment no Slack request
has been answered for a while (Answering), at the latest `patience` seconds after it became due.
The time between two is at least `spacing` times the last one's length, so full collections
take at most 1/spacing of the process's time however large the heap is.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time

from bot.slack.tasks import Answering

log = logging.getLogger(__name__)

# A third threshold no count reaches: CPython never starts a full collection by itself.
NEVER = 2**30
CHECK_EVERY_S = 0.25
PATIENCE_S = 30.0
SPACING = 50  # at most 2% of the time in full collections
MIN_GAP_S = 1.0


class QuietCollector:
    def __init__(
        self,
        answering: Answering,
        *,
        every: float = CHECK_EVERY_S,
        patience: float = PATIENCE_S,
        spacing: float = SPACING,
        min_gap: float = MIN_GAP_S,
    ) -> None:
        self.answering = answering
        self.every = every
        self.patience = patience
        self.spacing = spacing
        self.min_gap = min_gap
        self.collections = 0
        self.last_seconds = 0.0
        self._saved: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Turn CPython's own full collection off and run them here instead."""
        if self._task is not None:
            return
        self._saved = gc.get_threshold()
        young, middle, self.due = self._saved
        gc.set_threshold(young, middle, NEVER)
        self._task = asyncio.create_task(self._run(), name="quiet-gc")

    async def stop(self) -> None:
        """Stop, and give CPython its own full collections back."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def _is_due(self, since_last: float) -> bool:
        # get_count()[2]: collections of the middle generation since the last full one, what
        # CPython compares with its third threshold.
        return gc.get_count()[2] >= self.due and since_last >= max(
            self.min_gap, self.spacing * self.last_seconds
        )

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.every)
            if not self._is_due(time.monotonic() - last):
                continue
            await self.answering.quiet(self.patience)
            started = time.perf_counter()
            found = gc.collect()
            self.last_seconds = time.perf_counter() - started
            self.collections += 1
            last = time.monotonic()
            log.debug(
                "full collection at a quiet moment: %.1f ms, %d unreachable objects",
                self.last_seconds * 1000,
                found,
            )

"""A run's parent message as a live scoreboard: each route's status, edited in place.

chat.update is a Tier 3 method (about 50 calls a minute per workspace), so edits are coalesced:
a scoreboard sends its latest state at most once per `min_interval`, and every scoreboard of the
process draws from one `EditPacer` budget. The final edit (verdict and montage) always goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import Block

from bot.checks import CheckReport
from bot.core.figures import money, seconds
from bot.slack import blocks, messages
from bot.slack.blocks import ShownImage
from bot.slack.poster import SlackPoster
from storage.tables import Run

# Tier 3 allows about 50 a minute, with occasional bursts.
EDITS_PER_MINUTE = 50.0
EDIT_BURST = 20.0
# Progress edits leave this many edits of the budget to final ones (verdicts): when the budget
# runs low, a scoreboard skips progress, never its result.
FINAL_RESERVE = 5.0
MIN_INTERVAL_SECONDS = 1.0


class EditPacer:
    """A token bucket for chat.update across every scoreboard of this process.

    Edits that wait for budget wait in line, final edits ahead of progress edits, and one
    timer serves the head of the line: each edit wakes once, when its turn comes. (With every
    waiter sleeping and checking again on its own, each edit the budget allowed woke every
    waiting scoreboard: with a thousand requests queued, a thousand wake-ups per edit.)"""

    def __init__(
        self,
        per_minute: float = EDITS_PER_MINUTE,
        burst: float = EDIT_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self._tokens = burst
        self._at = clock()
        # (reserve, waiter): final edits (no reserve) first, then progress edits.
        self._finals: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._progress: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def take(self, reserve: float = 0.0) -> None:
        """Wait for one edit's share of the budget, leaving `reserve` for others."""
        line = self._finals if reserve <= 0 else self._progress
        self._refill()
        ahead = self._head()
        if (ahead is None or (reserve <= 0 and ahead is self._progress)) and self._grant(reserve):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line.append((reserve, waiter))
        self._schedule()
        await waiter

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def _grant(self, reserve: float) -> bool:
        if self._tokens >= 1.0 + reserve:
            self._tokens -= 1.0
            return True
        return False

    def _head(self) -> deque[tuple[float, asyncio.Future[None]]] | None:
        """The line whose first waiter goes next (waiters cancelled meanwhile are dropped)."""
        for line in (self._finals, self._progress):
            while line and line[0][1].done():
                line.popleft()
            if line:
                return line
        return None

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        line = self._head()
        if line is not None:
            missing = max(1.0 + line[0][0] - self._tokens, 0.0)
            self._timer = asyncio.get_running_loop().call_later(missing / self.rate, self._serve)

    def _serve(self) -> None:
        self._timer = None
        self._refill()
        while (line := self._head()) is not None and self._grant(line[0][0]):
            line.popleft()[1].set_result(None)
        self._schedule()


@dataclass(frozen=True)
class RouteStatus:
    """Where one route of a run stands: waiting, queued (n ahead), running, done, failed."""

    state: str = "waiting"
    detail: str = ""

    @classmethod
    def queued(cls, ahead: int) -> RouteStatus:
        return cls("queued", f"queued ({ahead} ahead)" if ahead else "queued (next)")

    @classmethod
    def of(cls, run: Run) -> RouteStatus:
        if run.status == "succeeded":
            return cls("done", f"{seconds(run.latency_s)} · {money(run.cost_usd, run.cost_basis)}")
        label = (run.error_class or "error").replace("_", " ")
        return cls("failed", f"failed: {label}")


# A route with no run when its scoreboard closes: a repeated delivery runs it elsewhere, or the
# request was cut short.
SKIPPED = RouteStatus("skipped", "(already running for this request)")
CUT_SHORT = RouteStatus("failed", "failed: interrupted")


class Scoreboard:
    """One run's parent message (a thread reply when the run starts inside a thread)."""

    def __init__(
        self,
        poster: SlackPoster,
        pacer: EditPacer,
        channel: str,
        headline: str,
        prompt: str,
        route_ids: Sequence[str],
        *,
        thread_ts: str | None = None,
        min_interval: float = MIN_INTERVAL_SECONDS,
    ) -> None:
        self.poster = poster
        self.pacer = pacer
        self.channel = channel
        self.headline = headline
        self.prompt = prompt
        self.route_ids = list(route_ids)
        self.thread_ts = thread_ts
        self.min_interval = min_interval
        self.ts: str | None = None
        self.statuses = {rid: RouteStatus() for rid in route_ids}
        self._dirty = False
        self._closed = False
        self._sent_at = 0.0
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._runs: list[Run] = []
        self._footer: str | None = None

    @property
    def text(self) -> str:
        """The notification text (Block Kit carries the rest)."""
        return messages.trim(f"{self.headline}: {messages.quote_prompt(self.prompt, 200)}", 3000)

    async def open(self) -> str | None:
        """Post the scoreboard; its ts, or None when Slack refused (NotInChannel propagates)."""
        self.ts = await self.poster.post(
            self.channel, self.text, blocks=self.render(), thread_ts=self.thread_ts
        )
        self._sent_at = time.monotonic()
        return self.ts

    def set_status(self, route_id: str, status: RouteStatus) -> None:
        """Show a route's new status; the message is edited soon, with other changes."""
        if route_id not in self.statuses or self._closed:
            return
        self.statuses[route_id] = status
        self._dirty = True
        if self.ts is not None and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.ensure_future(self._flush())

    def queued(self, route_id: str, ahead: int) -> None:
        """The route waits for a free slot (`ahead` runs before it)."""
        self.set_status(route_id, RouteStatus.queued(ahead))

    def finished(self, run: Run) -> None:
        self.set_status(run.route_id, RouteStatus.of(run))

    def render(
        self,
        *,
        verdict: Sequence[str] = (),
        montage: ShownImage | None = None,
        footer: str | None = None,
    ) -> list[Block]:
        lines = [
            blocks.status_line(rid, status.state, status.detail)
            for rid, status in self.statuses.items()
        ]
        done = sum(1 for s in self.statuses.values() if s.state in ("done", "failed", "skipped"))
        if footer is None:
            footer = f"{done} of {len(self.statuses)} finished · results arrive in the thread"
        return blocks.scoreboard_blocks(
            self.headline, self.prompt, lines, verdict=verdict, montage=montage, footer=footer
        )

    async def _flush(self) -> None:
        while self._dirty and not self._closed:
            wait = self._sent_at + self.min_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self.pacer.take(reserve=FINAL_RESERVE)
            async with self._lock:
                if self._closed or self.ts is None:
                    return
                self._dirty = False
                self._sent_at = time.monotonic()
                await self.poster.update(self.channel, self.ts, self.text, blocks=self.render())

    async def finish(
        self,
        runs: Sequence[Run],
        *,
        footer: str | None = None,
        unfinished: RouteStatus = SKIPPED,
    ) -> None:
        """The last status edit: every route's outcome and the verdict line, at once. Routes
        with no run show `unfinished`; `footer` replaces the done line."""
        self._closed = True
        self._runs = list(runs)
        self._footer = footer
        for run in runs:
            self.statuses[run.route_id] = RouteStatus.of(run)
        for rid, status in self.statuses.items():
            if status.state in ("waiting", "queued", "running"):
                self.statuses[rid] = unfinished
        await self._final(None)
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    async def complete(
        self, montage: ShownImage | None, checks: Mapping[str, CheckReport] | None = None
    ) -> None:
        """The montage under the verdict and each route's acceptance checks, once they are in
        (both come after the last route answered, so the verdict does not wait for them)."""
        for rid, report in (checks or {}).items():
            status = self.statuses.get(rid)
            if status is not None and report.rows:
                detail = f"{status.detail} · {messages.checks_brief(report)}"
                self.statuses[rid] = RouteStatus(status.state, detail)
        await self._final(montage)

    async def cut_short(self, runs: Sequence[Run], footer: str) -> None:
        """The last edit of a request that could not finish (the bot stopping, a failure on
        our side): finished routes keep their outcome, the others say they were interrupted."""
        await self.finish(runs, footer=footer, unfinished=CUT_SHORT)

    async def _final(self, montage: ShownImage | None) -> None:
        runs = self._runs
        verdict = messages.verdict_lines(runs) if len(self.route_ids) > 1 else []
        footer = self._footer or (messages.done_line(runs) if runs else "")
        final = self.render(verdict=verdict, montage=montage, footer=footer)
        async with self._lock:
            if self.ts is not None:
                await self.pacer.take()
                await self.poster.update(self.channel, self.ts, self.text, blocks=final)

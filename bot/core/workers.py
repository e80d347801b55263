"""This process's heartbeat, and the watch every live process keeps over the others' runs.

Each process that runs things (the bot, the prober, `imageroute gen` and `bench`) writes its
heartbeat to the `workers` table every `beat` seconds. A worker whose heartbeat is older than
four beats is dead. Every long-running process sweeps every three beats: it claims the dead
workers' pending runs (each is marked interrupted by exactly one process, see
RunLog.interrupt_orphans) and hands them to `on_orphans` (the Slack layer resolves their parent
message and tells the thread, once), releases the dead workers' spend reservations, and writes
what waits in this machine's spool into the stores. So a crashed replica's runs are settled
within a minute by whichever process is alive, not at the next start-up.

A database outage makes every heartbeat stale at once. A process therefore sweeps only after
its own heartbeats have succeeded for a whole stale period: by then every live replica has
beaten again, and none is taken for dead. A busy process must not look dead either: the
heartbeat and the sweep run on a thread of their own, never queued behind the run work that
fills the shared thread pool (admissions waiting on the spend lock, run-log writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from storage.assets import AssetStore
from storage.reservations import Reservations
from storage.runlog import RunLog
from storage.spool import Spool
from storage.tables import Run, utcnow

log = logging.getLogger(__name__)

Orphans = Callable[[list[Run]], Awaitable[None]]
P = ParamSpec("P")
T = TypeVar("T")
# A heartbeat this many beats old means the worker is dead; sweeps run this often (in beats).
STALE_BEATS = 4
SWEEP_BEATS = 3


class Liveness:
    """One process's heartbeat loop, with the sweep when the process is a long-running one."""

    def __init__(
        self,
        runlog: RunLog,
        reservations: Reservations,
        worker_id: str,
        role: str,
        *,
        beat: float,
        spool: Spool | None = None,
        assets: AssetStore | None = None,
    ) -> None:
        self.runlog = runlog
        self.reservations = reservations
        self.worker_id = worker_id
        self.role = role
        self.beat = beat
        self.spool = spool
        self.assets = assets
        self.on_orphans: Orphans | None = None
        # Off while this process stops: it starts nothing new, live processes sweep instead.
        self.sweeping = True
        self.sweeps = 0
        self._healthy_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def _on_own_thread(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`call` on this watch's own thread (see the module docstring: never queued behind
        run work, so a busy process still beats on time)."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"liveness-{self.role}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: call(*args, **kwargs))

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.beat * STALE_BEATS)

    @property
    def alive(self) -> bool:
        """Whether this process's last heartbeat reached the database."""
        return self._healthy_since is not None

    async def start(self, *, sweep: bool, on_orphans: Orphans | None = None) -> None:
        """Register this process (the database must answer now) and keep it registered; with
        `sweep`, also watch the others and settle the spool."""
        await self._on_own_thread(self.runlog.heartbeat, self.worker_id, self.role)
        self._healthy_since = time.monotonic()
        self.on_orphans = on_orphans
        self._task = asyncio.create_task(self._loop(sweep), name=f"liveness-{self.role}")

    async def _loop(self, sweep: bool) -> None:
        next_sweep = time.monotonic()
        while True:
            await asyncio.sleep(self.beat)
            await self._beat()
            if sweep and self.sweeping and time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self.beat * SWEEP_BEATS
                try:
                    await self.sweep()
                except Exception:  # the watch must outlive any one failed sweep (logged whole)
                    log.exception("sweep failed")

    async def _beat(self) -> None:
        try:
            await self._on_own_thread(self.runlog.heartbeat, self.worker_id, self.role)
        except SQLAlchemyError as exc:
            if self._healthy_since is not None:
                log.warning("heartbeat failed (database unreachable?): %s", type(exc).__name__)
            self._healthy_since = None
            return
        if self._healthy_since is None:
            log.info("heartbeat back: the database answers again")
            self._healthy_since = time.monotonic()
            # The stores may be back too: what waits in the spool goes now, not next sweep.
            await self.settle_spool()

    async def sweep(self) -> list[Run]:
        """Settle the spool; claim and hand over dead workers' runs; release their holds."""
        self.sweeps += 1
        await self.settle_spool()
        healthy = self._healthy_since
        if healthy is None or time.monotonic() - healthy < self.stale_after.total_seconds():
            return []  # not sure yet who is alive (see the module docstring)
        try:
            claimed = await self._on_own_thread(
                self.runlog.interrupt_orphans, self.worker_id, self.stale_after
            )
            released = await self._on_own_thread(
                self.reservations.release_dead, utcnow() - self.stale_after
            )
        except SQLAlchemyError as exc:
            log.warning("sweep skipped: %s", type(exc).__name__)
            return []
        if released:
            log.info("released %d spend reservation(s) of stopped processes", released)
        if claimed:
            log.warning("%d run(s) of a stopped process are now interrupted", len(claimed))
        if self.on_orphans is not None:
            # Called on every sweep, even with none claimed: runs a stopping replica handed
            # over (interrupted, their billed task still collectable) are picked up too.
            await self.on_orphans(claimed)
        return claimed

    async def settle_spool(self) -> None:
        if self.spool is None or self.assets is None or not self.spool.entries():
            return
        result = await asyncio.to_thread(self.spool.reconcile, self.assets, self.runlog)
        if result.waiting:
            log.info("spool: %d result(s) still waiting for the stores", result.waiting)

    async def stop(self) -> None:
        """Stop beating and say goodbye: a process that stopped cleanly is not swept for."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self._on_own_thread(self.runlog.retire_worker, self.worker_id)
        except SQLAlchemyError as exc:
            log.warning("could not retire worker %s: %s", self.worker_id, type(exc).__name__)
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=False)
                self._thread = None

"""Scheduled health probes: one round every interval (jittered), by one active prober.

With several bot replicas (or `imageroute prober` processes) on one PostgreSQL database, a
session-level advisory lock elects the prober; the others stand by and take over when the
holder's connection goes away. SQLite deployments are single-process: always the prober.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.health.monitor import HealthMonitor
from storage.tables import utcnow

log = logging.getLogger(__name__)

# An arbitrary, fixed 64-bit key: "imageroute prober".
ADVISORY_LOCK_KEY = 0x696D_6167_6570_7262


class Leadership:
    """Who runs the probes. `is_leader()` is checked before every round."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self.postgres = engine.dialect.name == "postgresql"

    def is_leader(self) -> bool:
        if not self.postgres:
            return True
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except SQLAlchemyError:  # the lock went with the connection
                log.warning("prober lost its database connection; re-electing")
                self.release()
        conn = self.engine.connect()
        got = bool(
            conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar()
        )
        conn.commit()
        if got:
            self._conn = conn
            log.info("this process is the active prober")
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                self._conn.commit()
            except SQLAlchemyError as exc:  # the connection is going anyway; closing frees it
                log.info("advisory unlock failed (%s); closing the connection", type(exc).__name__)
            self._conn.close()
            self._conn = None


class Prober:
    """Runs HealthMonitor rounds on an APScheduler interval while this process leads."""

    def __init__(
        self,
        monitor: HealthMonitor,
        leadership: Leadership,
        *,
        on_leadership: Callable[[bool], None] | None = None,
    ) -> None:
        self.monitor = monitor
        self.leadership = leadership
        self.scheduler: AsyncIOScheduler | None = None
        self.rounds = 0
        self.active = False
        # Told before every round whether this process leads (the metrics' prober_active).
        self.on_leadership = on_leadership

    async def tick(self) -> bool:
        """One scheduled round; False when another process is the prober."""
        self.active = await asyncio.to_thread(self.leadership.is_leader)
        if self.on_leadership is not None:
            self.on_leadership(self.active)
        if not self.active:
            return False
        try:
            await self.monitor.round()
            self.rounds += 1
        except Exception:  # the scheduler must outlive any one failed round (logged whole)
            log.exception("probe round failed")
        return True

    def start(self, first_in: float = 5.0) -> None:
        settings = self.monitor.settings
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=settings.interval_seconds,
            jitter=settings.jitter_seconds or None,
            next_run_time=datetime.now(utcnow().tzinfo) + timedelta(seconds=first_in),
            max_instances=1,
            coalesce=True,
            id="probe-round",
        )
        self.scheduler.start()
        log.info(
            "health probes every %gs (jitter %gs) on %d route(s)",
            settings.interval_seconds,
            settings.jitter_seconds,
            len(self.monitor.probed()),
        )

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        await asyncio.to_thread(self.leadership.release)
        self.active = False
        if self.on_leadership is not None:
            self.on_leadership(False)

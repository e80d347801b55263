"""The composition root: everything a process role needs, opened once and wired explicitly.

`Runtime.open` reads the config, opens the database and asset store, builds every enabled route
and the product's parts on top (validator, spend policy, run service). It is shared by `serve`,
the prober, the CLI commands and the tests, so they all read the same settings and log runs the
same way; the parts themselves only receive what they use, never the Runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from PIL import Image
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.benchmark.runner import BenchRunner
from bot.checks import AcceptanceChecks
from bot.core.observers import Observers
from bot.core.redaction import Redactor, install
from bot.core.requests import RequestValidator
from bot.core.runs import RunService
from bot.core.spend import SpendPolicy
from bot.core.workers import Liveness, Orphans
from bot.health.events import AlertSink
from bot.health.monitor import HealthMonitor
from bot.wiring.settings import Settings
from routes.base import Route
from routes.config import AppConfig, load_config
from routes.executor import RouteExecutor
from routes.registry import build_route
from storage.assets import AssetStore, open_asset_store
from storage.benches import BenchLog
from storage.checks import CheckLog
from storage.db import make_engine, refresh_planner_statistics, upgrade
from storage.health import HealthLog
from storage.runlog import RunLog
from storage.spool import Spool

log = logging.getLogger(__name__)

# SQLite's planner statistics are checked at start and this often (a count per table; gathered
# again only when missing or drifted).
PLANNER_STATISTICS_SECONDS = 6 * 3600.0


@dataclass
class Runtime:
    settings: Settings
    config: AppConfig
    engine: Engine
    runlog: RunLog
    assets: AssetStore
    routes: dict[str, Route]
    executors: dict[str, RouteExecutor]
    redactor: Redactor
    runs: RunService
    validator: RequestValidator
    spend: SpendPolicy
    health: HealthLog
    checks: AcceptanceChecks
    worker_id: str
    role: str
    # What runs and probes report as they happen (metrics subscribe in serve and the prober).
    observers: Observers
    spool: Spool
    liveness: Liveness
    _statistics: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        role: str = "cli",
        announce: Callable[[str], None] | None = None,
    ) -> Runtime:
        """Load the routes file, migrate the database and build every enabled route.

        The routes file's warnings (a route on a deprecated model, one line per route) go to
        `announce` when given (the CLI prints them), else to the log, once per start."""
        config = load_config(settings.imageroute_config)
        redactor = Redactor([*settings.secrets(), *config.secrets()])
        install(redactor)  # every role: no token or route key in any log line
        for line in config.warnings:
            if announce is not None:
                announce(line)
            else:
                log.warning("%s", line)
        engine = make_engine(settings.database_url, scrub=redactor)
        upgrade(engine)
        runlog = RunLog(engine)
        assets = open_asset_store(settings.asset_store)
        routes = {rid: build_route(rc) for rid, rc in config.enabled_routes.items()}
        executors = {rid: RouteExecutor(route, redact=redactor) for rid, route in routes.items()}
        worker_id = f"{role}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        health = HealthLog(engine)
        observers = Observers()
        spool = Spool(settings.imageroute_spool)
        runs = RunService(
            runlog,
            assets,
            executors,
            redactor,
            worker_id,
            health=health,
            observers=observers,
            spool=spool,
        )
        validator = RequestValidator(routes, config.limits.max_routes_per_comparison)
        spend = SpendPolicy(runlog, routes, config.limits, holder=worker_id, health=health)
        checks = AcceptanceChecks(
            CheckLog(engine), runlog, assets, config.checks, own_process=role == "bot"
        )
        liveness = Liveness(
            runlog,
            spend.reservations,
            worker_id,
            role,
            beat=settings.imageroute_heartbeat_seconds,
            spool=spool,
            assets=assets,
        )
        return cls(
            settings=settings,
            config=config,
            engine=engine,
            runlog=runlog,
            assets=assets,
            routes=routes,
            executors=executors,
            redactor=redactor,
            runs=runs,
            validator=validator,
            spend=spend,
            health=health,
            checks=checks,
            worker_id=worker_id,
            role=role,
            observers=observers,
            spool=spool,
            liveness=liveness,
        )

    def monitor(self, alerts: AlertSink | None) -> HealthMonitor:
        """The health monitor over this process's routes (events go to `alerts`)."""
        return HealthMonitor(
            self.health,
            self.executors,
            self.config.probes,
            alerts,
            spend=self.spend,
            observers=self.observers,
        )

    def bench_runner(self, per_route_concurrency: int | None = None) -> BenchRunner:
        runner = BenchRunner(
            self.runs, self.validator, self.spend, BenchLog(self.engine), checks=self.checks
        )
        if per_route_concurrency is not None:
            runner.per_route = per_route_concurrency
        return runner

    @property
    def route_ids(self) -> list[str]:
        return list(self.routes)

    async def warm(self) -> None:
        """Import every route's SDK and build its client now (in threads), so a process is
        ready when it says so and its first run costs what every other run costs."""
        t0 = time.perf_counter()
        await asyncio.gather(
            # Pillow loads its PNG, JPEG, GIF... readers on the first image it opens (tens of
            # milliseconds): every run's image is opened (checks, montage, Slack's formats).
            asyncio.to_thread(Image.preinit),
            # Provider SDKs describe the platform in their first request's headers; Python
            # learns the processor by running `uname -p` (a fork of the whole process, which
            # stalls every thread for ~200 ms). Asked once now; the answer is cached.
            asyncio.to_thread(platform.platform),
            *(executor.warm() for executor in self.executors.values()),
        )
        # httpx (under the OpenAI, Google and BFL clients) loads anyio's asyncio backend on its
        # first request: a tenth of a second of imports on the event loop, now rather than in
        # the first run. Making an anyio Event on this loop loads it.
        anyio.Event()
        if self.routes:
            # The reads every request makes first (the spend check): their statements are
            # compiled once per process, now rather than in the first user's request.
            await self.spend.refusal(self.route_ids, None)
        log.info("%d route(s) ready in %.2f s", len(self.executors), time.perf_counter() - t0)

    # -- worker lifecycle ----------------------------------------------------------------
    async def start_worker(self, *, sweep: bool = True, on_orphans: Orphans | None = None) -> None:
        """Register this process and keep its heartbeat. With `sweep` (the long-running roles)
        it also settles runs of processes that died (`on_orphans` hears about them) and writes
        what waits in the spool into the stores, now and then every few beats. SQLite's
        planner statistics are gathered now when missing, and kept current."""
        await self.liveness.start(sweep=sweep, on_orphans=on_orphans)
        if sweep:
            await self.liveness.settle_spool()
        await asyncio.to_thread(refresh_planner_statistics, self.engine)
        self._statistics = asyncio.create_task(self._refresh_statistics(), name="statistics")

    async def _refresh_statistics(self) -> None:
        while True:
            await asyncio.sleep(PLANNER_STATISTICS_SECONDS)
            try:
                await asyncio.to_thread(refresh_planner_statistics, self.engine)
            except SQLAlchemyError as exc:  # the next round tries again
                log.warning("refreshing planner statistics failed: %s", self.redactor(str(exc)))

    async def aclose(self) -> None:
        self.checks.close()
        if self._statistics is not None:
            self._statistics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._statistics
        await self.liveness.stop()
        for route in self.routes.values():
            try:
                await route.aclose()
            except (OSError, RuntimeError) as exc:  # a client already gone: nothing to close
                log.debug("closing route %s: %s", route.id, exc)
        self.engine.dispose()

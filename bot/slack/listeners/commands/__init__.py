"""Slash commands: `/imagegen` and `/imageroute`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.core.requests import RequestValidator
from bot.health.monitor import HealthMonitor
from bot.slack.access import Access
from bot.slack.bench_thread import BenchThread
from bot.slack.generate import GenerateFlow
from bot.slack.listeners.commands import imagegen, imageroute
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks
from storage.checks import CheckLog
from storage.health import HealthLog
from storage.runlog import RunLog


def register(
    app: AsyncApp,
    *,
    validator: RequestValidator,
    access: Access,
    flow: GenerateFlow,
    runlog: RunLog,
    checklog: CheckLog | None,
    health_log: HealthLog,
    monitor: HealthMonitor,
    bench: BenchThread,
    config_source: str,
    poster: SlackPoster,
    tasks: BackgroundTasks,
) -> None:
    imagegen.register(app, validator=validator, access=access, flow=flow, tasks=tasks)
    imageroute.register(
        app,
        routes=validator.routes,
        config_source=config_source,
        runlog=runlog,
        checklog=checklog,
        health_log=health_log,
        monitor=monitor,
        bench=bench,
        poster=poster,
        tasks=tasks,
    )

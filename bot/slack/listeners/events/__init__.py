"""Events API: the App Home tab."""

from __future__ import annotations

from collections.abc import Mapping

from slack_bolt.async_app import AsyncApp

from bot.health.monitor import HealthMonitor
from bot.slack.listeners.events import app_home
from bot.slack.tasks import BackgroundTasks
from routes.base import Route
from storage.runlog import RunLog


def register(
    app: AsyncApp,
    *,
    routes: Mapping[str, Route],
    runlog: RunLog,
    monitor: HealthMonitor,
    tasks: BackgroundTasks,
) -> None:
    app_home.register(app, routes=routes, runlog=runlog, monitor=monitor, tasks=tasks)

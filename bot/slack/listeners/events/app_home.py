"""The App Home tab as a dashboard: start buttons, each route's health from the state machine and
its model status, the viewer's own recent runs, spend this week (runs of unknown cost counted,
never $0), verdicts and short help."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.lifecycle import route_model_statuses
from bot.core.visibility import Viewer
from bot.health.monitor import HealthMonitor
from bot.slack import blocks
from bot.slack.tasks import BackgroundTasks
from routes.base import Route
from storage.runlog import RunLog
from storage.tables import utcnow

RECENT_RUNS = 8


def register(
    app: AsyncApp,
    *,
    routes: Mapping[str, Route],
    runlog: RunLog,
    monitor: HealthMonitor,
    tasks: BackgroundTasks,
) -> None:
    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        # Acknowledged when this returns: the tab is built in the background.
        if event.get("tab") in (None, "home"):
            tasks.spawn(publish(event, client), name="app-home")

    async def publish(event: dict[str, Any], client: AsyncWebClient) -> None:
        viewer = str(event["user"])
        since = utcnow() - timedelta(days=7)
        # App Home is one person's: their own runs only (no channel to look from).
        visible = Viewer(user=viewer).seen()
        recent = await asyncio.to_thread(runlog.recent, RECENT_RUNS, visible=visible)
        week = await asyncio.to_thread(
            lambda: runlog.route_stats(since, visible=visible, percentiles=False)
        )
        owners = await asyncio.to_thread(runlog.spend_by_billing_owner, since, visible=visible)
        verdicts = await asyncio.to_thread(lambda: runlog.verdict_counts(visible=visible))
        health = await monitor.states()
        rows = [
            blocks.HomeRoute(
                rid,
                r.kind,
                r.config.board_row,
                r.config.billing_owner,
                health.get(rid, "unknown"),
                route_model_statuses(r.config),
            )
            for rid, r in routes.items()
        ]
        demo = next((rid for rid, r in routes.items() if r.kind == "demo"), None)
        view = blocks.home_view(
            rows, recent, week, owners, verdicts, try_route=demo or next(iter(routes), None)
        )
        await client.views_publish(user_id=viewer, view=view)

    app.event("app_home_opened")(home_opened)

"""The App Home tab: routes with their health and model status, recent runs, spend this week
(runs of unknown cost counted, never $0), verdicts, help."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.lifecycle import route_model_statuses
from bot.health.monitor import HealthMonitor
from bot.slack import blocks
from routes.base import Route
from storage.runlog import RunLog
from storage.tables import utcnow


def register(
    app: AsyncApp, *, routes: Mapping[str, Route], runlog: RunLog, monitor: HealthMonitor
) -> None:
    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab") not in (None, "home"):
            return
        since = utcnow() - timedelta(days=7)
        recent = await asyncio.to_thread(runlog.recent, 8)
        week = await asyncio.to_thread(runlog.route_stats, since)
        owners = await asyncio.to_thread(runlog.spend_by_billing_owner, since)
        verdicts = await asyncio.to_thread(runlog.verdict_counts)
        health = await monitor.states()
        rows = [
            (
                rid,
                r.kind,
                r.config.board_row,
                r.config.billing_owner,
                route_model_statuses(r.config),
            )
            for rid, r in routes.items()
        ]
        view = blocks.home_view(rows, health, recent, week, owners, verdicts)
        await client.views_publish(user_id=event["user"], view=view)

    app.event("app_home_opened")(home_opened)

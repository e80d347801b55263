"""The advice's "Compare these routes" button: a modal asking for the prompt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import blocks
from bot.slack.tasks import BackgroundTasks
from routes.base import Route


def register(app: AsyncApp, *, routes: Mapping[str, Route], tasks: BackgroundTasks) -> None:
    async def advice_compare(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        route_ids = [r for r in str(action.get("value", "")).split(",") if r in routes]
        metadata = {"channel": context.channel_id, "routes": route_ids}
        modal = blocks.compare_modal(metadata)
        # Started at once: the trigger id expires within seconds.
        tasks.spawn(client.views_open(trigger_id=body["trigger_id"], view=modal), name="compare")

    app.action("advice_compare")(advice_compare)

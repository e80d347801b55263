"""The advice's "Compare these routes" button: a modal asking for the prompt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import blocks
from routes.base import Route


def register(app: AsyncApp, *, routes: Mapping[str, Route]) -> None:
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
        # trigger_id expires within seconds: open the modal right away.
        await client.views_open(trigger_id=body["trigger_id"], view=blocks.compare_modal(metadata))

    app.action("advice_compare")(advice_compare)

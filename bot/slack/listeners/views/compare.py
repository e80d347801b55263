"""The compare modal's submission: one prompt on the advised routes, side by side."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.core.requests import RequestValidator, build_request
from bot.slack import blocks
from bot.slack.access import Access
from bot.slack.generate import GenerateFlow, SlackAsk
from bot.slack.tasks import BackgroundTasks
from routes.errors import InvalidRequest


def register(
    app: AsyncApp,
    *,
    validator: RequestValidator,
    access: Access,
    flow: GenerateFlow,
    tasks: BackgroundTasks,
) -> None:
    async def compare_submit(
        ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        metadata = json.loads(view.get("private_metadata") or "{}")
        values = view.get("state", {}).get("values", {})
        prompt = str(values.get("prompt", {}).get("value", {}).get("value") or "")
        route_ids = [r for r in metadata.get("routes", []) if r in validator.routes]
        channel = str(metadata.get("channel"))
        try:
            if not route_ids:
                raise InvalidRequest("Those routes are not configured any more.")
            checked = validator.check(route_ids, build_request({"prompt": prompt}))
            refusal = access.channel_refusal(route_ids, channel)
            if refusal:
                raise InvalidRequest(refusal)
        except InvalidRequest as exc:
            await ack(response_action="errors", errors={"prompt": str(exc)})
            return
        await ack()
        ask = SlackAsk(
            team=context.team_id,
            channel=channel,
            user=context.user_id,
            response_url=None,
            request_key=f"view:{view.get('id')}:{view.get('hash')}",
        )
        tasks.spawn(flow.start(ask, checked), name="compare")

    app.view(blocks.COMPARE_MODAL)(compare_submit)

"""App Home buttons: try a route, compare routes (modals asking for the prompt and the channel),
and route health (a modal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import blocks
from bot.slack.answers import Answers
from bot.slack.tasks import BackgroundTasks
from routes.base import Route


def register(
    app: AsyncApp,
    *,
    answers: Answers,
    routes: Mapping[str, Route],
    max_routes: int,
    tasks: BackgroundTasks,
) -> None:
    async def try_route(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        route_id = str(action.get("value") or "")
        chosen = [route_id] if route_id in routes else list(routes)[:1]
        metadata = {"routes": chosen, "from": "home"}
        modal = blocks.compare_modal(metadata, pick_channel=True, max_routes=max_routes)
        # Started at once: the trigger id expires within seconds.
        tasks.spawn(client.views_open(trigger_id=body["trigger_id"], view=modal), name="home-try")

    async def compare(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        modal = blocks.compare_modal(
            {"from": "home"}, choose_from=list(routes), pick_channel=True, max_routes=max_routes
        )
        tasks.spawn(client.views_open(trigger_id=body["trigger_id"], view=modal), name="home-cmp")

    async def health(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()

        async def show() -> None:
            modal = blocks.info_modal("Route health", await answers.health())
            await client.views_open(trigger_id=body["trigger_id"], view=modal)

        tasks.spawn(show(), name="home-health")

    app.action("home_try")(try_route)
    app.action("home_compare")(compare)
    app.action("home_health")(health)

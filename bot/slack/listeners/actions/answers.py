"""Buttons on `/imageroute` answers: Share in channel, the advice's More and its compare button."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.visibility import Viewer
from bot.slack import blocks
from bot.slack.answers import Answers
from bot.slack.poster import NotInChannel, SlackPoster
from bot.slack.tasks import BackgroundTasks
from routes.base import Route

EXPIRED = (
    "That answer is no longer remembered (the bot restarted since, or it is over a day old): "
    "ask again."
)


def register(
    app: AsyncApp,
    *,
    answers: Answers,
    routes: Mapping[str, Route],
    max_routes: int,
    poster: SlackPoster,
    tasks: BackgroundTasks,
) -> None:
    async def share(
        ack: AsyncAck,
        action: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        await ack()
        tasks.spawn(post_shared(str(action.get("value") or ""), context, client, respond), "share")

    async def post_shared(
        key: str, context: AsyncBoltContext, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        asked = answers.keys.asked(key)
        if asked is None:
            await poster.answer(respond, EXPIRED)
            return
        # Shared for everyone in the channel: only that channel's runs, whoever shares it.
        here = Viewer(user=None, channel=context.channel_id)
        answer = await answers.answer(asked, client, here, shared_by=context.user_id)
        try:
            posted = await poster.post(
                str(context.channel_id), answer.summary, blocks=answer.blocks
            )
        except NotInChannel:
            # The bot is not in this channel: the button's response_url can still post there.
            posted = (
                "response_url"
                if await poster.answer(respond, answer.summary, blocks=answer.blocks, public=True)
                else None
            )
        if posted:
            await poster.answer(respond, "Shared.", delete=True)  # the private copy goes
        else:
            await poster.answer(respond, "Slack did not take the message; try again.")

    async def more(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        await ack()
        # Started at once: the trigger id expires within seconds.
        tasks.spawn(open_more(str(action.get("value") or ""), body, client, respond), "more")

    async def open_more(
        key: str, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        question = answers.keys.asked(key)
        if question is None:
            await poster.answer(respond, EXPIRED)
            return
        advice = await answers.advice(question)
        await client.views_open(
            trigger_id=body["trigger_id"], view=blocks.advice_modal(question, advice)
        )

    async def compare(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        route_ids = [r for r in str(action.get("value", "")).split(",") if r in routes]
        metadata = {"channel": context.channel_id, "routes": route_ids, "from": "advice"}
        modal = blocks.compare_modal(
            metadata, pick_channel=context.channel_id is None, max_routes=max_routes
        )
        # Started at once: the trigger id expires within seconds.
        tasks.spawn(client.views_open(trigger_id=body["trigger_id"], view=modal), name="compare")

    app.action("share_answer")(share)
    app.action("advice_more")(more)
    app.action("advice_compare")(compare)

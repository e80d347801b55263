"""The "Edit image with imageroute" message shortcut: opens the edit modal on a shared image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import blocks
from bot.slack.files import image_files
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks
from routes.base import Route


def register(
    app: AsyncApp, *, routes: Mapping[str, Route], poster: SlackPoster, tasks: BackgroundTasks
) -> None:
    async def edit_image(
        ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        await ack()
        # Started at once: the trigger id expires within seconds.
        tasks.spawn(open_editor(body, context, client), name="edit-shortcut")

    async def open_editor(
        body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        message = body.get("message") or {}
        channel, user = context.channel_id, context.user_id
        files = image_files(message)
        editors = [rid for rid, route in routes.items() if route.capabilities().edits]
        problem = None
        if not files:
            problem = "That message has no image to edit: use the shortcut on a message with one."
        elif not editors:
            problem = "No configured route can edit images (add an openai or gemini-image route)."
        if problem:
            await poster.ephemeral(channel, user, problem)
            return
        metadata = {
            "channel": channel,
            "thread_ts": message.get("thread_ts") or message.get("ts"),
            "file": files[0].get("id"),
        }
        await client.views_open(
            trigger_id=body["trigger_id"], view=blocks.edit_modal(editors, metadata)
        )

    app.shortcut(blocks.EDIT_SHORTCUT)(edit_image)

"""Message shortcuts: edit an image shared in Slack."""

from __future__ import annotations

from collections.abc import Mapping

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.shortcuts import edit_image
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks
from routes.base import Route


def register(
    app: AsyncApp, *, routes: Mapping[str, Route], poster: SlackPoster, tasks: BackgroundTasks
) -> None:
    edit_image.register(app, routes=routes, poster=poster, tasks=tasks)

"""Modal submissions: the compare modal and the edit modal."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.core.requests import RequestValidator
from bot.slack.access import Access
from bot.slack.generate import GenerateFlow
from bot.slack.listeners.views import compare, edit_image
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks


def register(
    app: AsyncApp,
    *,
    validator: RequestValidator,
    access: Access,
    flow: GenerateFlow,
    poster: SlackPoster,
    tasks: BackgroundTasks,
    api_url: str,
) -> None:
    compare.register(app, validator=validator, access=access, flow=flow, tasks=tasks)
    edit_image.register(
        app,
        validator=validator,
        access=access,
        flow=flow,
        poster=poster,
        tasks=tasks,
        api_url=api_url,
    )

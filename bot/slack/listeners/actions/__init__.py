"""Block actions: run buttons, verdicts, the advice's compare button."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.core.requests import RequestValidator
from bot.core.runs import RunService
from bot.slack.access import Access
from bot.slack.generate import GenerateFlow
from bot.slack.listeners.actions import advice, run_buttons, verdicts
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks


def register(
    app: AsyncApp,
    *,
    runs: RunService,
    validator: RequestValidator,
    access: Access,
    flow: GenerateFlow,
    poster: SlackPoster,
    tasks: BackgroundTasks,
) -> None:
    run_buttons.register(
        app, runs=runs, validator=validator, access=access, flow=flow, poster=poster, tasks=tasks
    )
    verdicts.register(
        app, runlog=runs.runlog, route_ids=validator.route_ids, poster=poster, tasks=tasks
    )
    advice.register(app, routes=validator.routes, tasks=tasks)

"""Block actions: run buttons, verdicts, answers (share, more, compare), alerts, App Home."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.core.requests import RequestValidator
from bot.core.runs import RunService
from bot.health.monitor import HealthMonitor
from bot.slack.access import Access
from bot.slack.answers import Answers
from bot.slack.generate import GenerateFlow
from bot.slack.listeners.actions import alerts, answers, home, run_buttons, verdicts
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks


def register(
    app: AsyncApp,
    *,
    runs: RunService,
    validator: RequestValidator,
    access: Access,
    flow: GenerateFlow,
    answered: Answers,
    monitor: HealthMonitor,
    poster: SlackPoster,
    tasks: BackgroundTasks,
) -> None:
    run_buttons.register(
        app, runs=runs, validator=validator, access=access, flow=flow, poster=poster, tasks=tasks
    )
    verdicts.register(
        app,
        runlog=runs.runlog,
        route_ids=validator.route_ids,
        poster=poster,
        tasks=tasks,
        checklog=flow.checks.checklog if flow.checks is not None else None,
    )
    answers.register(
        app,
        answers=answered,
        routes=validator.routes,
        max_routes=validator.max_routes,
        poster=poster,
        tasks=tasks,
    )
    alerts.register(
        app,
        monitor=monitor,
        runs=runs,
        validator=validator,
        access=access,
        flow=flow,
        poster=poster,
        tasks=tasks,
    )
    home.register(
        app,
        answers=answered,
        routes=validator.routes,
        max_routes=validator.max_routes,
        tasks=tasks,
    )

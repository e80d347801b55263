"""Listeners by kind, as in Bolt's starter template: each kind's package has `register(app, ...)`.

Every listener validates what it can in memory, calls `ack()` within Slack's 3 s, and only then
does slow work in a background task (bot.slack.tasks). Each receives, as keyword arguments, only
the parts of the product it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from slack_bolt.async_app import AsyncApp

from bot.benchmark.runner import BenchRunner
from bot.checks import AcceptanceChecks
from bot.core.admission import RunSlots
from bot.core.requests import RequestValidator
from bot.core.runs import RunService
from bot.core.spend import SpendPolicy
from bot.health.monitor import HealthMonitor
from bot.slack.access import Access
from bot.slack.answers import Answers
from bot.slack.bench_thread import BenchThread
from bot.slack.generate import GenerateFlow
from bot.slack.listeners import actions, commands, events, shortcuts, views
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks
from storage.health import HealthLog


@dataclass(frozen=True)
class Product:
    """The product's parts the Slack surface drives (built by the process wiring)."""

    runs: RunService
    validator: RequestValidator
    spend: SpendPolicy
    monitor: HealthMonitor
    health_log: HealthLog
    bench_runner: Callable[[], BenchRunner]
    config_source: str
    checks: AcceptanceChecks | None = None
    # This process's run slots: Slack requests past the limit wait their turn.
    slots: RunSlots = field(default_factory=RunSlots)


def register(
    app: AsyncApp,
    *,
    product: Product,
    access: Access,
    flow: GenerateFlow,
    bench: BenchThread,
    poster: SlackPoster,
    tasks: BackgroundTasks,
    api_url: str,
) -> None:
    """Every listener, by kind."""
    runs, validator = product.runs, product.validator
    checklog = product.checks.checklog if product.checks is not None else None
    answers = Answers(
        validator.routes, runs.runlog, product.health_log, product.monitor, checklog=checklog
    )
    commands.register(
        app,
        validator=validator,
        access=access,
        flow=flow,
        answers=answers,
        bench=bench,
        poster=poster,
        tasks=tasks,
    )
    actions.register(
        app,
        runs=runs,
        validator=validator,
        access=access,
        flow=flow,
        answered=answers,
        monitor=product.monitor,
        poster=poster,
        tasks=tasks,
    )
    shortcuts.register(app, routes=validator.routes, poster=poster, tasks=tasks)
    views.register(
        app,
        validator=validator,
        access=access,
        flow=flow,
        poster=poster,
        tasks=tasks,
        api_url=api_url,
    )
    events.register(
        app, routes=validator.routes, runlog=runs.runlog, monitor=product.monitor, tasks=tasks
    )

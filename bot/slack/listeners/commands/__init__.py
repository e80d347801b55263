"""Slash commands: `/imagegen` and `/imageroute`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.core.requests import RequestValidator
from bot.slack.access import Access
from bot.slack.answers import Answers
from bot.slack.bench_thread import BenchThread
from bot.slack.generate import GenerateFlow
from bot.slack.listeners.commands import imagegen, imageroute
from bot.slack.poster import SlackPoster
from bot.slack.tasks import BackgroundTasks


def register(
    app: AsyncApp,
    *,
    validator: RequestValidator,
    access: Access,
    flow: GenerateFlow,
    answers: Answers,
    bench: BenchThread,
    poster: SlackPoster,
    tasks: BackgroundTasks,
) -> None:
    imagegen.register(app, validator=validator, access=access, flow=flow, tasks=tasks)
    imageroute.register(app, answers=answers, bench=bench, poster=poster, tasks=tasks)

"""`/imageroute`: advice from the route board, and help, routes, stats, runs, health, bench."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from advisor import advise
from bot.core.lifecycle import route_model_statuses
from bot.core.workspace import advise_workspace
from bot.health.monitor import HealthMonitor
from bot.slack import blocks
from bot.slack.bench_thread import BenchThread
from bot.slack.poster import DELIVERY_ERRORS, NotInChannel, SlackPoster
from bot.slack.tasks import BackgroundTasks
from routes.base import Route
from storage.checks import CheckLog
from storage.health import HealthLog
from storage.runlog import RunLog
from storage.tables import Run, utcnow

log = logging.getLogger(__name__)

Reply = tuple[str, list[Block]]


def register(
    app: AsyncApp,
    *,
    routes: Mapping[str, Route],
    config_source: str,
    runlog: RunLog,
    checklog: CheckLog | None,
    health_log: HealthLog,
    monitor: HealthMonitor,
    bench: BenchThread,
    poster: SlackPoster,
    tasks: BackgroundTasks,
) -> None:
    answers = Answers(routes, config_source, runlog, health_log, monitor, checklog)

    async def imageroute(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        text = " ".join(str(command.get("text") or "").split())
        word = text.lower()
        if word in ("", "help") or (
            " " not in word and word not in SUBCOMMANDS and not advise(word).matched
        ):
            # An unknown subcommand (or nothing) gets help, not an error.
            await ack(
                response_type="ephemeral", blocks=blocks.help_blocks(), text="imageroute help"
            )
            return
        await ack()
        tasks.spawn(reply(command, context, client, text), name="imageroute")

    async def reply(
        command: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, text: str
    ) -> None:
        if text.lower().split(" ", 1)[0] == "bench":
            await bench.start(command, context, text)  # posts its own parent and thread
            return
        summary, answer = await answers.answer(text, client)
        try:
            await poster.post(str(context.channel_id), summary, blocks=answer)
        except NotInChannel:
            await poster.respond(
                command.get("response_url"), summary + "\n" + blocks.as_text(answer), public=True
            )

    app.command("/imageroute")(imageroute)


SUBCOMMANDS = ("routes", "stats", "runs", "health", "bench")


class Answers:
    """What `/imageroute <question>` and its read-only subcommands answer, as Block Kit."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        config_source: str,
        runlog: RunLog,
        health_log: HealthLog,
        monitor: HealthMonitor,
        checklog: CheckLog | None = None,
    ) -> None:
        self.checklog = checklog
        self.routes = routes
        self.config_source = config_source
        self.runlog = runlog
        self.health_log = health_log
        self.monitor = monitor

    async def answer(self, text: str, client: AsyncWebClient) -> Reply:
        word = text.lower().split(" ", 1)[0]
        if word == "routes":
            return self.configured()
        if word == "stats":
            return await self.stats()
        if word == "runs":
            recent = await asyncio.to_thread(self.runlog.recent, 15)
            return "Recent runs", blocks.runs_blocks(recent, await permalinks(client, recent))
        if word == "health":
            return await self.health()
        return await self.advice(text)

    def configured(self) -> Reply:
        rows = [
            (
                rid,
                r.kind,
                r.model,
                r.config.board_row,
                r.config.billing_owner,
                route_model_statuses(r.config),
            )
            for rid, r in self.routes.items()
        ]
        return "Configured routes", blocks.routes_blocks(rows, self.config_source)

    async def stats(self) -> Reply:
        all_time = await asyncio.to_thread(self.runlog.route_stats)
        week = await asyncio.to_thread(self.runlog.route_stats, utcnow() - timedelta(days=7))
        verdicts = await asyncio.to_thread(self.runlog.verdict_counts)
        answer = blocks.stats_blocks(all_time, week, list(self.routes), verdicts)
        if self.checklog is not None:
            figures = await asyncio.to_thread(self.checklog.figures)
            answer += blocks.checks_stats_blocks(figures)
        return "Route stats", answer

    async def health(self) -> Reply:
        now = utcnow()
        spend = await asyncio.to_thread(
            self.health_log.probe_spend_counted, now - timedelta(days=7)
        )
        return "Route health", blocks.health_blocks(await self.monitor.report(), spend, now)

    async def advice(self, text: str) -> Reply:
        health = await self.monitor.states()
        advice = await asyncio.to_thread(
            advise_workspace, text, self.routes, self.runlog, health, self.checklog
        )
        board_rows = {rid: r.config.board_row for rid, r in self.routes.items()}
        summary = f"First route to benchmark: {advice.route or 'none fits as asked'}"
        if advice.scope != "advice":
            summary = advice.first_benchmark
        return summary, blocks.advice_blocks(text, advice, board_rows)


async def permalinks(client: AsyncWebClient, runs: list[Run]) -> dict[int, str]:
    links: dict[int, str] = {}
    for run in runs:
        if run.slack_channel and run.slack_thread_ts and run.id is not None:
            try:
                response = await client.chat_getPermalink(
                    channel=run.slack_channel, message_ts=run.slack_thread_ts
                )
            except DELIVERY_ERRORS as exc:
                log.debug("no permalink for run %s: %s", run.id, type(exc).__name__)
                continue
            links[run.id] = str(response.get("permalink"))
    return links

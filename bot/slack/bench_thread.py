"""`/imageroute bench routes=a,b [families=...] [repeat=N] [max_cost=USD] [resume=ID]`: a
benchmark in one Slack thread: a parent progress message kept up to date, each output in the
thread with the verdict buttons, then the report (table, contact sheets, chart) in the same
thread. The workspace's guardrails apply: channel and user-group limits refuse up front, and
the daily spend caps bound what the benchmark may spend."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncBoltContext

from bot.benchmark.plan import BenchItem, BenchPlan, BenchProgress
from bot.benchmark.prompts import BenchError
from bot.benchmark.report import budget_lines, build_report, count_outputs, table_lines
from bot.benchmark.runner import BenchRunner
from bot.checks import CheckReport
from bot.core.markup import escape
from bot.core.requests import split_words
from bot.core.runs import RunOrigin
from bot.core.spend import SpendPolicy
from bot.slack import blocks, messages
from bot.slack.access import Access
from bot.slack.poster import INVITE_HINT, NotInChannel, SlackPoster
from routes.errors import InvalidRequest
from storage.assets import AssetStore
from storage.tables import Bench, Run

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 1.0
OPTIONS = ("routes", "families", "repeat", "max_cost", "resume")


def bench_options(text: str) -> dict[str, Any]:
    """Parse the subcommand's key=value options (None = not given); one sentence per problem."""
    words = split_words(text.partition(" ")[2] if text.lower().startswith("bench") else text)
    options: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise InvalidRequest(f"`{word}` is not a bench option: write key=value.")
        options[key.strip().lower()] = value.strip()
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise InvalidRequest(
            f"`{sorted(unknown)[0]}` is not a bench option: "
            "use routes=, families=, repeat=, max_cost=, resume="
        )
    routes = [r for r in options.get("routes", "").split(",") if r]
    families = [f for f in options.get("families", "").split(",") if f]
    try:
        repeat = int(options["repeat"]) if "repeat" in options else None
        max_cost = float(options["max_cost"]) if "max_cost" in options else None
    except ValueError:
        raise InvalidRequest(
            "repeat= takes a whole number and max_cost= an amount in USD."
        ) from None
    return {
        "routes": tuple(routes) or None,
        "families": tuple(families) or None,
        "repeat": repeat,
        "max_cost": max_cost,
        "resume": options.get("resume") or None,
    }


class BenchThread:
    """Starts `/imageroute bench` and keeps its thread: parent status, outputs, report."""

    def __init__(
        self,
        runner: Callable[[], BenchRunner],
        access: Access,
        spend: SpendPolicy,
        poster: SlackPoster,
        assets: AssetStore,
    ) -> None:
        self.runner = runner
        self.access = access
        self.spend = spend
        self.poster = poster
        self.assets = assets

    async def start(self, command: dict[str, Any], context: AsyncBoltContext, text: str) -> None:
        channel = str(context.channel_id)
        user = context.user_id

        async def tell(sentence: str) -> None:
            if not await self.poster.ephemeral(channel, user, sentence):
                await self.poster.respond(command.get("response_url"), sentence)

        runner = self.runner()
        origin = RunOrigin(
            source="bench", slack_team=context.team_id, slack_channel=channel, slack_user=user
        )
        try:
            row, plan, items, resumed = await self._open(runner, text, origin)
        except (InvalidRequest, BenchError) as exc:
            await tell(str(exc))
            return
        allowance = await self.spend.allowance(plan.routes, user, plan.max_cost)
        head = (
            f"<@{user}> {'resumed' if resumed else 'started'} benchmark `{row.id}` on "
            f"{', '.join(f'`{r}`' for r in plan.routes)}: {len(items)} output(s)"
            + (f", budget ${allowance.max_cost:.2f}" if allowance.max_cost is not None else "")
        )
        try:
            parent = await self.poster.post(
                channel, head, blocks=blocks.parent_blocks(head, "Starting…")
            )
        except NotInChannel:
            parent = None
            await self.poster.respond(command.get("response_url"), INVITE_HINT)
        if parent is None:
            await asyncio.to_thread(runner.benches.set_status, row.id, "interrupted")
            return
        await asyncio.to_thread(
            runner.benches.update, row.id, slack_channel=channel, slack_thread_ts=parent
        )
        thread = _Thread(self, runner, channel, parent, head)
        state = await thread.run(items, row.id, plan.max_cost, origin)
        await thread.post_report(state, plan.routes)
        done = (
            f"Done: benchmark `{state.bench_id}`: {count_outputs(state).sentence()}. "
            "Report in the thread."
        )
        await self.poster.update(channel, parent, head, blocks=blocks.parent_blocks(head, done))

    async def _open(
        self, runner: BenchRunner, text: str, origin: RunOrigin
    ) -> tuple[Bench, BenchPlan, list[BenchItem], bool]:
        """The checked plan, stored (or reloaded to resume); refused by channel, user group or
        spend cap before anything is recorded."""
        opts = bench_options(text)
        resume = opts.pop("resume")
        stored = await asyncio.to_thread(runner.benches.get, resume) if resume else None
        routes = opts["routes"] or (
            tuple(stored.routes) if stored else tuple(runner.validator.route_ids)
        )
        for rid in routes:
            runner.validator.route(rid)
        refusal = self.access.channel_refusal(routes, origin.slack_channel) or (
            await self.access.refusal(routes, origin.slack_user)
        )
        if refusal:
            raise InvalidRequest(refusal)
        requested = BenchPlan(routes=routes) if resume is None else None
        row, plan, items = await asyncio.to_thread(
            lambda: runner.open(requested, resume=resume, source="slack", origin=origin, **opts)
        )
        return row, plan, items, resume is not None


class _Thread:
    """One benchmark's thread: each output posted as it finishes, the parent's status kept
    current (at most once a second), then the report."""

    def __init__(
        self, owner: BenchThread, runner: BenchRunner, channel: str, parent: str, head: str
    ) -> None:
        self.poster = owner.poster
        self.assets = owner.assets
        self.runner = runner
        self.channel = channel
        self.parent = parent
        self.head = head
        self._last_update = 0.0
        self._verdict_ts: dict[int, str] = {}  # run id -> its verdict message (checks go there)

    async def run(
        self, items: list[BenchItem], bench_id: str, max_cost: float | None, origin: RunOrigin
    ) -> BenchProgress:
        return await self.runner.run(
            items,
            bench_id=bench_id,
            max_cost=max_cost,
            user=origin.slack_user,
            origin=dataclasses.replace(origin, slack_thread_ts=self.parent),
            on_progress=self.progress,
            on_checked=self.checked,
        )

    async def checked(self, item: BenchItem, run: Run, report: CheckReport) -> None:
        """The output's checks line, added in place to its verdict message."""
        ts = self._verdict_ts.get(run.id or 0)
        if ts is None or not report.rows:
            return
        await self.poster.update(
            self.channel,
            ts,
            f"Verdict for run #{run.id} · checks: {report.text()}",
            blocks=blocks.checked_result_actions(run, self.runner.validator.route_ids, report),
        )

    async def progress(self, state: BenchProgress, item: BenchItem, run: Run | None) -> None:
        if run is not None:
            await self.post_output(item, run)
        now = time.monotonic()
        if now - self._last_update >= PROGRESS_EVERY_SECONDS or state.done == state.total:
            self._last_update = now
            status = (
                f"Benchmark `{state.bench_id}`: {state.done} of {state.total} done, "
                f"{len(state.skipped)} skipped, {state.spent_text}"
            )
            await self.poster.update(
                self.channel, self.parent, self.head, blocks=blocks.parent_blocks(self.head, status)
            )

    async def post_report(self, state: BenchProgress, routes: tuple[str, ...]) -> None:
        runlog = self.runner.runs.runlog
        checklog = self.runner.checks.checklog if self.runner.checks is not None else None
        report = await asyncio.to_thread(
            build_report, state, runlog, self.assets, list(routes), checklog
        )
        table = "\n".join(table_lines(report.cells))
        notes = "\n".join(budget_lines(state))
        skipped = f"\n{len(state.skipped)} output(s) skipped." if state.skipped else ""
        await self.poster.post(
            self.channel,
            f"*Benchmark `{state.bench_id}` report*\n```{table}```\n{notes}{skipped}".strip(),
            thread_ts=self.parent,
        )
        files = [(f"contact-{f}.png", d, f"{f} contact sheet") for f, d in report.sheets.items()]
        files.append(("chart.png", report.chart, "latency and cost"))
        await self.poster.upload(
            self.channel,
            self.parent,
            files,
            "Contact sheets and chart. Export: "
            f"`imageroute export --format csv --bench {state.bench_id}`",
        )

    async def post_output(self, item: BenchItem, run: Run) -> None:
        # Prompt sets are a team's own files: their ids and notes are shown literally.
        label = escape(f"{item.prompt.family}/{item.label} #{item.repeat + 1}")
        if item.prompt.note:
            label += f" · _{escape(item.prompt.note)}_"
        if run.status == "succeeded" and run.id is not None:
            outputs = await asyncio.to_thread(self.runner.runs.runlog.assets, run.id, "output")
            files = []
            for asset in outputs[:1]:
                data = await asyncio.to_thread(self.assets.get, asset.path)
                files.append((f"{run.route_id}-run{run.id}.png", data, f"{run.route_id} #{run.id}"))
            text = f"{label}\n{messages.run_context(run)}"
            await self.poster.upload(self.channel, self.parent, files, text)
        else:
            text = f"{label}\n{messages.run_failure(run)}"
            await self.poster.post(self.channel, text, thread_ts=self.parent)
        ts = await self.poster.post(
            self.channel,
            f"Verdict for run #{run.id}: does it survive the next real step?",
            blocks=blocks.result_actions(run, self.runner.validator.route_ids),
            thread_ts=self.parent,
        )
        if ts is not None and run.id is not None:
            self._verdict_ts[run.id] = ts

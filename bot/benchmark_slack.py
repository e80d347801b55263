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
from typing import TYPE_CHECKING, Any

from bot import messages
from bot.benchmark import BenchError, BenchItem, BenchPlan, BenchProgress, BenchRunner
from bot.benchmark_report import budget_lines, build_report, table_lines
from bot.commands import split_words
from bot.guardrails import day_start
from bot.runs import RunOrigin
from bot.slack_client import NotInChannel
from routes.errors import InvalidRequest
from storage.tables import Run

if TYPE_CHECKING:
    from bot.slack_app import SlackBot

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


async def _caps(
    bot: SlackBot, routes: tuple[str, ...], user: str | None, max_cost: float | None
) -> tuple[float | None, dict[str, float]]:
    """The budget after the user's daily cap, and what each capped route may still spend."""
    runtime = bot.runtime
    since = day_start()
    route_caps: dict[str, float] = {}
    for rid in routes:
        cap = runtime.routes[rid].config.daily_spend_usd
        if cap is not None:
            spent = await asyncio.to_thread(runtime.runlog.spend_since, since, route_id=rid)
            route_caps[rid] = max(cap - spent, 0.0)
    user_cap = runtime.config.limits.user_daily_spend_usd
    if user_cap is not None and user:
        spent = await asyncio.to_thread(runtime.runlog.spend_since, since, slack_user=user)
        left = max(user_cap - spent, 0.0)
        max_cost = left if max_cost is None else min(max_cost, left)
    return max_cost, route_caps


async def run_in_slack(bot: SlackBot, body: dict[str, Any], text: str) -> None:
    runtime = bot.runtime
    poster = bot.poster
    channel = str(body.get("channel_id"))
    user = body.get("user_id")

    async def tell(sentence: str) -> None:
        if not await poster.ephemeral(channel, user, sentence):
            await poster.respond(body.get("response_url"), sentence)

    runner = BenchRunner(runtime)
    try:
        opts = bench_options(text)
        resume = opts.pop("resume")
        stored = await asyncio.to_thread(runner.benches.get, resume) if resume else None
        routes = opts["routes"] or (tuple(stored.routes) if stored else tuple(runtime.route_ids))
        missing = [r for r in routes if r not in runtime.routes]
        if missing:
            known = ", ".join(runtime.route_ids)
            raise BenchError(f"There is no route `{missing[0]}` (configured: {known}).")
        refusal = bot.guardrails.check_channel(routes, channel) or (
            await bot.guardrails.check_after_ack(routes, user)
        )
        if refusal:
            await tell(refusal)
            return
        origin = RunOrigin(
            source="bench", slack_team=body.get("team_id"), slack_channel=channel, slack_user=user
        )
        requested = BenchPlan(routes=routes) if resume is None else None
        row, plan, items = await asyncio.to_thread(
            lambda: runner.open(requested, resume=resume, source="slack", origin=origin, **opts)
        )
    except (InvalidRequest, BenchError) as exc:
        await tell(str(exc))
        return
    max_cost, route_caps = await _caps(bot, plan.routes, user, plan.max_cost)
    head = (
        f"<@{user}> {'resumed' if resume else 'started'} benchmark `{row.id}` on "
        f"{', '.join(f'`{r}`' for r in plan.routes)}: {len(items)} output(s)"
        + (f", budget ${max_cost:.2f}" if max_cost is not None else "")
    )
    try:
        parent = await poster.post(channel, head, blocks=messages.parent_blocks(head, "Starting…"))
    except NotInChannel:
        parent = None
        await poster.respond(
            body.get("response_url"), "Invite me to this channel first: `/invite @imageroute`."
        )
    if parent is None:
        await asyncio.to_thread(runner.benches.set_status, row.id, "interrupted")
        return
    await asyncio.to_thread(
        runner.benches.update, row.id, slack_channel=channel, slack_thread_ts=parent
    )
    state = await _run(bot, runner, items, row.id, max_cost, route_caps, origin, parent, head)
    await _post_report(bot, channel, parent, state, plan.routes)
    done = (
        f"Done: benchmark `{state.bench_id}`, {state.done} of {state.total} outputs, "
        f"{len(state.skipped)} skipped, ${state.spent_usd:.2f} spent. Report in the thread."
    )
    await poster.update(channel, parent, head, blocks=messages.parent_blocks(head, done))


async def _run(
    bot: SlackBot,
    runner: BenchRunner,
    items: list[BenchItem],
    bench_id: str,
    max_cost: float | None,
    route_caps: dict[str, float],
    origin: RunOrigin,
    parent: str,
    head: str,
) -> BenchProgress:
    """Run, posting each output into the thread and keeping the parent's status current."""
    channel = origin.slack_channel or ""
    last_update = [0.0]

    async def progress(state: BenchProgress, item: BenchItem, run: Run | None) -> None:
        if run is not None:
            await _post_output(bot, channel, parent, item, run)
        now = time.monotonic()
        if now - last_update[0] >= PROGRESS_EVERY_SECONDS or state.done == state.total:
            last_update[0] = now
            status = (
                f"Benchmark `{state.bench_id}`: {state.done} of {state.total} done, "
                f"{len(state.skipped)} skipped, ${state.spent_usd:.2f} spent"
            )
            await bot.poster.update(
                channel, parent, head, blocks=messages.parent_blocks(head, status)
            )

    thread_origin = dataclasses.replace(origin, slack_thread_ts=parent)
    return await runner.run(
        items,
        bench_id=bench_id,
        max_cost=max_cost,
        origin=thread_origin,
        on_progress=progress,
        route_caps=route_caps,
    )


async def _post_report(
    bot: SlackBot, channel: str, parent: str, state: BenchProgress, routes: tuple[str, ...]
) -> None:
    runtime = bot.runtime
    report = await asyncio.to_thread(
        build_report, state, runtime.runlog, runtime.assets, list(routes)
    )
    table = "\n".join(table_lines(report.cells))
    notes = "\n".join(budget_lines(state))
    skipped = f"\n{len(state.skipped)} output(s) skipped." if state.skipped else ""
    await bot.poster.post(
        channel,
        f"*Benchmark `{state.bench_id}` report*\n```{table}```\n{notes}{skipped}".strip(),
        thread_ts=parent,
    )
    files = [(f"contact-{f}.png", data, f"{f} contact sheet") for f, data in report.sheets.items()]
    files.append(("chart.png", report.chart, "latency and cost"))
    await bot.poster.upload(
        channel,
        parent,
        files,
        "Contact sheets and chart. Export: "
        f"`imageroute export --format csv --bench {state.bench_id}`",
    )


async def _post_output(bot: SlackBot, channel: str, thread: str, item: BenchItem, run: Run) -> None:
    runtime = bot.runtime
    label = f"{item.prompt.family}/{item.prompt.id} #{item.repeat + 1}"
    if item.prompt.note:
        label += f" · _{item.prompt.note}_"
    if run.status == "succeeded" and run.id is not None:
        outputs = await asyncio.to_thread(runtime.runlog.assets, run.id, "output")
        files = []
        for asset in outputs[:1]:
            data = await asyncio.to_thread(runtime.assets.get, asset.path)
            files.append((f"{run.route_id}-run{run.id}.png", data, f"{run.route_id} #{run.id}"))
        await bot.poster.upload(channel, thread, files, f"{label}\n{messages.run_context(run)}")
    else:
        await bot.poster.post(channel, f"{label}\n{messages.run_failure(run)}", thread_ts=thread)
    await bot.poster.post(
        channel,
        f"Verdict for run #{run.id}: does it survive the next real step?",
        blocks=messages.result_actions(run, list(runtime.executors)),
        thread_ts=thread,
    )

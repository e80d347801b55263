"""`/imageroute bench routes=a,b [families=...] [repeat=N] [max_cost=USD]`: a benchmark in one
Slack thread: a parent progress message kept up to date, each output in the thread with the
verdict buttons, then the report (table, contact sheets, chart) in the same thread."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from bot import messages
from bot.benchmark import BenchError, BenchItem, BenchProgress, BenchRunner, load_prompts
from bot.benchmark_report import build_report
from bot.commands import split_words
from bot.runs import RunOrigin
from routes.errors import InvalidRequest
from storage.tables import Run

if TYPE_CHECKING:
    from bot.slack_app import SlackBot

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 1.0


def bench_options(text: str, route_ids: list[str]) -> dict[str, Any]:
    """Parse the subcommand's key=value options; one sentence per problem."""
    words = split_words(text.partition(" ")[2] if text.lower().startswith("bench") else text)
    options: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise InvalidRequest(f"`{word}` is not a bench option: write key=value.")
        options[key.strip().lower()] = value.strip()
    unknown = set(options) - {"routes", "families", "repeat", "max_cost"}
    if unknown:
        raise InvalidRequest(
            f"`{sorted(unknown)[0]}` is not a bench option: "
            "use routes=, families=, repeat=, max_cost="
        )
    routes = [r for r in options.get("routes", "").split(",") if r] or route_ids
    families = [f for f in options.get("families", "").split(",") if f] or None
    try:
        repeat = int(options.get("repeat", "1"))
        max_cost = float(options["max_cost"]) if "max_cost" in options else None
    except ValueError:
        raise InvalidRequest(
            "repeat= takes a whole number and max_cost= an amount in USD."
        ) from None
    return {"routes": routes, "families": families, "repeat": repeat, "max_cost": max_cost}


async def run_in_slack(bot: SlackBot, body: dict[str, Any], text: str) -> None:
    runtime = bot.runtime
    poster = bot.poster
    channel = str(body.get("channel_id"))
    user = body.get("user_id")
    try:
        opts = bench_options(text, runtime.route_ids)
        runner = BenchRunner(runtime)
        items = runner.plan(load_prompts(), opts["routes"], opts["families"], opts["repeat"])
    except (InvalidRequest, BenchError) as exc:
        if not await poster.ephemeral(channel, user, str(exc)):
            await poster.respond(body.get("response_url"), str(exc))
        return
    head = (
        f"<@{user}> started a benchmark on {', '.join(f'`{r}`' for r in opts['routes'])}: "
        f"{len(items)} output(s)"
        + (f", budget ${opts['max_cost']:.2f}" if opts["max_cost"] is not None else "")
    )
    parent = await poster.post(channel, head, blocks=messages.parent_blocks(head, "Starting…"))
    if parent is None:
        return
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
            await poster.update(channel, parent, head, blocks=messages.parent_blocks(head, status))

    origin = RunOrigin(
        source="bench",
        slack_team=body.get("team_id"),
        slack_channel=channel,
        slack_user=user,
        slack_thread_ts=parent,
    )
    state = await runner.run(items, max_cost=opts["max_cost"], origin=origin, on_progress=progress)
    report = await asyncio.to_thread(
        build_report, state, runtime.runlog, runtime.assets, opts["routes"]
    )
    table = "\n".join(report.markdown.splitlines()[8 : 10 + len(report.cells)])
    await poster.post(
        channel, f"*Benchmark `{state.bench_id}` report*\n```{table}```", thread_ts=parent
    )
    files = [(f"contact-{f}.png", data, f"{f} contact sheet") for f, data in report.sheets.items()]
    files.append(("chart.png", report.chart, "latency and cost"))
    await poster.upload(
        channel,
        parent,
        files,
        "Contact sheets and chart. Export: "
        f"`imageroute export --format csv --bench {state.bench_id}`",
    )
    done = (
        f"Done: benchmark `{state.bench_id}`, {state.done} of {state.total} outputs, "
        f"{len(state.skipped)} skipped, ${state.spent_usd:.2f} spent. Report in the thread."
    )
    await poster.update(channel, parent, head, blocks=messages.parent_blocks(head, done))


async def _post_output(bot: SlackBot, channel: str, thread: str, item: BenchItem, run: Run) -> None:
    runtime = bot.runtime
    label = f"{item.prompt.family}/{item.prompt.id} #{item.repeat + 1}"
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
        f"Verdict for run #{run.id}",
        blocks=messages.result_actions(run, list(runtime.executors)),
        thread_ts=thread,
    )

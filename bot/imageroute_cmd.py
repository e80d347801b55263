"""`/imageroute`: advice from the route board plus help, routes, stats and runs, as Block Kit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from advisor import Advice, WorkspaceRoute, advise
from advisor.advice import describe_workspace_route
from bot.messages import money, seconds, trim
from bot.runtime import Runtime
from storage.runlog import RouteStats
from storage.tables import Run, utcnow

HELP = """*imageroute* helps you pick and compare image-generation routes.
• `/imageroute <question>`: which route to benchmark first, why, what to verify, and the caveats.
  e.g. `/imageroute we're on GCP and need product shots with transparent backgrounds`
• `/imageroute routes`: the routes configured here, their kinds, board rows and billing owners.
• `/imageroute stats`: per route runs, success rate, p50/p95 latency, median cost, spend this week.
• `/imageroute runs`: the latest runs with links to their threads.
• `/imageroute health`: each route's health state and open incidents.
• `/imageroute bench routes=a,b [families=product,poster,edit,assistant,edge] [repeat=N] \
[max_cost=USD] [resume=ID]`: the five-family benchmark in one thread, with verdict buttons
  on every output and a report (table, contact sheets, chart) at the end.
• `/imagegen route=<id> prompt="..." [size=1024x1024] [quality=low|medium|high] [n=1..4] \
[background=transparent|opaque|auto] [format=png|jpeg|webp] [seed=N]`: generate on a route;
  `route=a,b`, `route=all` or `route=board:google` compares several side by side in one thread."""


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": trim(text)}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": trim(text, 2000)}]}


def help_blocks() -> list[dict[str, Any]]:
    return [section(HELP)]


def workspace_routes(
    runtime: Runtime, health: dict[str, str] | None = None
) -> list[WorkspaceRoute]:
    """Configured routes with their run-log numbers, as plain data for the advisor."""
    stats = runtime.runlog.route_stats()
    out: list[WorkspaceRoute] = []
    for rid, route in runtime.routes.items():
        board = route.config.board_row
        if board is None:
            continue
        s = stats.get(rid)
        out.append(
            WorkspaceRoute(
                route_id=rid,
                kind=route.kind,
                board=board,
                health=(health or {}).get(rid),
                runs=s.runs if s else 0,
                success_rate=s.success_rate if s else None,
                p50_latency_s=s.p50_latency_s if s else None,
                median_cost_usd=s.median_cost_usd if s else None,
            )
        )
    return out


def advice_blocks(
    question: str, advice: Advice, configured: dict[str, str | None]
) -> list[dict[str, Any]]:
    """The answer: route, first benchmark, why, caveats, verify list, alternatives, workspace."""
    route = f"`{advice.route}`" if advice.route else "no route fits as asked"
    head = f"*First route to benchmark: {route}*"
    if advice.is_default:
        head += " (the default: nothing in the question pointed elsewhere)"
    blocks: list[dict[str, Any]] = [
        context(f"> {' '.join(question.split())[:280]}"),
        section(f"{head}\nStart with *{advice.first_benchmark}*.\n{advice.why}"),
    ]
    if advice.caveats:
        blocks.append(
            section("\n".join(f":warning: *{c.title}*: {c.text}" for c in advice.caveats))
        )
    if advice.verify:
        blocks.append(section("*Verify on it*\n" + "\n".join(f"• {v}" for v in advice.verify)))
    if advice.alternatives:
        blocks.append(
            section(
                "*Alternatives*\n"
                + "\n".join(
                    f"• `{a.route}` ({a.first_benchmark}): {a.reason}" for a in advice.alternatives
                )
            )
        )
    if advice.notes:
        blocks.append(context("\n".join(advice.notes)))
    if advice.route is not None:
        if advice.in_workspace:
            lines = [describe_workspace_route(ws) for ws in advice.in_workspace]
            blocks.append(section("*In this workspace*\n" + "\n".join(f"• {x}" for x in lines)))
        else:
            blocks.append(context(f"No route configured here serves the `{advice.route}` row yet."))
    rows = [r for r in (advice.route, *(a.route for a in advice.alternatives)) if r]
    targets = [rid for rid, row in configured.items() if row in rows]
    if targets:
        blocks.append(
            {
                "type": "actions",
                "block_id": "advice",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "advice_compare",
                        "text": {"type": "plain_text", "text": "Compare these routes"},
                        "value": ",".join(targets)[:2000],
                        "style": "primary",
                    }
                ],
            }
        )
    return blocks


def routes_blocks(runtime: Runtime) -> list[dict[str, Any]]:
    lines = []
    for rid, route in runtime.routes.items():
        c = route.config
        lines.append(
            f"• `{rid}`: {route.kind}, model `{route.model}`, board row "
            f"`{c.board_row or 'none'}`, billed to {c.billing_owner or 'unknown owner'}"
        )
    text = "*Configured routes* (" + runtime.config.source + ")\n" + "\n".join(lines)
    return [section(text)]


def stats_blocks(
    all_time: dict[str, RouteStats],
    week: dict[str, RouteStats],
    route_ids: Sequence[str],
    verdicts: dict[str, tuple[int, int]] | None = None,
) -> list[dict[str, Any]]:
    verdicts = verdicts or {}
    rows = [("route", "runs", "success", "p50", "p95", "median cost", "spend 7d", "verdicts")]
    for rid in sorted(set(route_ids) | set(all_time)):
        s = all_time.get(rid)
        w = week.get(rid)
        rows.append(
            (
                rid[:24],
                str(s.runs if s else 0),
                f"{s.success_rate:.0%}" if s and s.success_rate is not None else "—",
                seconds(s.p50_latency_s) if s else "—",
                seconds(s.p95_latency_s) if s else "—",
                money(s.median_cost_usd, "tokens") if s and s.median_cost_usd is not None else "—",
                f"${w.spend_usd:.2f}" if w else "$0.00",
                "{} ok / {} not".format(*verdicts[rid]) if rid in verdicts else "—",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows)
    return [section(f"*Route stats* (finished runs)\n```{table}```")]


def runs_blocks(runs: Sequence[Run], permalink: dict[int, str]) -> list[dict[str, Any]]:
    if not runs:
        return [section('No runs yet. Try `/imagegen prompt="a red bicycle"`.')]
    lines = []
    for run in runs:
        when = run.created_at.strftime("%Y-%m-%d %H:%M")
        link = permalink.get(run.id or 0)
        where = (
            f"<{link}|thread>"
            if link
            else (f"<#{run.slack_channel}>" if run.slack_channel else run.source)
        )
        lines.append(
            f"• #{run.id} {when} `{run.route_id}` {run.status} "
            f"{seconds(run.latency_s)} {money(run.cost_usd, run.cost_basis)} {where}"
        )
    return [section("*Recent runs*\n" + "\n".join(lines))]


def since_week() -> Any:
    return utcnow() - timedelta(days=7)


def answer(
    runtime: Runtime, text: str, health: dict[str, str] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Advice for a question (the subcommands are handled by the caller)."""
    advice = advise(text, workspace_routes(runtime, health))
    blocks = advice_blocks(text, advice, runtime.board_rows)
    summary = f"First route to benchmark: {advice.route or 'none fits as asked'}"
    return summary, blocks

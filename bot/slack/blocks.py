"""Every Block Kit message, modal and home tab the bot shows, built with slack_sdk's models.

Nothing here talks to Slack, so each surface is testable as data. Block Kit limits (3,000
characters per section, 2,000 per context, 50 blocks per message) are enforced here: display
text is trimmed, while the run log keeps the full text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from advisor import Advice
from advisor.advice import describe_workspace_route
from bot.checks import CHECK_LABELS, CheckReport
from bot.core.figures import money, seconds, spend
from bot.core.figures import unpriced as unpriced_text
from bot.core.lifecycle import ModelStatus, statuses_text
from bot.core.markup import escape
from bot.health.report import RouteHealth
from bot.slack.health_alerts import ago
from bot.slack.messages import CONTEXT_LIMIT, HELP, trim
from storage.checks import CHECK_NAMES, CheckFigures
from storage.runlog import RouteStats, Spend
from storage.tables import Run

COMPARE_MODAL = "compare_modal"
EDIT_SHORTCUT = "edit_image"
EDIT_MODAL = "edit_image_modal"
HEALTH_ICON = {
    "healthy": ":large_green_circle:",
    "degraded": ":large_yellow_circle:",
    "failing": ":red_circle:",
}


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=trim(text)))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=trim(text, CONTEXT_LIMIT))])


def as_text(blocks: Sequence[Block]) -> str:
    """The sections' text, for places that take no blocks (a response_url fallback)."""
    return "\n".join(b.text.text for b in blocks if isinstance(b, SectionBlock) and b.text)


# -- runs --------------------------------------------------------------------------------------
def parent_blocks(text: str, status: str) -> list[Block]:
    return [section(text), context(status)]


def result_actions(run: Run, route_ids: Sequence[str]) -> list[Block]:
    """Buttons under one result: re-run, try another route, compare on all, verdicts."""
    rid = str(run.id)
    others = [r for r in route_ids if r != run.route_id][:100]
    elements: list[Any] = [ButtonElement(text="Re-run", action_id="rerun", value=rid)]
    if others:
        elements.append(
            StaticSelectElement(
                action_id="try_route",
                placeholder="Try another route",
                options=[Option(text=r[:75], value=f"{rid}:{r}"[:150]) for r in others],
            )
        )
        elements.append(
            ButtonElement(text="Compare on all routes", action_id="compare_all", value=rid)
        )
    if run.status == "succeeded":
        elements.append(
            ButtonElement(
                text="Survives the next step", action_id="verdict_pass", style="primary", value=rid
            )
        )
        elements.append(
            ButtonElement(text="Does not", action_id="verdict_fail", style="danger", value=rid)
        )
    return [ActionsBlock(block_id=f"run-{rid}", elements=elements)]


def checks_line(report: CheckReport) -> str | None:
    """The acceptance checks under a result, in one line: "text 96% · kept 98% outside mask";
    a failed check says what failed, one that could not run says so. None: nothing checked."""
    parts = []
    for line in report.lines():
        why = "; ".join(r for r in line.reasons if r != line.summary)
        detail = f" ({escape(why)})" if why else ""
        if line.status == "failed":
            parts.append(f":x: {escape(line.summary)}{detail}")
        elif line.status == "not_run":
            parts.append(f"_{escape(line.summary)}_{detail}")
        else:
            parts.append(escape(line.summary))
    if not parts:
        return None
    mark = {True: ":white_check_mark:", False: ":warning:", None: ":grey_question:"}[report.verdict]
    return trim(f"{mark} Checks: " + " · ".join(parts), CONTEXT_LIMIT)


def checked_result_actions(
    run: Run, route_ids: Sequence[str], report: CheckReport | None
) -> list[Block]:
    """A result's buttons with its checks line above them, once the checks are in."""
    line = checks_line(report) if report is not None else None
    return ([context(line)] if line else []) + result_actions(run, route_ids)


# -- /imageroute ---------------------------------------------------------------------------------
def help_blocks() -> list[Block]:
    return [section(HELP)]


def advice_blocks(
    question: str, advice: Advice, configured: Mapping[str, str | None]
) -> list[Block]:
    """The answer: route, first benchmark, why, caveats, verify list, alternatives, workspace."""
    asked = context(f"> {escape(' '.join(question.split())[:280])}")
    if advice.scope != "advice":
        # Out of scope or not understood: say so and how to ask, with nothing to compare.
        head = (
            "*Outside what I advise on*"
            if advice.scope == "out-of-scope"
            else "*I did not understand the question*"
        )
        return [asked, section(f"{head}\n{escape(advice.why)}")]
    route = f"`{advice.route}`" if advice.route else "no route fits as asked"
    head = f"*First route to benchmark: {route}*"
    if advice.is_default:
        head += " (the default: nothing in the question pointed elsewhere)"
    blocks: list[Block] = [
        asked,
        section(f"{head}\nStart with *{escape(advice.first_benchmark)}*.\n{escape(advice.why)}"),
    ]
    if advice.caveats:
        blocks.append(
            section(
                "\n".join(
                    f":warning: *{escape(c.title)}*: {escape(c.text)}" for c in advice.caveats
                )
            )
        )
    if advice.verify:
        blocks.append(
            section("*Verify on it*\n" + "\n".join(f"• {escape(v)}" for v in advice.verify))
        )
    if advice.alternatives:
        lines = [
            f"• `{a.route}` ({escape(a.first_benchmark)}): {escape(a.reason)}"
            for a in advice.alternatives
        ]
        blocks.append(section("*Alternatives*\n" + "\n".join(lines)))
    if advice.notes:
        blocks.append(context(escape("\n".join(advice.notes))))
    if advice.route is not None:
        if advice.in_workspace:
            lines = [describe_workspace_route(ws) for ws in advice.in_workspace]
            blocks.append(
                section("*In this workspace*\n" + "\n".join(f"• {escape(x)}" for x in lines))
            )
        else:
            blocks.append(context(f"No route configured here serves the `{advice.route}` row yet."))
    rows = [r for r in (advice.route, *(a.route for a in advice.alternatives)) if r]
    targets = [rid for rid, row in configured.items() if row in rows]
    if targets:
        button = ButtonElement(
            text="Compare these routes",
            action_id="advice_compare",
            value=",".join(targets)[:2000],
            style="primary",
        )
        blocks.append(ActionsBlock(block_id="advice", elements=[button]))
    return blocks


def lifecycle_text(statuses: Sequence[ModelStatus]) -> str:
    """A route's model status (bot.core.lifecycle), flagged when a model needs a move."""
    text = statuses_text(statuses)
    return f":warning: {text}" if any(s.needs_attention for s in statuses) else text


def routes_blocks(
    routes: Sequence[tuple[str, str, str, str | None, str | None, Sequence[ModelStatus]]],
    source: str,
) -> list[Block]:
    """routes: (id, kind, model, board row, billing owner, its models' lifecycle)."""
    lines = [
        f"• `{rid}`: {kind}, model `{model}` ({lifecycle_text(status)}), board row "
        f"`{board or 'none'}`, billed to {escape(owner or 'unknown owner')}"
        for rid, kind, model, board, owner, status in routes
    ]
    return [section(f"*Configured routes* ({source})\n" + "\n".join(lines))]


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows)


def stats_blocks(
    all_time: Mapping[str, RouteStats],
    week: Mapping[str, RouteStats],
    route_ids: Sequence[str],
    verdicts: Mapping[str, tuple[int, int]] | None = None,
) -> list[Block]:
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
                _median(s),
                spend(w.spend_usd, w.unpriced_runs) if w else "$0.00",
                "{} ok / {} not".format(*verdicts[rid]) if rid in verdicts else "—",
            )
        )
    unpriced = sum(w.unpriced_runs for w in week.values())
    blocks: list[Block] = [section(f"*Route stats* (finished runs)\n```{_table(rows)}```")]
    if unpriced:
        blocks.append(
            context(
                f"{unpriced_text(unpriced)} this week: they made images at a cost nothing on "
                "file prices, so they are counted beside the spend, never as $0. Add a price "
                "(`pricing` or `estimated_usd_per_image`) to the route."
            )
        )
    return blocks


def _median(stats: RouteStats | None) -> str:
    if stats is None or (stats.median_cost_usd is None and not stats.unpriced_runs):
        return "—"
    if stats.median_cost_usd is None:
        return "unknown"
    return money(stats.median_cost_usd, None)


def checks_stats_blocks(figures: Sequence[CheckFigures]) -> list[Block]:
    """Per route and family: each acceptance check's passes of those that ran, and its mean
    score (one count per image checked)."""
    if not figures:
        return [context("No acceptance checks yet: they run on every new image.")]
    cells: dict[tuple[str, str], dict[str, CheckFigures]] = {}
    for f in figures:
        cells.setdefault((f.route_id, f.family), {})[f.name] = f
    rows = [("route", "family", *(CHECK_LABELS[n] for n in CHECK_NAMES))]
    for (rid, family), by_name in sorted(cells.items()):
        rows.append(
            (rid[:24], family or "ad hoc", *(_check_cell(by_name.get(n)) for n in CHECK_NAMES))
        )
    head = "*Acceptance checks* (passed of checked · mean score)"
    return [section(f"{head}\n```{_table(rows)}```")]


def _check_cell(f: CheckFigures | None) -> str:
    if f is None:
        return "—"
    if not f.ran:
        return f"{f.not_run} not run"
    mean = f" · {f.mean_score:.0%}" if f.mean_score is not None else ""
    return f"{f.passed}/{f.ran}{mean}"


def runs_blocks(runs: Sequence[Run], permalink: Mapping[int, str]) -> list[Block]:
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


def health_blocks(
    report: Sequence[RouteHealth], probe_spend_7d: Spend, now: datetime
) -> list[Block]:
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    def secs(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}s"

    rows = [f"{'route':<14}{'state':<10}{'last probe':<22}{'24h':>7}{'7d':>8}{'p50':>8}{'p95':>8}"]
    incidents = []
    for item in report:
        last = item.last_check
        last_text = "never"
        if last is not None:
            status = "ok" if last.ok else last.error_class or "failed"
            last_text = f"{status} {ago(last.checked_at, now)}"
        rows.append(
            f"{item.route_id[:13]:<14}{item.state:<10}{last_text[:21]:<22}"
            f"{pct(item.uptime_24h):>7}{pct(item.uptime_7d):>8}{secs(item.p50_s):>8}"
            f"{secs(item.p95_s):>8}"
        )
        if item.incident is not None:
            inc = item.incident
            incidents.append(
                f"• `{inc.route_id}` {inc.kind} since {ago(inc.opened_at, now)}: "
                f"{escape(inc.last_error or 'no detail')}"
            )
    return [
        section("*Route health* (probes)\n```" + "\n".join(rows) + "```"),
        section("*Open incidents*\n" + ("\n".join(incidents) or "None.")),
        context(
            "Probe spend over 7 days: "
            + spend(probe_spend_7d.known_usd, probe_spend_7d.unpriced_runs, "probe")
        ),
    ]


# -- App Home ------------------------------------------------------------------------------------
def home_view(
    routes: Sequence[tuple[str, str, str | None, str | None, Sequence[ModelStatus]]],
    health: Mapping[str, str],
    recent: Sequence[Run],
    week: Mapping[str, RouteStats],
    week_by_owner: Mapping[str, Spend],
    verdicts: Mapping[str, tuple[int, int]],
) -> View:
    """routes: (id, kind, board row, billing owner, its models' lifecycle)."""
    lines = []
    for rid, kind, board, owner, status in routes:
        state = health.get(rid, "unknown")
        icon = HEALTH_ICON.get(state, ":white_circle:")
        good, bad = verdicts.get(rid, (0, 0))
        lines.append(
            f"{icon} `{rid}` {kind}, model {lifecycle_text(status)}, board `{board or 'none'}`, "
            f"{state}, billed to {escape(owner or 'unknown owner')} · verdicts {good} survive / "
            f"{bad} do not"
        )
    by_route = [
        f"• `{rid}`: {spend(s.spend_usd, s.unpriced_runs)} over {s.runs} run(s)"
        for rid, s in week.items()
    ]
    owners = [
        f"• {escape(owner)}: {spend(s.known_usd, s.unpriced_runs)}"
        for owner, s in week_by_owner.items()
    ]
    run_lines = [
        f"• #{r.id} `{r.route_id}` {r.status} {seconds(r.latency_s)} "
        f"{money(r.cost_usd, r.cost_basis)}: {escape(' '.join(r.prompt.split())[:60])}"
        for r in recent
    ]
    blocks: list[Block] = [
        HeaderBlock(text="imageroute"),
        section("*Routes*\n" + ("\n".join(lines) or "No routes configured.")),
        section(
            "*Spend this week by route*\n"
            + ("\n".join(by_route) or "Nothing spent yet.")
            + "\n*By billing owner*\n"
            + ("\n".join(owners) or "—")
        ),
        section("*Recent runs*\n" + ("\n".join(run_lines) or "No runs yet.")),
        DividerBlock(),
        section(HELP),
        context("Refreshed each time you open this tab."),
    ]
    return View(type="home", blocks=blocks[:100])


# -- modals --------------------------------------------------------------------------------------
def _metadata(metadata: Mapping[str, Any]) -> str:
    return json.dumps(metadata)[:3000]


def compare_modal(metadata: Mapping[str, Any]) -> View:
    routes = ", ".join(metadata.get("routes", []))
    prompt = InputBlock(
        block_id="prompt",
        label="Prompt",
        element=PlainTextInputElement(action_id="value", multiline=True, max_length=3000),
    )
    return View(
        type="modal",
        callback_id=COMPARE_MODAL,
        private_metadata=_metadata(metadata),
        title=PlainTextObject(text="Compare routes"),
        submit=PlainTextObject(text="Run"),
        blocks=[section(f"Runs one prompt on {routes} side by side in the channel."), prompt],
    )


def edit_modal(route_ids: Sequence[str], metadata: Mapping[str, Any]) -> View:
    options = [Option(text=r[:75], value=r) for r in route_ids][:100]
    route = InputBlock(
        block_id="route",
        label="Route",
        element=StaticSelectElement(action_id="value", options=options, initial_option=options[0]),
    )
    instruction = InputBlock(
        block_id="instruction",
        label="What should change?",
        element=PlainTextInputElement(action_id="value", multiline=True, max_length=4000),
    )
    # slack_sdk has no model for file_input yet: the element stays a plain dict.
    mask = InputBlock(
        block_id="mask",
        optional=True,
        label="Mask (PNG, transparent where to edit)",
        element={"type": "file_input", "action_id": "value", "filetypes": ["png"], "max_files": 1},
    )
    return View(
        type="modal",
        callback_id=EDIT_MODAL,
        private_metadata=_metadata(metadata),
        title=PlainTextObject(text="Edit image"),
        submit=PlainTextObject(text="Edit"),
        close=PlainTextObject(text="Cancel"),
        blocks=[route, instruction, mask],
    )

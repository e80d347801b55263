"""Every Block Kit message, modal and home tab the bot shows, built with slack_sdk's models.

Nothing here talks to Slack, so each surface is testable as data. Block Kit limits are checked
where a surface is made (`checked`: slack_sdk's own validation of every block, and the block
count), and display text is trimmed to them, while the run log keeps the full text.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    ConversationFilter,
    ConversationSelectElement,
    DividerBlock,
    HeaderBlock,
    ImageBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    OverflowMenuElement,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
)
from slack_sdk.models.blocks.basic_components import SlackFile
from slack_sdk.models.views import View

from advisor import Advice, board_rows
from advisor.advice import describe_workspace_route
from bot.checks import CHECK_LABELS, CheckReport
from bot.core.figures import money, seconds, spend
from bot.core.figures import unpriced as unpriced_text
from bot.core.lifecycle import ModelStatus, statuses_text
from bot.core.markup import escape
from bot.health.events import AlertLine, RoutesDown
from bot.health.report import RouteHealth
from bot.slack import messages
from bot.slack.messages import (
    BUTTON_LIMIT,
    CONTEXT_LIMIT,
    HEADER_LIMIT,
    MAX_BLOCKS,
    ago,
    first_sentence,
    trim,
)
from storage.checks import CHECK_NAMES, CheckFigures
from storage.runlog import RECENT_RUNS, RouteStats, Spend
from storage.tables import Run

COMPARE_MODAL = "compare_modal"
EDIT_SHORTCUT = "edit_image"
EDIT_MODAL = "edit_image_modal"
MAX_VIEW_BLOCKS = 100
HEALTH_ICON = {
    "healthy": ":large_green_circle:",
    "degraded": ":large_yellow_circle:",
    "failing": ":red_circle:",
    "off": ":white_circle:",
    "unknown": ":white_circle:",
}
STATUS_ICON = {
    "waiting": ":hourglass_flowing_sand:",
    "queued": ":inbox_tray:",
    "running": ":arrows_counterclockwise:",
    "done": ":white_check_mark:",
    "failed": ":x:",
    "skipped": ":heavy_minus_sign:",
}


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=trim(text)))


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=trim(t, CONTEXT_LIMIT)) for t in texts])


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    label = text if len(text) <= BUTTON_LIMIT else text[: BUTTON_LIMIT - 1] + "…"
    return ButtonElement(
        text=label, action_id=action_id, value=value[:2000], style=style, confirm=confirm
    )


def checked(blocks: Sequence[Block], limit: int = MAX_BLOCKS) -> list[Block]:
    """The blocks, each validated by slack_sdk against Block Kit's limits, and not too many."""
    if len(blocks) > limit:
        raise ValueError(f"{len(blocks)} blocks; Block Kit allows {limit} here")
    for block in blocks:
        block.validate_json()
    return list(blocks)


def as_text(blocks: Sequence[Block]) -> str:
    """The sections' text, for places that take no blocks (a response_url fallback)."""
    return "\n".join(b.text.text for b in blocks if isinstance(b, SectionBlock) and b.text)


def plain(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=text if len(text) <= limit else text[: limit - 1] + "…")


# -- one result ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShownImage:
    """An image uploaded to Slack for an image block: its file id and alt text."""

    file_id: str
    alt: str


def result_context(run: Run, checks: CheckReport | None = None) -> list[Block]:
    """The lines under a result's image: route, model, cost with basis, latency, billing owner;
    then size, quality and ids; then, once they are in, the acceptance checks."""
    lines: list[Block] = [context(messages.run_context(run), messages.run_specs(run))]
    line = checks_line(checks) if checks is not None else None
    if line:
        lines.append(context(line))
    return lines


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


def result_actions(
    run: Run, route_ids: Sequence[str], *, verdict: str | None = None
) -> list[Block]:
    """A result's actions: verdicts and Re-run in sight, another route in a menu, the rest in
    the overflow (compare on every route, run details)."""
    rid = str(run.id)
    elements: list[Any] = []
    if run.status == "succeeded":
        elements.append(
            button("Survives the next step", "verdict_pass", rid, style="primary"),
        )
        elements.append(button("Does not", "verdict_fail", rid, style="danger"))
    elements.append(button("Re-run", "rerun", rid))
    others = [r for r in route_ids if r != run.route_id][:100]
    if others:
        elements.append(
            StaticSelectElement(
                action_id="try_route",
                placeholder="Try another route",
                options=[Option(text=r[:75], value=f"{rid}:{r}"[:150]) for r in others],
            )
        )
    more = [Option(text="Run details", value=f"details:{rid}")]
    if len(route_ids) > 1:
        more.insert(
            0, Option(text=f"Compare on all {len(route_ids)} routes", value=f"compare_all:{rid}")
        )
    elements.append(OverflowMenuElement(action_id="result_more", options=more))
    blocks: list[Block] = [ActionsBlock(block_id=f"run-{rid}", elements=elements)]
    if verdict:
        blocks.append(context(verdict))
    return blocks


def checked_result_actions(
    run: Run, route_ids: Sequence[str], report: CheckReport | None
) -> list[Block]:
    """A benchmark output's buttons with its checks line above them, once the checks are in."""
    line = checks_line(report) if report is not None else None
    return checked(([context(line)] if line else []) + result_actions(run, route_ids))


def result_blocks(
    run: Run,
    images: Sequence[ShownImage],
    route_ids: Sequence[str],
    *,
    note: str | None = None,
    verdict: str | None = None,
    checks: CheckReport | None = None,
) -> list[Block]:
    """One route's result as one message: its images, the context lines (with the acceptance
    checks once they are in), its actions."""
    blocks: list[Block] = [
        ImageBlock(
            slack_file=SlackFile(id=image.file_id),
            alt_text=image.alt,
            title=plain(f"{run.route_id} · run #{run.id}", 2000),
            block_id=f"image-{run.id}-{i}",
        )
        for i, image in enumerate(images)
    ]
    blocks.extend(result_context(run, checks))
    if note:
        line = context(note)
        line.block_id = f"{NOTE_BLOCK}{run.id}"  # read back when the message is rewritten
        blocks.append(line)
    blocks.extend(result_actions(run, route_ids, verdict=verdict))
    return checked(blocks)


NOTE_BLOCK = "note-"


def result_note(message_blocks: Sequence[dict[str, Any]]) -> str | None:
    """The note a result message carries (e.g. that its image waits on the bot's disk), read
    back from its blocks, so a rewrite of the message (a verdict) keeps it."""
    for block in message_blocks:
        if block.get("type") == "context" and str(block.get("block_id") or "").startswith(
            NOTE_BLOCK
        ):
            texts = [str(e.get("text") or "") for e in block.get("elements") or []]
            return " ".join(t for t in texts if t) or None
    return None


def failure_blocks(
    run: Run, route_ids: Sequence[str], supporting: Sequence[str] = ()
) -> list[Block]:
    """A failed route as one message: what happened, what to do next, its actions."""
    blocks: list[Block] = [
        section(messages.run_failure(run)),
        context(messages.next_step(run, supporting), messages.failure_specs(run)),
        *result_actions(run, route_ids),
    ]
    return checked(blocks)


# -- the scoreboard (a run's parent message) -----------------------------------------------------
def parent_blocks(text: str, status: str) -> list[Block]:
    """A parent message with one status line (the benchmark's thread)."""
    return checked([section(text), context(status)])


def status_line(route_id: str, state: str, detail: str) -> str:
    icon = STATUS_ICON.get(state, "")
    words = {"waiting": "waiting", "running": "running", "skipped": "skipped"}.get(state, "")
    text = " ".join(part for part in (words, detail) if part)
    return f"{icon} `{route_id}` {text}".rstrip()


def scoreboard_blocks(
    headline: str,
    prompt: str,
    lines: Sequence[str],
    *,
    verdict: Sequence[str] = (),
    montage: ShownImage | None = None,
    footer: str = "",
) -> list[Block]:
    """Who asked and for what, each route's status, then the verdict and the montage."""
    blocks: list[Block] = [
        section(f"{headline}\n>{messages.quote_prompt(prompt)}"),
        section("\n".join(lines)),
    ]
    if verdict:
        blocks.append(section("\n".join(verdict)))
    if montage is not None:
        blocks.append(
            ImageBlock(
                slack_file=SlackFile(id=montage.file_id),
                alt_text=montage.alt,
                title=plain("Side by side", 2000),
                block_id="montage",
            )
        )
    if footer:
        blocks.append(context(footer))
    return checked(blocks)


# -- /imageroute ---------------------------------------------------------------------------------
def help_blocks(not_understood: str | None = None) -> list[Block]:
    blocks: list[Block] = []
    if not_understood is not None:
        blocks.append(
            section(
                f"I did not understand `{escape(messages.flat(not_understood, 80))}`: it is "
                "not a subcommand, and too short a question for route advice. Here is what I "
                "can do."
            )
        )
    blocks.append(section(messages.HELP))
    return checked(blocks)


def share_button(what: str) -> ButtonElement:
    """Posts a private answer in the channel, saying who asked."""
    return button("Share in channel", "share_answer", what)


def with_share(blocks: Sequence[Block], what: str) -> list[Block]:
    """A private answer with its Share in channel button."""
    return checked([*blocks, ActionsBlock(block_id="share", elements=[share_button(what)])])


def shared_by(user: str | None, asked: str) -> ContextBlock:
    """The line that opens a shared answer: who asked, and what."""
    who = f"<@{user}>" if user else "Someone"
    return context(f"{who} asked `/imageroute {escape(messages.flat(asked, 200))}`")


def lifecycle_text(statuses: Sequence[ModelStatus]) -> str:
    """A route's model status (bot.core.lifecycle), flagged when a model needs a move."""
    text = statuses_text(statuses)
    return f":warning: {text}" if any(s.needs_attention for s in statuses) else text


def routes_blocks(
    routes: Sequence[tuple[str, str, str, str | None, str | None, Sequence[ModelStatus]]],
) -> list[Block]:
    """routes: (id, kind, model, board row, billing owner, its models' lifecycle)."""
    lines = [
        f"• `{rid}`: {kind}, model `{escape(model)}` ({lifecycle_text(status)}), board row "
        f"`{board or 'none'}`, billed to {escape(owner or 'an unknown owner')}"
        for rid, kind, model, board, owner, status in routes
    ]
    return checked([section("*Configured routes*\n" + ("\n".join(lines) or "None."))])


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
                spend(w.spend_usd, w.unpriced_runs) if w else spend(0.0),
                "{} ok / {} not".format(*verdicts[rid]) if rid in verdicts else "—",
            )
        )
    unpriced = sum(w.unpriced_runs for w in week.values())
    blocks: list[Block] = [
        section(
            f"*Route stats* (finished runs; p50, p95 and median cost over each route's latest "
            f"{RECENT_RUNS:,})\n```{_table(rows)}```"
        )
    ]
    if unpriced:
        blocks.append(
            context(
                f"{unpriced_text(unpriced)} this week: they made images at a cost nothing on "
                "file prices, so they are counted beside the spend, never as $0. Add a price "
                "(`pricing` or `estimated_usd_per_image`) to the route."
            )
        )
    return checked(blocks)


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
        return checked([context("No acceptance checks yet: they run on every new image.")])
    cells: dict[tuple[str, str], dict[str, CheckFigures]] = {}
    for f in figures:
        cells.setdefault((f.route_id, f.family), {})[f.name] = f
    rows = [("route", "family", *(CHECK_LABELS[n] for n in CHECK_NAMES))]
    for (rid, family), by_name in sorted(cells.items()):
        rows.append(
            (rid[:24], family or "ad hoc", *(_check_cell(by_name.get(n)) for n in CHECK_NAMES))
        )
    head = "*Acceptance checks* (passed of checked · mean score)"
    return checked([section(f"{head}\n```{_table(rows)}```")])


def _check_cell(f: CheckFigures | None) -> str:
    if f is None:
        return "—"
    if not f.ran:
        return f"{f.not_run} not run"
    mean = f" · {f.mean_score:.0%}" if f.mean_score is not None else ""
    return f"{f.passed}/{f.ran}{mean}"


def run_lines(runs: Sequence[Run], permalink: Mapping[int, str]) -> list[str]:
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
    return lines


def runs_blocks(runs: Sequence[Run], permalink: Mapping[int, str]) -> list[Block]:
    if not runs:
        return checked([section('No runs yet. Try `/imagegen prompt="a red bicycle"`.')])
    return checked([section("*Recent runs*\n" + "\n".join(run_lines(runs, permalink)))])


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
    return checked(
        [
            section("*Route health* (probes)\n```" + "\n".join(rows) + "```"),
            section("*Open incidents*\n" + ("\n".join(incidents) or "None.")),
            context(
                "Probe spend over 7 days: "
                + spend(probe_spend_7d.known_usd, probe_spend_7d.unpriced_runs, "probe")
            ),
        ]
    )


# -- advice --------------------------------------------------------------------------------------
def _row_title(route: str) -> str:
    return next((row.title for row in board_rows() if row.id == route), route)


def advice_heading(advice: Advice) -> str:
    if advice.scope == "out-of-scope":
        return "Not a route question"
    if advice.scope == "unclear":
        return "I could not follow that question"
    if len(advice.benchmark_both) == 2:
        first, second = advice.benchmark_both
        return f"Benchmark both: {_row_title(first)} and {_row_title(second)}"
    if advice.route is None:
        return "No route fits as asked"
    return f"Benchmark first: {_row_title(advice.route)}"


def compare_targets(
    advice: Advice, configured: Mapping[str, str | None], failing: Collection[str] = ()
) -> list[str]:
    """Configured routes serving the advised row or its alternatives, not failing now."""
    rows = [r for r in (advice.route, *(a.route for a in advice.alternatives)) if r]
    return [rid for rid, row in configured.items() if row in rows and rid not in failing]


def _compare_label(targets: Sequence[str]) -> str:
    names = ", ".join(targets)
    label = f"Compare on {names}"
    if len(label) <= BUTTON_LIMIT:
        return label
    return f"Compare on {len(targets)} routes: {names}"


def advice_blocks(
    question: str,
    advice: Advice,
    configured: Mapping[str, str | None],
    *,
    key: str,
    shared_by_user: str | None = None,
    private: bool = True,
    failing: Collection[str] = (),
) -> list[Block]:
    """The answer at a glance: the route and first benchmark, one sentence of why, the caveats
    that apply, the three checks that matter most; More opens the rest."""
    blocks: list[Block] = []
    if shared_by_user is not None:
        blocks.append(shared_by(shared_by_user, question))
    blocks.append(HeaderBlock(text=plain(advice_heading(advice), HEADER_LIMIT)))
    if advice.scope != "advice":
        blocks.append(section(escape(advice.why)))
        if private:
            blocks.append(ActionsBlock(block_id="advice", elements=[share_button(key)]))
        return checked(blocks)
    lead = f"*Start with* {escape(advice.first_benchmark)}"
    blocks.append(section(f"{lead}\n{escape(first_sentence(advice.why))}"))
    if advice.caveats:
        blocks.append(
            section(
                "\n".join(
                    f":warning: *{escape(c.title)}*: {escape(first_sentence(c.text))}"
                    for c in advice.caveats
                )
            )
        )
    if advice.verify:
        blocks.append(
            section("*Check first*\n" + "\n".join(f"• {escape(v)}" for v in advice.verify[:3]))
        )
    notes = []
    if advice.is_default:
        notes.append("The default: nothing in the question pointed elsewhere.")
    # The board named a model that has changed since (shut down, renamed): say so once.
    notes.extend(escape(c.change) for c in advice.lifecycle if c.route == advice.route)
    if advice.in_workspace:
        notes.append(
            "Here: " + "; ".join(escape(describe_workspace_route(w)) for w in advice.in_workspace)
        )
    elif advice.route is not None:
        notes.append(f"No route configured here serves the `{advice.route}` row yet.")
    if notes:
        blocks.append(context(*notes))
    elements: list[Any] = [button("More", "advice_more", key)]
    targets = compare_targets(advice, configured, failing)
    if targets:
        elements.append(
            button(_compare_label(targets), "advice_compare", ",".join(targets), style="primary")
        )
    if private:
        elements.append(share_button(key))
    blocks.append(ActionsBlock(block_id="advice", elements=elements))
    return checked(blocks)


def advice_modal(question: str, advice: Advice) -> View:
    """Everything the glance left out: the full why, caveats, every check, alternatives, notes."""
    blocks: list[Block] = [
        context(f"“{escape(messages.flat(question, 500))}”"),
        section(f"*{escape(advice_heading(advice))}*\n{escape(advice.why)}"),
    ]
    if advice.scope == "advice":
        blocks.append(section(f"*First benchmark*\n{escape(advice.first_benchmark)}"))
        for caveat in advice.caveats:
            blocks.append(section(f":warning: *{escape(caveat.title)}*\n{escape(caveat.text)}"))
        checks = [*advice.verify, *advice.verify_more]
        if checks:
            blocks.append(section("*Verify*\n" + "\n".join(f"• {escape(v)}" for v in checks)))
        if advice.alternatives:
            lines = [
                f"• `{a.route}` ({escape(a.first_benchmark)}): {escape(a.reason)}"
                for a in advice.alternatives
            ]
            blocks.append(section("*Alternatives*\n" + "\n".join(lines)))
        notes = [
            *advice.notes,
            *(c.change for c in advice.lifecycle if c.change not in advice.notes),
        ]
        if notes:
            blocks.append(context(*(escape(n) for n in notes[:10])))
        if advice.in_workspace:
            lines = [escape(describe_workspace_route(w)) for w in advice.in_workspace]
            blocks.append(section("*In this workspace*\n" + "\n".join(f"• {x}" for x in lines)))
    return View(
        type="modal",
        title=plain("Route advice", 24),
        close=PlainTextObject(text="Close"),
        blocks=checked(blocks, MAX_VIEW_BLOCKS),
    )


# -- App Home ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HomeRoute:
    route_id: str
    kind: str
    board: str | None
    billing_owner: str | None
    state: str
    models: Sequence[ModelStatus] = ()


def home_view(
    routes: Sequence[HomeRoute],
    recent: Sequence[Run],
    week: Mapping[str, RouteStats],
    week_by_owner: Mapping[str, Spend],
    verdicts: Mapping[str, tuple[int, int]],
    *,
    try_route: str | None,
) -> View:
    """A dashboard: buttons to start, each route's health, the viewer's runs, spend, help."""
    buttons: list[Any] = []
    if try_route is not None:
        label = "Try the demo route" if try_route == "demo" else f"Try `{try_route}`"
        buttons.append(button(label.replace("`", ""), "home_try", try_route, style="primary"))
    if len(routes) > 1:
        buttons.append(button("Compare routes", "home_compare", "compare"))
    buttons.append(button("Route health", "home_health", "health"))
    lines = []
    for route in routes:
        icon = HEALTH_ICON.get(route.state, ":white_circle:")
        good, bad = verdicts.get(route.route_id, (0, 0))
        judged = f" · verdicts {good} survive / {bad} do not" if good or bad else ""
        model = f", model {lifecycle_text(route.models)}" if route.models else ""
        lines.append(
            f"{icon} `{route.route_id}` *{route.state}* · {route.kind}{model}, board "
            f"`{route.board or 'none'}`, billed to "
            f"{escape(route.billing_owner or 'an unknown owner')}{judged}"
        )
    by_route = [
        f"• `{rid}`: {spend(s.spend_usd, s.unpriced_runs)} over {s.runs} run(s)"
        for rid, s in week.items()
    ]
    owners = [
        f"• {escape(owner)}: {spend(s.known_usd, s.unpriced_runs)}"
        for owner, s in week_by_owner.items()
    ]
    run_text = [
        f"• #{r.id} `{r.route_id}` {r.status} {seconds(r.latency_s)} "
        f"{money(r.cost_usd, r.cost_basis)}: {messages.quote_prompt(r.prompt, 60)}"
        for r in recent
    ]
    blocks: list[Block] = [
        HeaderBlock(text="imageroute"),
        ActionsBlock(block_id="home", elements=buttons),
        section("*Routes*\n" + ("\n".join(lines) or "No routes configured.")),
        section("*Your recent runs*\n" + ("\n".join(run_text) or "None yet.")),
        section(
            "*Spend this week by route*\n"
            + ("\n".join(by_route) or "Nothing spent yet.")
            + "\n*By billing owner*\n"
            + ("\n".join(owners) or "—")
        ),
        DividerBlock(),
        section(messages.HOME_HELP),
        context("Refreshed each time you open this tab."),
    ]
    return View(type="home", blocks=checked(blocks, MAX_VIEW_BLOCKS))


# -- modals --------------------------------------------------------------------------------------
def _metadata(metadata: Mapping[str, Any]) -> str:
    text = json.dumps(metadata)
    if len(text) > 3000:
        raise ValueError("private_metadata is limited to 3,000 characters")
    return text


def prompt_input(label: str = "Prompt") -> InputBlock:
    return InputBlock(
        block_id="prompt",
        label=label,
        hint="What to draw, in your words.",
        # Block Kit accepts a max_length of at most 3,000 here.
        element=PlainTextInputElement(action_id="value", multiline=True, max_length=3000),
    )


def channel_input() -> InputBlock:
    """Where the run is posted; the submission carries this menu's response_url, so a channel
    the bot is not in can be answered."""
    return InputBlock(
        block_id="channel",
        label="Post the results in",
        element=ConversationSelectElement(
            action_id="value",
            response_url_enabled=True,
            default_to_current_conversation=True,
            filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
        ),
    )


def compare_modal(
    metadata: Mapping[str, Any],
    *,
    choose_from: Sequence[str] = (),
    pick_channel: bool = False,
    max_routes: int = 6,
) -> View:
    """One prompt on several routes. Routes are fixed by `metadata["routes"]` (the advice's
    button) or chosen here from `choose_from`; the channel is known or chosen here."""
    blocks: list[Block] = []
    fixed = list(metadata.get("routes", []))
    if fixed:
        names = ", ".join(f"`{r}`" for r in fixed)
        what = "Runs one prompt on" if len(fixed) > 1 else "Runs a prompt on"
        blocks.append(section(f"{what} {names}, side by side in the channel."))
    else:
        options = [Option(text=r[:75], value=r) for r in choose_from][:100]
        blocks.append(
            InputBlock(
                block_id="routes",
                label="Routes",
                hint=f"Up to {max_routes} per comparison.",
                element=StaticMultiSelectElement(
                    action_id="value",
                    options=options,
                    initial_options=options[: min(2, max_routes)],
                    max_selected_items=max_routes,
                ),
            )
        )
    blocks.append(prompt_input())
    if pick_channel:
        blocks.append(channel_input())
    title = "Try a route" if len(fixed) == 1 else "Compare routes"
    return View(
        type="modal",
        callback_id=COMPARE_MODAL,
        private_metadata=_metadata(metadata),
        title=plain(title, 24),
        submit=PlainTextObject(text="Run"),
        close=PlainTextObject(text="Cancel"),
        blocks=checked(blocks, MAX_VIEW_BLOCKS),
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
        element=PlainTextInputElement(action_id="value", multiline=True, max_length=3000),
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
        blocks=checked([route, instruction, mask], MAX_VIEW_BLOCKS),
    )


def info_modal(title: str, blocks: Sequence[Block]) -> View:
    """A read-only modal (route health from App Home, run details)."""
    return View(
        type="modal",
        title=plain(title, 24),
        close=PlainTextObject(text="Close"),
        blocks=checked(blocks, MAX_VIEW_BLOCKS),
    )


# -- health alerts -------------------------------------------------------------------------------
def alert_heading(event: RoutesDown) -> str:
    """The alert's first line: what is down now, or that everything in it has recovered."""
    lines = event.lines
    open_lines = [line for line in lines if line.incident.resolved_at is None]
    if not open_lines:
        names = ", ".join(f"`{line.incident.route_id}`" for line in lines)
        return f":white_check_mark: Recovered: {names}"
    if len(lines) == 1:
        inc = lines[0].incident
        return f"{messages.ALERT_ICON.get(inc.kind, '')} Route `{inc.route_id}` is {inc.kind}"
    names = ", ".join(f"`{line.incident.route_id}`" for line in lines)
    return (
        f":rotating_light: {len(lines)} routes went down or degraded in one probe round "
        f"(provider outage?): {names} · {len(open_lines)} still open"
    )


def _owner(line: AlertLine) -> str:
    parts = []
    if line.route_owner:
        parts.append(f"owned by {escape(line.route_owner)}")
    if line.oncall:
        parts.append(f"on call: <!subteam^{line.oncall}>")
    return " · ".join(parts)


def alert_line_blocks(line: AlertLine, now: datetime, slo: float) -> list[Block]:
    """One route of an alert: status (changes), owner, diagnosis and what to check (stay),
    and while it is open: Probe now, Acknowledge, Run on the board's fallback."""
    inc = line.incident
    head = f"*`{inc.route_id}`* (board row `{line.board or 'none'}`)"
    owner = _owner(line)
    if owner:
        head += f" · {owner}"
    hint = messages.verify_hint(inc.error_class, inc.last_error, inc.kind, slo)
    body = (
        f"{head}\n{messages.incident_status(inc, now)}\n"
        f"{messages.diagnosis(inc, line.last_success, now)}\n*Check first:* {hint}"
    )
    blocks: list[Block] = [section(body)]
    if inc.resolved_at is not None or inc.id is None:
        return blocks
    elements: list[Any] = [button("Probe now", "alert_probe", inc.route_id)]
    if inc.acknowledged_by is None:
        elements.append(button("Acknowledge", "alert_ack", str(inc.id), style="primary"))
    if line.fallback:
        confirm = ConfirmObject(
            title="Run on the fallback?",
            text=(
                f"Runs the latest failed request on `{inc.route_id}` (or a test prompt) on "
                f"`{line.fallback}`, in this thread. It may cost money."
            ),
            confirm="Run it",
            deny="Cancel",
        )
        elements.append(
            button(
                f"Run on {line.fallback}",
                "alert_fallback",
                f"{inc.id}:{line.fallback}",
                confirm=confirm,
            )
        )
    else:
        blocks.append(context("No healthy configured route to fall back to right now."))
    blocks.append(ActionsBlock(block_id=f"incident-{inc.id}", elements=elements))
    return blocks


def alert_blocks(event: RoutesDown) -> list[Block]:
    blocks: list[Block] = [section(alert_heading(event))]
    for line in event.lines[:10]:
        blocks.extend(alert_line_blocks(line, event.now, event.latency_slo_seconds))
    if len(event.lines) > 10:
        blocks.append(context(f"{len(event.lines) - 10} more routes: see `/imageroute health`."))
    return checked(blocks)

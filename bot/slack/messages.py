"""The bot's message texts (Block Kit lives in bot.slack.blocks): runs, comparisons, help.

Nothing here talks to Slack, so every message is testable as data. Display text is trimmed to
Block Kit's limits and user text is escaped for mrkdwn; the run log keeps the full text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.checks import CheckReport
from bot.core.figures import money, seconds
from bot.core.figures import unpriced as unpriced_text
from bot.core.markup import escape
from storage.tables import Run

SECTION_LIMIT = 3000
CONTEXT_LIMIT = 2000
MAX_BLOCKS = 50

IMAGEGEN_USAGE = (
    'Usage: `/imagegen route=<id> prompt="..." [size=1024x1024] [quality=low|medium|high] '
    "[n=1..4] [background=transparent|opaque|auto] [format=png|jpeg|webp] [seed=N]`. "
    "Compare with `route=a,b`, `route=all` or `route=board:<row>`."
)
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
INTERRUPTED = (
    ":warning: Run #{run_id} on `{route_id}` was interrupted because the bot restarted before it "
    "finished. Run it again with the Re-run button or /imagegen."
)
# A billed task that could not be collected after the restart: name it so it can be found.
INTERRUPTED_TASK = (
    " The provider had accepted (and billed) its task `{task_id}`, but it could not be "
    "collected: look it up at the provider by that id."
)
COLLECTED = (
    "Run #{run_id} on `{route_id}` was still in progress when the bot restarted: its task "
    "`{task_id}` was collected after the restart (not submitted, nor paid for, again)."
)


def trim(text: str, limit: int = SECTION_LIMIT) -> str:
    """Text cut to a Block Kit limit, saying that it was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 12].rstrip() + " …(trimmed)"


def quote_prompt(prompt: str, limit: int = 300) -> str:
    flat = " ".join(prompt.split())
    return escape(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def run_context(run: Run) -> str:
    """One line under an image: route, model, size, quality, cost, latency, ids, billing owner."""
    model = run.model_reported or run.model_requested
    if run.model_reported and run.model_reported != run.model_requested:
        model = f"{run.model_reported} (asked {run.model_requested})"
    parts = [f"*{run.route_id}*", f"model `{escape(model)}`"]
    if run.underlying_model:
        parts.append(f"via `{escape(run.underlying_model)}`")
    parts.append(run.size or "default size")
    parts.append(f"quality {run.quality or 'default'}")
    parts.append(money(run.cost_usd, run.cost_basis))
    parts.append(seconds(run.latency_s))
    parts.append(f"response id `{escape(run.response_id or 'none given')}`")
    parts.append(f"billed to {escape(run.billing_owner or 'unknown owner')}")
    parts.append(f"run #{run.id}")
    return trim(" · ".join(parts), CONTEXT_LIMIT)


def run_failure(run: Run) -> str:
    """One or two sentences for a failed run: what happened and what to do."""
    message = escape(run.error_message or "the route failed")
    head = f":warning: *{run.route_id}* failed ({run.error_class or 'error'}): {message}"
    if run.error_request_id:
        head += f" Request id `{escape(run.error_request_id)}`."
    return trim(head + f" (run #{run.id})", SECTION_LIMIT)


def parent_text(user: str | None, prompt: str, route_ids: Sequence[str]) -> str:
    who = f"<@{user}> asked" if user else "Asked"
    where = (
        f"on `{route_ids[0]}`"
        if len(route_ids) == 1
        else f"on {len(route_ids)} routes: {', '.join(f'`{r}`' for r in route_ids)}"
    )
    return trim(f"{who} for an image {where}\n>{quote_prompt(prompt)}")


def comparison_summary(runs: Sequence[Run], checks: Mapping[int, CheckReport] | None = None) -> str:
    """A monospaced table: route, model, status, latency, cost; fastest and cheapest marked;
    with `checks`, each run's acceptance checks (FAILED ahead of a check that did not pass)."""
    ok = [r for r in runs if r.status == "succeeded"]
    fastest = min(
        (r for r in ok if r.latency_s is not None), key=lambda r: r.latency_s or 0.0, default=None
    )
    priced = [r for r in ok if r.cost_usd is not None]
    # Never awarded over a cost nobody knows: the unpriced route may be the cheaper one.
    unpriced = len(ok) - len(priced)
    cheapest = min(priced, key=lambda r: r.cost_usd or 0.0, default=None) if not unpriced else None
    header = ("route", "model", "status", "latency", "cost", "", *(("checks",) if checks else ()))
    rows: list[tuple[str, ...]] = [header]
    for run in runs:
        marks = []
        if fastest is not None and run.id == fastest.id:
            marks.append("fastest")
        if cheapest is not None and run.id == cheapest.id and len(priced) > 1:
            marks.append("cheapest")
        row: tuple[str, ...] = (
            run.route_id[:24],
            (run.model_reported or run.model_requested)[:28],
            run.status if run.status != "failed" else f"failed: {run.error_class}",
            seconds(run.latency_s),
            money(run.cost_usd, run.cost_basis),
            ", ".join(marks),
        )
        if checks:
            report = checks.get(run.id or 0)
            row += ((report.text() if report else "—")[:60] or "—",)
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    # Escaped as a whole: widths are counted on the text as Slack shows it after decoding.
    table = escape("\n".join(lines))
    done = sum(1 for r in runs if r.status == "succeeded")
    head = f"*Comparison summary*: {done} of {len(runs)} routes returned an image."
    if unpriced and len(ok) > 1:
        head += f" No cheapest marked: {unpriced_text(unpriced)}, cost unknown."
    return trim(f"{head}\n```{table}```")

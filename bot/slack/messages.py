"""The bot's words in Slack (Block Kit lives in bot.slack.blocks): runs, verdicts, errors, alerts.

Nothing here talks to Slack, so every sentence is testable as data. Display text is trimmed to
Block Kit's limits and untrusted text (prompts, questions, provider messages, file names) is
escaped for mrkdwn with bot.core.markup's `escape`; the run log keeps the full text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from bot.checks import CheckReport
from bot.core.figures import dollars, money, seconds, unpriced
from bot.core.markup import escape
from bot.health.notices import minutes_between
from routes.failures import looks_like_org_verification, org_verification_hint
from storage.runlog import as_utc
from storage.tables import Incident, Run, Verdict

SECTION_LIMIT = 3000
CONTEXT_LIMIT = 2000
HEADER_LIMIT = 150
BUTTON_LIMIT = 75
# files.getUploadURLExternal refuses longer alt text (alt_txt_too_large); the image block
# takes 2,000, so one limit serves both.
ALT_TEXT_LIMIT = 1000
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
  `route=a,b`, `route=all` or `route=board:google` compares several side by side in one thread.
Answers to `/imageroute` are shown only to you, with a button to share them in the channel."""
HOME_HELP = (
    '• `/imagegen route=<id> prompt="…"` runs a prompt; `route=a,b` or `route=all` compares '
    "routes side by side.\n"
    "• `/imageroute <question>` says which route to benchmark first and what to verify.\n"
    "• `/imageroute routes`, `stats`, `runs`, `health`: lookups only you see, until you share "
    "them.\n"
    "• `/imageroute help` for every option."
)
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
SUBCOMMANDS = ("routes", "stats", "runs", "health", "bench")
# While a process stops (a deploy), new work is answered with this and not started.
RESTARTING = "imageroute is restarting: try again in a moment."
RUN_LOG_DOWN = (
    "I can't reach the run log (database) right now, so nothing was run and nothing was "
    "charged: try again in a minute."
)
FLOW_FAILED = (
    ":warning: Something went wrong on my side and this request stopped (it is in the bot's "
    "log). Results already posted stay; run the rest again with /imagegen."
)


def trim(text: str, limit: int = SECTION_LIMIT) -> str:
    """Text cut to a Block Kit limit, saying that it was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 12].rstrip() + " …(trimmed)"


def flat(text: str, limit: int) -> str:
    """Whitespace collapsed and cut to `limit` characters with an ellipsis (not escaped)."""
    joined = " ".join(text.split())
    return joined if len(joined) <= limit else joined[: limit - 1].rstrip() + "…"


def quote_prompt(prompt: str, limit: int = 300) -> str:
    return escape(flat(prompt, limit))


_SENTENCE_END = re.compile(r"(?<=[.!?])[”\"']?\s+(?=[A-Z“\"])")


def first_sentence(text: str) -> str:
    """The first sentence of a paragraph (the advisor's `why` leads with the reason)."""
    parts = _SENTENCE_END.split(text.strip(), maxsplit=1)
    return parts[0].strip() if parts else ""


def ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "never"
    minutes = int((now - as_utc(then)).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago"


def duration(minutes: int) -> str:
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


# -- one run ------------------------------------------------------------------------------------
def model_label(run: Run) -> str:
    model = run.model_reported or run.model_requested
    if run.model_reported and run.model_reported != run.model_requested:
        model = f"{run.model_reported} (asked {run.model_requested})"
    if run.underlying_model:
        model += f" via {run.underlying_model}"
    return model


def run_context(run: Run) -> str:
    """The line under an image: route, model, cost with its basis, latency, billing owner."""
    parts = [
        f"*{run.route_id}*",
        f"`{escape(model_label(run))}`",
        money(run.cost_usd, run.cost_basis),
        seconds(run.latency_s),
        f"billed to {escape(run.billing_owner or 'an unknown owner')}",
    ]
    return trim(" · ".join(parts), CONTEXT_LIMIT)


def run_specs(run: Run) -> str:
    """What was asked and the ids to quote: size, quality, response id, run number."""
    parts = [
        run.size or "default size",
        f"quality {run.quality or 'default'}",
        f"response id `{escape(run.response_id or 'none given')}`",
        f"run #{run.id}",
    ]
    return trim(" · ".join(parts), CONTEXT_LIMIT)


def run_details(run: Run) -> str:
    """Everything the run log knows that the result message leaves out (the Details menu)."""
    lines = [
        f"*Run #{run.id}* on `{run.route_id}` ({run.route_kind}), {run.status}",
        f"Model: `{escape(model_label(run))}`",
        f"Cost: {money(run.cost_usd, run.cost_basis)}"
        + (f" ({escape(run.cost_detail)})" if run.cost_detail else ""),
        f"Latency: {seconds(run.latency_s)} over {run.attempts} attempt(s)",
        f"Size {run.size or 'default'}, quality {run.quality or 'default'}, {run.n} image(s)",
        f"Response id: `{escape(run.response_id or 'none given')}`",
        f"Billed to {escape(run.billing_owner or 'an unknown owner')}; "
        f"route owner {escape(run.route_owner or 'not set')}",
    ]
    if run.revised_prompt:
        lines.append(f"Revised prompt: {quote_prompt(run.revised_prompt, 500)}")
    if run.error_message:
        lines.append(f"Error: {escape(run.error_message)}")
    return trim("\n".join(lines))


def alt_text(run: Run, index: int = 0, count: int = 1) -> str:
    """What a screen reader says for an image: the route and the prompt it was drawn from."""
    which = f" (image {index + 1} of {count})" if count > 1 else ""
    head = f"Image{which} generated on {run.route_id} for the prompt: "
    return head + flat(run.prompt, ALT_TEXT_LIMIT - len(head))


def result_text(run: Run) -> str:
    """The notification text of a result message (Block Kit carries the rest)."""
    if run.status == "succeeded":
        return f"{run.route_id}: {money(run.cost_usd, run.cost_basis)}, {seconds(run.latency_s)}"
    return f"{run.route_id} failed ({run.error_class or 'error'})"


# What to do next after a failure, by error class.
_NEXT_STEP = {
    "rate_limit": "Re-run in a minute, or try another route.",
    "timeout": "Re-run; if it keeps timing out, check `/imageroute health`.",
    "provider_down": "Re-run, or check `/imageroute health` and try another route meanwhile.",
    "auth": "The route's account needs attention (see `/imageroute health`); try another "
    "route meanwhile.",
    "quota": "The billing owner's quota or credit is used up: try another route.",
    "moderation": "Rephrase the prompt and re-run, or try another route.",
    "bad_request": "Change the options and re-run, or try another route.",
    "unsupported": "Try another route that supports this option.",
    "model_retired": "The route's model was shut down: try another route (the routes file "
    "needs a current model).",
    "storage": "The image was made but not stored: tell whoever runs the bot.",
    "interrupted": "Re-run it.",
}


def next_step(run: Run, supporting: Sequence[str] = ()) -> str:
    """One sentence: what to do now. `supporting` names routes known to take the request."""
    step = _NEXT_STEP.get(run.error_class or "", "Re-run, or try another route.")
    others = [r for r in supporting if r != run.route_id][:4]
    if others and "another route" in step:
        step = step.rstrip(".") + ": " + ", ".join(f"`{r}`" for r in others) + "."
    return step


def failure_sentence(run: Run) -> str:
    """The provider's sentence once, with its request id said once (in the specs line)."""
    message = (run.error_message or "the route failed").strip()
    if run.error_request_id:
        message = message.replace(f"Request id {run.error_request_id}.", "").strip()
    return escape(message)


def run_failure(run: Run) -> str:
    """One sentence for a failed run: what happened."""
    label = (run.error_class or "error").replace("_", " ")
    return trim(f":warning: *{run.route_id}* failed ({label}): {failure_sentence(run)}")


def failure_specs(run: Run) -> str:
    parts = []
    if run.error_request_id:
        parts.append(f"request id `{escape(run.error_request_id)}`")
    parts.append(f"run #{run.id}")
    return " · ".join(parts)


# -- a comparison's verdict ----------------------------------------------------------------------
def cost_fix(run: Run) -> str:
    """How to give a route a cost, said where its cost is unknown."""
    if run.route_kind == "self-hosted":
        return f"set `hourly_usd` (or `pricing`) for route `{run.route_id}`"
    return f"set `pricing` or `estimated_usd_per_image` for route `{run.route_id}`"


def _names(route_ids: Sequence[str], limit: int = 6) -> str:
    shown = [f"`{r}`" for r in route_ids[:limit]]
    if len(route_ids) > limit:
        shown.append(f"{len(route_ids) - limit} more")
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def fastest_line(runs: Sequence[Run]) -> str | None:
    timed = [r for r in runs if r.status == "succeeded" and r.latency_s is not None]
    if not timed:
        return None
    best = min(seconds(r.latency_s) for r in timed)
    tied = [r.route_id for r in timed if seconds(r.latency_s) == best]
    if len(tied) == 1:
        return f"*Fastest:* `{tied[0]}` ({best})"
    return f"*Fastest:* a tie between {_names(tied)} ({best} each)"


def cheapest_line(runs: Sequence[Run]) -> str | None:
    """The cheapest route, ties said as ties. Never awarded over a cost nobody knows: with a
    route of unknown cost in the comparison it is the cheapest "of the priced routes"."""
    ok = [r for r in runs if r.status == "succeeded"]
    priced = [r for r in ok if r.cost_usd is not None]
    if not priced:
        return None
    low = min(r.cost_usd or 0.0 for r in priced)
    tied = [r for r in priced if abs((r.cost_usd or 0.0) - low) < 1e-9]
    price = money(tied[0].cost_usd, tied[0].cost_basis)
    label = "*Cheapest:*" if len(priced) == len(ok) else "*Cheapest of the priced routes:*"
    if len(priced) == 1:
        return f"*Cost:* only `{priced[0].route_id}` has a known cost ({price})"
    if len(tied) == 1:
        return f"{label} `{tied[0].route_id}` ({price})"
    if len(tied) == len(priced):
        return f"{label} a tie: all {len(tied)} priced routes cost {price}"
    return f"{label} a tie between {_names([r.route_id for r in tied])} ({price} each)"


def verdict_lines(runs: Sequence[Run]) -> list[str]:
    """Fastest, cheapest (ties said as ties) and what to set where a cost is unknown."""
    lines = [line for line in (fastest_line(runs), cheapest_line(runs)) if line]
    unknown = [r for r in runs if r.status == "succeeded" and r.cost_usd is None]
    if unknown:
        fixes = "; ".join(cost_fix(r) for r in unknown[:4])
        more = f" (and {len(unknown) - 4} more)" if len(unknown) > 4 else ""
        maybe = "it may be" if len(unknown) == 1 else "they may be"
        lines.append(
            f"*Cost unknown* on {_names([r.route_id for r in unknown])} "
            f"({unpriced(len(unknown))}), so {maybe} cheaper: {fixes}{more} in the routes file."
        )
    return lines


def done_line(runs: Sequence[Run], *, in_thread: bool = True) -> str:
    ok = sum(1 for r in runs if r.status == "succeeded")
    where = " · each result is in the thread" if in_thread else ""
    if len(runs) == 1:
        return ("Done" if ok else "Failed") + where
    return f"{ok} of {len(runs)} routes returned an image{where}"


def verdict_line(run_id: int, verdicts: Sequence[Verdict]) -> str | None:
    """Under a result's actions: the people's verdicts so far and who gave the latest."""
    if not verdicts:
        return None
    good = sum(1 for v in verdicts if v.survives)
    latest = max(verdicts, key=lambda v: as_utc(v.judged_at)).judged_by
    return (
        f"Verdicts on run #{run_id}: {good} survives the next step, "
        f"{len(verdicts) - good} does not (latest: <@{escape(latest)}>)."
    )


def checks_brief(report: CheckReport) -> str:
    """A route's acceptance checks on the scoreboard, short: "checks: FAILED text 12%"."""
    mark = {True: "checks", False: ":warning: checks", None: "checks"}[report.verdict]
    return f"{mark}: {escape(flat(report.text(), 90))}"


def tile_caption(run: Run) -> str:
    """Under a montage tile: what the image cost and how long it took."""
    if run.status != "succeeded":
        return f"failed: {run.error_class or 'error'}"
    if run.cost_usd is None:
        cost = "cost unknown"
    else:
        cost = "$0" if run.cost_basis == "free" else dollars(run.cost_usd)
    return f"{seconds(run.latency_s)} · {cost}"


# -- who started a run ---------------------------------------------------------------------------
def headline(user: str | None, route_ids: Sequence[str], action: str | None = None) -> str:
    """The attribution that opens a scoreboard: who asked, and for what."""
    who = f"<@{user}>" if user else "Someone"
    if action:
        return f"{who} {action}"
    if len(route_ids) == 1:
        return f"{who} asked for an image on `{route_ids[0]}`"
    return f"{who} compared {len(route_ids)} routes"


def parent_text(user: str | None, prompt: str, route_ids: Sequence[str]) -> str:
    return trim(f"{headline(user, route_ids)}\n>{quote_prompt(prompt)}")


# -- health alerts -------------------------------------------------------------------------------
ALERT_ICON = {"failing": ":red_circle:", "degraded": ":large_yellow_circle:"}
CHECK_FIRST = {
    "auth": "Check the route's API key or credentials, the billing owner's account and model "
    "access.",
    "rate_limit": "Check the account's rate limits and quota tier, and the route's "
    "max_concurrency.",
    "timeout": "Check the provider's status page and the route's timeout_seconds.",
    "provider_down": "Check the provider's status page; retries are already applied.",
    "quota": "Check the billing owner's credit or budget and the provider's quota for the model; "
    "waiting does not lift it.",
}


def verify_hint(error_class: str | None, message: str | None, kind: str, slo: float) -> str:
    """What to check first, from the route board's verify lists."""
    if looks_like_org_verification(message or ""):
        return f"Organization verification: {org_verification_hint()}."
    if kind == "degraded":
        return (
            f"Probes are slower than latency_slo_seconds ({slo:g} s): check the provider's "
            "status page and the route's load."
        )
    return CHECK_FIRST.get(
        error_class or "", "Check the route's configuration and the provider's status page."
    )


def diagnosis(incident: Incident, last_success: datetime | None, now: datetime) -> str:
    """What failed, with the provider's words and request id, and the last good check."""
    rid = f" Request id `{escape(incident.request_id)}`." if incident.request_id else ""
    error = escape((incident.last_error or "no detail").rstrip("."))
    text = f"{incident.error_class or 'error'}: {error}.{rid}"
    if incident.resolved_at is None:
        text += f" Last success: {ago(last_success, now)}."
    return text


def incident_status(incident: Incident, now: datetime) -> str:
    """The line of an alert that changes: open, acknowledged, recovered."""
    if incident.resolved_at is not None:
        minutes = minutes_between(incident.opened_at, incident.resolved_at)
        return f":white_check_mark: Recovered: was {incident.kind} for {duration(minutes)}"
    since = duration(minutes_between(incident.opened_at, now))
    status = f"{ALERT_ICON.get(incident.kind, '')} {incident.kind.capitalize()} for {since}"
    if incident.acknowledged_by:
        status += f" · acknowledged by <@{incident.acknowledged_by}> (reminders stopped)"
    return status


def interrupted_status(finished: int, total: int) -> str:
    """The parent's status line when the bot stopped before every route finished."""
    if total == 1:
        return (
            ":warning: Interrupted: the bot restarted before this run finished. Run it again "
            "with /imagegen."
        )
    return (
        f":warning: Interrupted: the bot restarted before every route finished ({finished} of "
        f"{total} returned an image; results in the thread)."
    )

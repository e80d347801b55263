"""Slack message content for runs: small functions returning text and Block Kit dicts.

Nothing here talks to Slack, so every message is testable as data. Block Kit limits (3,000
characters per text object, 50 blocks per message) are enforced here: display text is trimmed,
while the run log keeps the full text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.tables import Run

SECTION_LIMIT = 3000
CONTEXT_LIMIT = 2000
MAX_BLOCKS = 50


def trim(text: str, limit: int = SECTION_LIMIT) -> str:
    """Text cut to a Block Kit limit, saying that it was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 12].rstrip() + " …(trimmed)"


def quote_prompt(prompt: str, limit: int = 300) -> str:
    flat = " ".join(prompt.split())
    flat = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def money(usd: float | None, basis: str | None) -> str:
    if usd is None:
        return "cost unknown"
    if basis == "free":
        return "$0 (free)"
    text = f"${usd:.4f}" if usd < 0.01 else f"${usd:.3f}"
    if basis in ("list_price", "hardware_time"):
        text += " est."
    return text


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def run_context(run: Run) -> str:
    """One line under an image: route, model, size, quality, cost, latency, ids, billing owner."""
    model = run.model_reported or run.model_requested
    if run.model_reported and run.model_reported != run.model_requested:
        model = f"{run.model_reported} (asked {run.model_requested})"
    parts = [f"*{run.route_id}*", f"model `{model}`"]
    if run.underlying_model:
        parts.append(f"via `{run.underlying_model}`")
    parts.append(run.size or "default size")
    parts.append(f"quality {run.quality or 'default'}")
    parts.append(money(run.cost_usd, run.cost_basis))
    parts.append(seconds(run.latency_s))
    parts.append(f"response id `{run.response_id or 'none given'}`")
    parts.append(f"billed to {run.billing_owner or 'unknown owner'}")
    parts.append(f"run #{run.id}")
    return trim(" · ".join(parts), CONTEXT_LIMIT)


def run_failure(run: Run) -> str:
    """One or two sentences for a failed run: what happened and what to do."""
    message = run.error_message or "the route failed"
    head = f":warning: *{run.route_id}* failed ({run.error_class or 'error'}): {message}"
    if run.error_request_id:
        head += f" Request id `{run.error_request_id}`."
    return trim(head + f" (run #{run.id})", SECTION_LIMIT)


def parent_text(user: str | None, prompt: str, route_ids: Sequence[str]) -> str:
    who = f"<@{user}> asked" if user else "Asked"
    where = (
        f"on `{route_ids[0]}`"
        if len(route_ids) == 1
        else f"on {len(route_ids)} routes: {', '.join(f'`{r}`' for r in route_ids)}"
    )
    return trim(f"{who} for an image {where}\n>{quote_prompt(prompt)}")


def parent_blocks(text: str, status: str) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": status}]},
    ]


def result_actions(run: Run, route_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Buttons under one result: re-run, try another route, compare on all, verdicts."""
    rid = str(run.id)
    others = [r for r in route_ids if r != run.route_id][:100]
    elements: list[dict[str, Any]] = [
        {"type": "button", "action_id": "rerun", "text": _plain("Re-run"), "value": rid},
    ]
    if others:
        elements.append(
            {
                "type": "static_select",
                "action_id": "try_route",
                "placeholder": _plain("Try another route"),
                "options": [{"text": _plain(r[:75]), "value": f"{rid}:{r}"[:150]} for r in others],
            }
        )
        elements.append(
            {
                "type": "button",
                "action_id": "compare_all",
                "text": _plain("Compare on all routes"),
                "value": rid,
            }
        )
    if run.status == "succeeded":
        elements.append(
            {
                "type": "button",
                "action_id": "verdict_pass",
                "text": _plain("Survives the next step"),
                "style": "primary",
                "value": rid,
            }
        )
        elements.append(
            {
                "type": "button",
                "action_id": "verdict_fail",
                "text": _plain("Does not"),
                "style": "danger",
                "value": rid,
            }
        )
    return [{"type": "actions", "block_id": f"run-{rid}", "elements": elements}]


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def comparison_summary(runs: Sequence[Run]) -> str:
    """A monospaced table: route, model, status, latency, cost; fastest and cheapest marked."""
    ok = [r for r in runs if r.status == "succeeded"]
    fastest = min(
        (r for r in ok if r.latency_s is not None), key=lambda r: r.latency_s or 0.0, default=None
    )
    priced = [r for r in ok if r.cost_usd is not None]
    cheapest = min(priced, key=lambda r: r.cost_usd or 0.0, default=None)
    rows = [("route", "model", "status", "latency", "cost", "")]
    for run in runs:
        marks = []
        if fastest is not None and run.id == fastest.id:
            marks.append("fastest")
        if cheapest is not None and run.id == cheapest.id and len(priced) > 1:
            marks.append("cheapest")
        rows.append(
            (
                run.route_id[:24],
                (run.model_reported or run.model_requested)[:28],
                run.status if run.status != "failed" else f"failed: {run.error_class}",
                seconds(run.latency_s),
                money(run.cost_usd, run.cost_basis),
                ", ".join(marks),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    table = "\n".join(lines)
    done = sum(1 for r in runs if r.status == "succeeded")
    head = f"*Comparison summary*: {done} of {len(runs)} routes returned an image."
    return trim(f"{head}\n```{table}```")

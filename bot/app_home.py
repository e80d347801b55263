"""The App Home tab: routes and their health, recent runs, spend this week, verdicts, help."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.imageroute_cmd import HELP, context, section
from bot.messages import money, seconds
from storage.runlog import RouteStats
from storage.tables import Run

HEALTH_ICON = {
    "healthy": ":large_green_circle:",
    "degraded": ":large_yellow_circle:",
    "failing": ":red_circle:",
}


def home_view(
    routes: Sequence[tuple[str, str, str | None, str | None]],
    health: Mapping[str, str],
    recent: Sequence[Run],
    week: Mapping[str, RouteStats],
    week_by_owner: Mapping[str, float],
    verdicts: Mapping[str, tuple[int, int]],
) -> dict[str, Any]:
    """routes: (id, kind, board row, billing owner)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "imageroute"}},
    ]
    lines = []
    for rid, kind, board, owner in routes:
        state = health.get(rid, "unknown")
        icon = HEALTH_ICON.get(state, ":white_circle:")
        good, bad = verdicts.get(rid, (0, 0))
        lines.append(
            f"{icon} `{rid}` {kind}, board `{board or 'none'}`, {state}, billed to "
            f"{owner or 'unknown owner'} · verdicts {good} survive / {bad} do not"
        )
    blocks.append(section("*Routes*\n" + ("\n".join(lines) or "No routes configured.")))
    spend = [f"• `{rid}`: ${s.spend_usd:.2f} over {s.runs} run(s)" for rid, s in week.items()]
    owners = [f"• {owner}: ${usd:.2f}" for owner, usd in week_by_owner.items()]
    blocks.append(
        section(
            "*Spend this week by route*\n"
            + ("\n".join(spend) or "Nothing spent yet.")
            + "\n*By billing owner*\n"
            + ("\n".join(owners) or "—")
        )
    )
    run_lines = [
        f"• #{r.id} `{r.route_id}` {r.status} {seconds(r.latency_s)} "
        f"{money(r.cost_usd, r.cost_basis)}: {' '.join(r.prompt.split())[:60]}"
        for r in recent
    ]
    blocks.append(section("*Recent runs*\n" + ("\n".join(run_lines) or "No runs yet.")))
    blocks.append({"type": "divider"})
    blocks.append(section(HELP))
    blocks.append(context("Refreshed each time you open this tab."))
    return {"type": "home", "blocks": blocks[:100]}

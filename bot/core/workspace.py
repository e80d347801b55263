"""This workspace's routes and what it has measured on them, as plain data for the advisor."""

from __future__ import annotations

from collections.abc import Mapping

from advisor import Advice, WorkspaceRoute, advise
from bot.core.lifecycle import model_facts
from routes.base import Route
from storage.checks import CHECK_NAMES, CheckLog
from storage.runlog import RunLog

# How the advisor names each acceptance check in "in this workspace".
_CHECK_WORDS = {
    "text": "text legible",
    "edit": "edit kept",
    "transparency": "transparent",
    "delivery": "as asked",
    "repeat": "repeatable",
}


def check_pass_rates(checklog: CheckLog | None) -> dict[str, tuple[tuple[str, float, int], ...]]:
    """Per route: (check, share passed, images checked) for each check that ran there."""
    if checklog is None:
        return {}
    totals: dict[str, dict[str, list[int]]] = {}
    for f in checklog.figures():
        if f.ran:
            pair = totals.setdefault(f.route_id, {}).setdefault(f.name, [0, 0])
            pair[0] += f.passed
            pair[1] += f.ran
    return {
        rid: tuple(
            (_CHECK_WORDS[name], by_name[name][0] / by_name[name][1], by_name[name][1])
            for name in CHECK_NAMES
            if name in by_name
        )
        for rid, by_name in totals.items()
    }


def workspace_routes(
    routes: Mapping[str, Route],
    runlog: RunLog,
    health: Mapping[str, str] | None = None,
    checklog: CheckLog | None = None,
) -> list[WorkspaceRoute]:
    """Configured routes that serve a board row, with their run-log numbers, acceptance
    checks and health (runs of unknown cost are counted, never taken as $0)."""
    stats = runlog.route_stats()
    checks = check_pass_rates(checklog)
    out: list[WorkspaceRoute] = []
    for rid, route in routes.items():
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
                checks=checks.get(rid, ()),
                unpriced_runs=s.unpriced_runs if s else 0,
            )
        )
    return out


def advise_workspace(
    question: str,
    routes: Mapping[str, Route],
    runlog: RunLog,
    health: Mapping[str, str] | None = None,
    checklog: CheckLog | None = None,
) -> Advice:
    """The route board's advice for a question, with this workspace's own numbers and the
    live model lifecycle catalog."""
    return advise(
        question, workspace_routes(routes, runlog, health, checklog), models=model_facts()
    )

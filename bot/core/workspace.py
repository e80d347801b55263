"""This workspace's routes and what it has measured on them, as plain data for the advisor."""

from __future__ import annotations

from collections.abc import Mapping

from advisor import Advice, WorkspaceRoute, advise
from routes.base import Route
from storage.runlog import RunLog


def workspace_routes(
    routes: Mapping[str, Route], runlog: RunLog, health: Mapping[str, str] | None = None
) -> list[WorkspaceRoute]:
    """Configured routes that serve a board row, with their run-log numbers and health."""
    stats = runlog.route_stats()
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
            )
        )
    return out


def advise_workspace(
    question: str,
    routes: Mapping[str, Route],
    runlog: RunLog,
    health: Mapping[str, str] | None = None,
) -> Advice:
    """The route board's advice for a question, with this workspace's own numbers."""
    return advise(question, workspace_routes(routes, runlog, health))

"""The advisor's answer as plain immutable data, with JSON and plain-text renderings."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

MatchKind = Literal["route", "caveat", "note", "topic"]
Counted = Literal["for", "against", "ignored"]
# "advice": a route-board answer; "out-of-scope": the question is about something else (video,
# PTO...); "unclear": not understood well enough to advise (empty, gibberish, unread script).
AnswerScope = Literal["advice", "out-of-scope", "unclear"]


@dataclass(frozen=True, slots=True)
class WorkspaceRoute:
    """A configured route and its run-log numbers, computed by the bot and handed in as data."""

    route_id: str
    kind: str
    board: str
    health: str | None
    runs: int
    success_rate: float | None
    p50_latency_s: float | None
    median_cost_usd: float | None
    # Automatic acceptance checks: (check, share passed, images checked), e.g. ("text
    # legible", 0.8, 10).
    checks: tuple[tuple[str, float, int], ...] = ()
    # Runs that made images at a cost nobody knows: said beside the median, never taken as $0.
    unpriced_runs: int = 0


@dataclass(frozen=True, slots=True)
class Caveat:
    id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Alternative:
    route: str
    reason: str
    first_benchmark: str
    in_workspace: tuple[WorkspaceRoute, ...] = ()


@dataclass(frozen=True, slots=True)
class MatchedSignal:
    """Words from the question that meant something, and what they counted for.

    `counted` is "for" (evidence for `route`/the caveat/the note), "against" (mentioned under a
    negation, so it counts against `route`), or "ignored" (matched but not used, e.g. a
    negated caveat trigger).
    """

    phrase: str
    meaning: str
    kind: MatchKind
    route: str | None
    weight: int
    negated: bool
    negated_by: str | None
    counted: Counted


@dataclass(frozen=True, slots=True)
class ModelChange:
    """A board row whose named model is not the article's: which model it names now, and why."""

    route: str
    article_model: str
    model: str
    status: str | None
    change: str
    source: str
    checked: str | None


@dataclass(frozen=True, slots=True)
class Advice:
    """Which route deserves the first serious benchmark, why, and what to check on it.

    `verify` holds the few checks that matter most for this question (first the requirements
    and caveats it raised, then the row's checks about what it mentioned); `verify_more` the
    rest of the row's checklist. `vetoed_by` quotes the requirements that ruled out every
    hosted route; `benchmark_both` names two routes the question supports equally.
    """

    route: str | None
    first_benchmark: str
    why: str
    verify: tuple[str, ...]
    caveats: tuple[Caveat, ...]
    alternatives: tuple[Alternative, ...]
    is_default: bool
    notes: tuple[str, ...]
    matched: tuple[MatchedSignal, ...]
    scores: tuple[tuple[str, int], ...]
    ruled_out: tuple[str, ...]
    in_workspace: tuple[WorkspaceRoute, ...]
    scope: AnswerScope = "advice"
    verify_more: tuple[str, ...] = ()
    vetoed_by: tuple[str, ...] = ()
    benchmark_both: tuple[str, ...] = ()
    lifecycle: tuple[ModelChange, ...] = ()

    @property
    def caveat_ids(self) -> tuple[str, ...]:
        return tuple(caveat.id for caveat in self.caveats)

    def to_json(self) -> dict[str, Any]:
        """The contract fields (route, caveats, why, verify, alternatives) plus extras."""
        return {
            "route": self.route,
            "caveats": list(self.caveat_ids),
            "why": self.why,
            "verify": list(self.verify),
            "alternatives": [
                {
                    "route": alt.route,
                    "reason": alt.reason,
                    "first_benchmark": alt.first_benchmark,
                    "in_workspace": [asdict(ws) for ws in alt.in_workspace],
                }
                for alt in self.alternatives
            ],
            "first_benchmark": self.first_benchmark,
            "is_default": self.is_default,
            "notes": list(self.notes),
            "caveat_details": [asdict(caveat) for caveat in self.caveats],
            "matched": [asdict(match) for match in self.matched],
            "scores": dict(self.scores),
            "ruled_out": list(self.ruled_out),
            "in_workspace": [asdict(ws) for ws in self.in_workspace],
            "scope": self.scope,
            "verify_more": list(self.verify_more),
            "vetoed_by": list(self.vetoed_by),
            "benchmark_both": list(self.benchmark_both),
            "lifecycle": [asdict(change) for change in self.lifecycle],
        }

    def to_text(self) -> str:
        """A plain-text answer for the CLI and logs."""
        if self.scope != "advice":
            return f"Route: none ({self.scope})\nWhy: {self.why}"
        route = self.route if self.route is not None else "none fits as asked"
        if len(self.benchmark_both) == 2:
            route = f"{self.benchmark_both[0]} and {self.benchmark_both[1]} (benchmark both)"
        lines = [f"Route: {route}{' (default)' if self.is_default else ''}"]
        lines.append(f"First benchmark: {self.first_benchmark}")
        lines.append(f"Why: {self.why}")
        if self.caveats:
            lines.append("Caveats:")
            lines.extend(f"  - {c.id}: {c.text}" for c in self.caveats)
        if self.verify:
            lines.append("Verify on this route:" if self.route else "Verify:")
            lines.extend(f"  - {item}" for item in self.verify)
        if self.verify_more:
            lines.append("Also on the checklist:")
            lines.extend(f"  - {item}" for item in self.verify_more)
        if self.alternatives:
            lines.append("Alternatives:")
            lines.extend(f"  - {alt.route}: {alt.reason}" for alt in self.alternatives)
        if self.notes:
            lines.append("Notes:")
            lines.extend(f"  - {note}" for note in self.notes)
        if self.route is not None:
            lines.append("In this workspace:")
            if self.in_workspace:
                lines.extend(f"  - {describe_workspace_route(ws)}" for ws in self.in_workspace)
            else:
                lines.append(f"  - no configured route serves the {self.route} row yet")
        return "\n".join(lines)


def describe_workspace_route(ws: WorkspaceRoute) -> str:
    """One line of run-log numbers; unknown values say so rather than pretending to be zero."""
    parts = [ws.health or "health unknown", f"{ws.runs} run{'s' if ws.runs != 1 else ''}"]
    if ws.success_rate is not None:
        parts.append(f"{ws.success_rate:.0%} success")
    if ws.p50_latency_s is not None:
        parts.append(f"p50 {ws.p50_latency_s:.1f} s")
    if ws.median_cost_usd is not None:
        parts.append(f"median {_cost(ws.median_cost_usd)}")
    if ws.unpriced_runs:
        parts.append(f"{ws.unpriced_runs} run{'s' if ws.unpriced_runs != 1 else ''} unpriced")
    for name, share, checked in ws.checks:
        parts.append(f"{name} {share:.0%} of {checked}")
    return f"{ws.route_id} ({ws.kind}): " + ", ".join(parts)


def _cost(usd: float) -> str:
    # Read as the bot reads costs (bot/core/figures.py): a free route costs "$0 (free)".
    if usd == 0:
        return "$0 (free)"
    return f"${usd:.4f}" if usd < 0.01 else f"${usd:.3f}"

"""The per-route health state machine (pure): newest checks + open incident -> what changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from routes.config import ProbeSettings
from storage.tables import HealthCheck, Incident

State = Literal["healthy", "failing", "degraded", "unknown", "off"]


@dataclass(frozen=True)
class Streaks:
    """Leading runs of the newest checks: failures, slow successes, good successes."""

    failures: int = 0
    slow: int = 0
    good: int = 0


def streaks(checks: Sequence[HealthCheck], latency_slo_seconds: float) -> Streaks:
    """`checks` newest first. Only the leading run of one kind counts."""
    if not checks:
        return Streaks()

    def kind(check: HealthCheck) -> str:
        if not check.ok:
            return "failures"
        if check.latency_s is not None and check.latency_s > latency_slo_seconds:
            return "slow"
        return "good"

    first = kind(checks[0])
    count = 0
    for check in checks:
        if kind(check) != first:
            break
        count += 1
    return Streaks(**{first: count})


@dataclass(frozen=True)
class Decision:
    open: Literal["failing", "degraded"] | None = None  # open an incident of this kind
    resolve: bool = False
    change_to: Literal["failing", "degraded"] | None = None  # open incident changes kind


def decide(
    checks: Sequence[HealthCheck], settings: ProbeSettings, incident: Incident | None
) -> Decision:
    s = streaks(checks, settings.latency_slo_seconds)
    if incident is None:
        if s.failures >= settings.failure_threshold:
            return Decision(open="failing")
        if s.slow >= settings.failure_threshold:
            return Decision(open="degraded")
        return Decision()
    if s.good >= settings.success_threshold:
        return Decision(resolve=True)
    if incident.kind == "degraded" and s.failures >= settings.failure_threshold:
        return Decision(change_to="failing")
    if incident.kind == "failing" and s.slow >= settings.success_threshold:
        return Decision(change_to="degraded")
    return Decision()

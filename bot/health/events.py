"""What the health monitor tells on-call, as events; an AlertSink renders and delivers them.

The monitor keeps the incident state (alerted, reminded, recovered, which thread); a sink only
turns an event into a message. `post` answers the message's id (its thread), or None when it
was not delivered: with a channel that means "try again next round".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from storage.tables import Incident


@dataclass(frozen=True)
class AlertLine:
    """One route of an alert: its incident, board row and last successful check, who owns the
    route (and which user group is on call for it), and the healthy route the board suggests
    running on instead."""

    incident: Incident
    board: str | None
    last_success: datetime | None
    route_owner: str | None = None
    oncall: str | None = None
    fallback: str | None = None


@dataclass(frozen=True)
class RoutesDown:
    """Routes went down or degraded (several in one round: a provider outage?).

    Also the alert message's current state when it is rewritten: each line's incident says
    whether it is still open, acknowledged or resolved, and the diagnosis stays."""

    lines: tuple[AlertLine, ...]
    now: datetime
    latency_slo_seconds: float


@dataclass(frozen=True)
class KindChanged:
    """An open incident moved between failing and degraded."""

    incident: Incident


@dataclass(frozen=True)
class Reopened:
    """A route that recovered a short while ago went down again: same incident, same thread."""

    incident: Incident


@dataclass(frozen=True)
class StillDown:
    """A reminder for incidents still open after repeat_alert_minutes."""

    incidents: tuple[Incident, ...]
    now: datetime


@dataclass(frozen=True)
class Recovered:
    incident: Incident
    minutes: int


HealthEvent = RoutesDown | KindChanged | Reopened | StillDown | Recovered


class AlertSink(Protocol):
    """Where health events go; `channel` is None when they are only logged."""

    @property
    def channel(self) -> str | None: ...

    async def post(self, event: HealthEvent, thread: str | None = None) -> str | None: ...

    async def restate(self, channel: str, ts: str, event: RoutesDown) -> None:
        """Rewrite the alert message at `ts` to show its incidents' current state."""
        ...

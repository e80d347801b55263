"""What the product reports as it works, for whoever counts it: runs, probes, queues, acks.

The run service, the health monitor and the Slack layer emit these small events to the
process's `Observers`; the metrics exporter (bot.wiring.metrics) subscribes. The product never
imports a metrics library, and a listener that fails is logged, never felt by a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunStarted:
    """A run's pending row is written and its provider is about to be called."""

    run_id: int
    route_id: str


@dataclass(frozen=True)
class RunFinished:
    """A run reached its final status (succeeded, failed, interrupted) in this process.

    `cost_usd` is None when the cost is unknown; `unpriced` says such a run made images or a
    billed task (what every spend surface counts as "unpriced", storage.runlog)."""

    run_id: int
    route_id: str
    status: str
    error_class: str | None
    billing_owner: str | None
    latency_s: float | None  # the provider call, as shown with the result; None without one
    cost_usd: float | None
    unpriced: bool


@dataclass(frozen=True)
class ProbeChecked:
    """One health probe's result, as recorded."""

    route_id: str
    kind: str
    ok: bool
    error_class: str | None
    latency_s: float | None


@dataclass(frozen=True)
class RouteStates:
    """Every route's health after a probe round, and the incidents open by kind."""

    states: Mapping[str, str]
    incidents_open: Mapping[str, int]


@dataclass(frozen=True)
class IncidentAcknowledged:
    """Someone on call acknowledged an alert, `seconds` after it was posted."""

    route_id: str
    seconds: float


@dataclass(frozen=True)
class WorkQueue:
    """This process's admission queue: requests running and requests waiting for a slot."""

    running: int
    waiting: int


Observation = (
    RunStarted | RunFinished | ProbeChecked | RouteStates | IncidentAcknowledged | WorkQueue
)
Listener = Callable[[Observation], None]


class Observers:
    """The listeners of one process. `emit` is synchronous and cheap: listeners only count."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, observation: Observation) -> None:
        for listener in self._listeners:
            try:
                listener(observation)
            except Exception:  # counting must never break the work being counted
                log.exception("observer %r failed on %s", listener, type(observation).__name__)

"""Prometheus metrics of one process (a bot replica or a prober), served on GET /metrics.

Each process has its own registry, fed by the product's observations (bot.core.observers) and
by what only the wiring sees (how long Slack waited for an ack, whether this process is the
active prober). Every name is listed in docs/operations.md; deploy/prometheus/ and
deploy/grafana/ use only these (a test holds them to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bot.core.observers import (
    IncidentAcknowledged,
    Observation,
    ProbeChecked,
    RouteStates,
    RunFinished,
    RunStarted,
    WorkQueue,
)
from routes.config import AppConfig

if TYPE_CHECKING:
    from bot.wiring.runtime import Runtime

# No *_created series: start times that Prometheus does not need (prometheus_client is untyped
# here).
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
STATES: Final = ("healthy", "degraded", "failing", "unknown", "off")
# Image generation takes seconds to minutes; probes and acks far less.
RUN_BUCKETS: Final = (0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)
PROBE_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
ACK_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5)
INCIDENT_ACK_BUCKETS: Final = (60, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)


class Metrics:
    """One process's instruments. `observe` is the listener for bot.core.observers."""

    def __init__(self, role: str, version: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build = Gauge(
            "imageroute_build_info",
            "This process: its role (bot or prober) and version.",
            ["role", "version"],
            registry=r,
        )
        self.build.labels(role, version or _version()).set(1)
        self.runs = Counter(
            "imageroute_runs",
            "Runs finished in this process, by route, status and error class.",
            ["route", "status", "error_class"],
            registry=r,
        )
        self.run_latency = Histogram(
            "imageroute_run_latency_seconds",
            "Provider latency of runs that returned a result (as shown with it), by route.",
            ["route"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.spend = Counter(
            "imageroute_spend_usd",
            "Known cost of finished runs in USD, by route and billing owner (unknown costs "
            "are in imageroute_runs_unpriced_total, never counted as $0).",
            ["route", "billing_owner"],
            registry=r,
        )
        self.unpriced = Counter(
            "imageroute_runs_unpriced",
            "Runs that made images (or a billed task) whose cost is unknown.",
            ["route", "billing_owner"],
            registry=r,
        )
        self.in_flight = Gauge(
            "imageroute_runs_in_flight",
            "Runs this process is running now (provider called, not finished), by route.",
            ["route"],
            registry=r,
        )
        self.queue_running = Gauge(
            "imageroute_requests_running",
            "Slack requests holding one of this process's run slots.",
            registry=r,
        )
        self.queued = Gauge(
            "imageroute_requests_queued",
            "Slack requests waiting for one of this process's run slots.",
            registry=r,
        )
        self.daily_cap = Gauge(
            "imageroute_route_daily_cap_usd",
            "A route's daily spend cap from the routes file (routes without one are absent).",
            ["route"],
            registry=r,
        )
        self.probes = Counter(
            "imageroute_probes",
            "Health probes run by this process, by route, kind and result.",
            ["route", "kind", "result", "error_class"],
            registry=r,
        )
        self.probe_latency = Histogram(
            "imageroute_probe_latency_seconds",
            "Health probe latency, by route and probe kind.",
            ["route", "kind"],
            buckets=PROBE_BUCKETS,
            registry=r,
        )
        self.route_state = Gauge(
            "imageroute_route_state",
            "1 for each route's current health state (set by the active prober after a round).",
            ["route", "state"],
            registry=r,
        )
        self.incidents = Gauge(
            "imageroute_incidents_open",
            "Health incidents open, by kind (set by the active prober after a round).",
            ["kind"],
            registry=r,
        )
        self.prober_active = Gauge(
            "imageroute_prober_active",
            "1 while this process holds the prober lock and runs the probe rounds.",
            registry=r,
        )
        self.slack_ack = Histogram(
            "imageroute_slack_ack_seconds",
            "Time from a Slack request's arrival to its answer (Slack allows 3 s), by kind.",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.incident_ack = Histogram(
            "imageroute_incident_ack_seconds",
            "Time from a health alert to its acknowledgement by on-call.",
            buckets=INCIDENT_ACK_BUCKETS,
            registry=r,
        )
        self._running: dict[int, str] = {}
        self._leading = False

    # -- what the wiring knows ---------------------------------------------------------------
    def configure(self, config: AppConfig) -> None:
        """Series known from the routes file: every route appears at 0 from the start."""
        for rid, route in config.enabled_routes.items():
            self.in_flight.labels(rid)
            if route.daily_spend_usd is not None:
                self.daily_cap.labels(rid).set(route.daily_spend_usd)

    def acked(self, kind: str, seconds: float) -> None:
        self.slack_ack.labels(kind).observe(seconds)

    def leading(self, active: bool) -> None:
        """This process became (or stopped being) the prober. A standby shows no route state
        or incidents: those are the active prober's to say."""
        self._leading = active
        self.prober_active.set(1 if active else 0)
        if not active:
            self.route_state.clear()
            self.incidents.clear()

    # -- what the product reports --------------------------------------------------------------
    def observe(self, event: Observation) -> None:
        if isinstance(event, RunStarted):
            self._running[event.run_id] = event.route_id
            self.in_flight.labels(event.route_id).inc()
        elif isinstance(event, RunFinished):
            self._finished(event)
        elif isinstance(event, ProbeChecked):
            result = "ok" if event.ok else "failed"
            error = event.error_class or "none"
            self.probes.labels(event.route_id, event.kind, result, error).inc()
            if event.latency_s is not None:
                self.probe_latency.labels(event.route_id, event.kind).observe(event.latency_s)
        elif isinstance(event, RouteStates):
            self._states(event)
        elif isinstance(event, IncidentAcknowledged):
            self.incident_ack.observe(event.seconds)
        elif isinstance(event, WorkQueue):
            self.queue_running.set(event.running)
            self.queued.set(event.waiting)

    def _finished(self, event: RunFinished) -> None:
        route = self._running.pop(event.run_id, None)
        if route is not None:
            self.in_flight.labels(route).dec()
        owner = event.billing_owner or "unknown"
        self.runs.labels(event.route_id, event.status, event.error_class or "none").inc()
        if event.status == "succeeded" and event.latency_s is not None:
            self.run_latency.labels(event.route_id).observe(event.latency_s)
        if event.cost_usd is not None:
            self.spend.labels(event.route_id, owner).inc(max(event.cost_usd, 0.0))
        elif event.unpriced:
            self.unpriced.labels(event.route_id, owner).inc()

    def _states(self, event: RouteStates) -> None:
        if not self._leading:
            return  # a "Probe now" on a replica: the active prober's figures stand
        self.route_state.clear()
        for route, current in event.states.items():
            for state in STATES:
                self.route_state.labels(route, state).set(1 if state == current else 0)
        for kind in {"failing", "degraded", *event.incidents_open}:
            self.incidents.labels(kind).set(event.incidents_open.get(kind, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def process_metrics(runtime: Runtime) -> Metrics:
    """This process's metrics, fed by its runtime's observations from now on."""
    metrics = Metrics("prober" if runtime.role == "prober" else "bot")
    metrics.configure(runtime.config)
    runtime.observers.subscribe(metrics.observe)
    return metrics


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imageroute")
    except PackageNotFoundError:
        return "unknown"

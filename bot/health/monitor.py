"""Probes routes, records checks and moves incidents through their states.

State is derived from the database (recent checks + open incidents), never kept only in
memory, so a restarted bot or a second prober sees the same incidents and repeats no alert.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from bot.core.observers import IncidentAcknowledged, Observers, ProbeChecked, RouteStates
from bot.core.spend import OverCap, SpendPolicy
from bot.health.events import AlertLine, AlertSink, KindChanged
from bot.health.fallback import fallback_route
from bot.health.notices import Notices
from bot.health.report import RouteHealth, health_report, route_states
from bot.health.states import State, decide
from routes.config import ProbeSettings
from routes.executor import RouteExecutor
from routes.model import ProbeResult
from storage.health import HealthLog
from storage.runlog import as_utc
from storage.tables import HealthCheck, Incident, utcnow

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class HealthMonitor:
    """Probes routes, records checks, moves incidents through their states, tells on-call."""

    def __init__(
        self,
        health: HealthLog,
        executors: dict[str, RouteExecutor],
        settings: ProbeSettings,
        alerts: AlertSink | None,
        *,
        spend: SpendPolicy | None = None,
        clock: Clock = utcnow,
        observers: Observers | None = None,
    ) -> None:
        self.observers = observers or Observers()
        self.health = health
        self.executors = executors
        self.settings = settings
        self.spend = spend
        self.clock = clock
        self.notices = Notices(health, settings, alerts, self._line)
        self._lock = asyncio.Lock()

    def probed(self, route_ids: Iterable[str] | None = None) -> list[str]:
        ids = list(route_ids) if route_ids is not None else list(self.executors)
        return [rid for rid in ids if self.executors[rid].route.config.probe != "off"]

    async def affordable(self, route_ids: Iterable[str]) -> list[str]:
        """The routes whose probe the spend policy allows: a generate probe is a paid image."""
        allowed = []
        for rid in route_ids:
            paid = self.executors[rid].route.config.probe == "generate"
            refusal = await self.spend.refusal([rid]) if paid and self.spend else None
            if refusal is None:
                allowed.append(rid)
            else:
                log.warning("generate probe of %s skipped: %s", rid, refusal)
        return allowed

    async def probe(self, route_ids: Iterable[str] | None = None) -> list[HealthCheck]:
        """Run each route's probe once, concurrently, and record the results. A generate probe
        is a paid image: it is admitted by the spend policy like a run (its cost held while it
        runs), or skipped."""
        ids = await self.affordable(self.probed(route_ids))
        probed = await asyncio.gather(*(self._probe_one(rid) for rid in ids))
        results = [r for r in probed if r is not None]
        checks = [
            HealthCheck(
                route_id=result.route_id,
                checked_at=datetime.fromtimestamp(result.checked_at, UTC),
                source="probe",
                probe_kind=result.kind,
                ok=result.ok,
                latency_s=round(result.latency_s, 4),
                error_class=result.error_class,
                error_message=result.message,
                request_id=result.request_id,
                cost_usd=result.cost.usd if result.cost is not None else None,
            )
            for result in results
        ]
        for check in checks:
            await asyncio.to_thread(self.health.record, check)
            self.observers.emit(
                ProbeChecked(
                    check.route_id,
                    check.probe_kind or "probe",
                    check.ok,
                    check.error_class,
                    check.latency_s,
                )
            )
            log.info(
                "probe of %s %s in %.2f s",
                check.route_id,
                "ok" if check.ok else f"failed ({check.error_class})",
                check.latency_s or 0.0,
                extra={
                    "route": check.route_id,
                    "probe_kind": check.probe_kind,
                    "ok": check.ok,
                    "error_class": check.error_class,
                    "provider_request_id": check.request_id,
                    "duration_s": check.latency_s,
                },
            )
        return checks

    async def _probe_one(self, rid: str) -> ProbeResult | None:
        mode = self.executors[rid].route.config.probe
        if mode != "generate" or self.spend is None:
            return await self.executors[rid].probe(mode)
        try:
            hold = await self.spend.reserve([rid])
        except OverCap as exc:
            log.warning("generate probe of %s skipped: %s", rid, exc)
            return None
        try:
            return await self.executors[rid].probe(mode)
        finally:
            await self.spend.release(hold)

    async def round(self) -> list[HealthCheck]:
        """One probe round: probe every route, then update incidents and tell on-call."""
        checks = await self.probe()
        await self.evaluate()
        return checks

    async def evaluate(self) -> None:
        async with self._lock:
            now = self.clock()
            await self._transitions(now)
            await self.notices.announce_new(now)
            await self.notices.remind(now)
            await self.notices.recoveries(now)
        await self.report_states()

    async def report_states(self) -> None:
        """Tell the observers every route's state and the incidents open, by kind."""
        states = await self.states()
        incidents: dict[str, int] = {}
        for incident in await asyncio.to_thread(self.health.open_incidents):
            incidents[incident.kind] = incidents.get(incident.kind, 0) + 1
        self.observers.emit(RouteStates(dict(states), incidents))

    # -- transitions ------------------------------------------------------------------------
    async def _transitions(self, now: datetime) -> None:
        open_by_route = {i.route_id: i for i in await asyncio.to_thread(self.health.open_incidents)}
        changed: list[Incident] = []
        for rid in self.executors:
            checks = await asyncio.to_thread(self.health.recent, rid, 20)
            incident = open_by_route.get(rid)
            decision = decide(checks, self.settings, incident)
            last = checks[0] if checks else None
            if decision.open and last is not None:
                changed.append(await self._open(rid, decision.open, last, now))
            elif incident is not None and decision.resolve:
                incident.resolved_at = now
                changed.append(incident)
            elif incident is not None and decision.change_to:
                incident.kind = decision.change_to
                self._note_error(incident, last)
                changed.append(incident)
                await self.notices.in_thread(KindChanged(incident), incident)
                await self.notices.restate(incident, now)
            elif incident is not None and last is not None and not last.ok:
                self._note_error(incident, last)
                changed.append(incident)
        if changed:
            await asyncio.to_thread(self.health.save, changed)

    async def _open(self, rid: str, kind: str, last: HealthCheck, now: datetime) -> Incident:
        """A new incident, or, for a route that recovered a short while ago, the same one
        reopened: a flapping route keeps one thread instead of alerting on every flip."""
        cooldown = timedelta(minutes=self.settings.repeat_alert_minutes)
        previous = await asyncio.to_thread(self.health.latest_resolved, rid)
        if (
            previous is not None
            and previous.resolved_at
            and now - as_utc(previous.resolved_at) < cooldown
        ):
            previous.resolved_at = None
            previous.recovery_posted = False
            # Down again: whoever acknowledged the last episode has not seen this one.
            previous.acknowledged_by = None
            previous.acknowledged_at = None
            previous.kind = kind
            self._note_error(previous, last)
            await self.notices.reopened(previous, now)
            return previous
        incident = Incident(route_id=rid, kind=kind, opened_at=last.checked_at or now)
        incident.first_error = self._describe(last)
        self._note_error(incident, last)
        return incident

    def _describe(self, check: HealthCheck | None) -> str | None:
        if check is None:
            return None
        if not check.ok:
            return check.error_message or check.error_class
        return (
            f"probe took {check.latency_s or 0:.1f} s (SLO {self.settings.latency_slo_seconds:g} s)"
        )

    def _note_error(self, incident: Incident, check: HealthCheck | None) -> None:
        if check is None or (check.ok and incident.kind == "failing"):
            return
        incident.last_error = self._describe(check)
        incident.error_class = check.error_class if not check.ok else "slow"
        incident.request_id = check.request_id or incident.request_id
        if incident.first_error is None:
            incident.first_error = incident.last_error

    async def _line(self, incident: Incident) -> AlertLine:
        """One alert line: the route's facts from its config, its last success, and (while the
        incident is open) the healthy route the board suggests running on instead."""
        rid = incident.route_id
        executor = self.executors.get(rid)
        config = executor.route.config if executor else None
        fallback = None
        if incident.resolved_at is None:
            fallback = await self.fallback(rid)
        return AlertLine(
            incident,
            config.board_row if config else None,
            await asyncio.to_thread(self.health.last_success, rid),
            route_owner=config.route_owner if config else None,
            oncall=config.oncall if config else None,
            fallback=fallback,
        )

    async def fallback(self, route_id: str) -> str | None:
        """The configured healthy route the route board suggests instead of `route_id`."""
        configs = {rid: ex.route.config for rid, ex in self.executors.items()}
        return fallback_route(
            route_id,
            {rid: c.board_row for rid, c in configs.items()},
            {rid: c.kind for rid, c in configs.items()},
            await self.states(),
        )

    # -- on-call actions -------------------------------------------------------------------
    async def probe_now(self, route_id: str) -> HealthCheck | None:
        """Probe one route at once (the alert's Probe now button) and update its incident;
        None when the route is not configured or its probe is off."""
        if route_id not in self.executors or not self.probed([route_id]):
            return None
        checks = await self.probe([route_id])
        await self.evaluate()
        return checks[0] if checks else None

    async def acknowledge(self, incident_id: int, user: str) -> Incident | None:
        """Someone on call took the incident: recorded, reminders stop, the alert says who."""
        incident = await asyncio.to_thread(self.health.incident, incident_id)
        if incident is None:
            return None
        first = incident.acknowledged_at is None
        now = self.clock()
        async with self._lock:
            acknowledged = await self.notices.acknowledge(incident, user, now)
        if first and acknowledged.alerted_at is not None:
            # How long on-call took to respond: counted once, by the first acknowledgement.
            waited = (as_utc(now) - as_utc(acknowledged.alerted_at)).total_seconds()
            self.observers.emit(IncidentAcknowledged(acknowledged.route_id, max(waited, 0.0)))
        return acknowledged

    # -- reading ---------------------------------------------------------------------------
    async def states(self) -> dict[str, State]:
        return await route_states(self.health, self.executors, self.settings)

    async def report(self) -> list[RouteHealth]:
        return await health_report(self.health, self.executors, self.clock(), self.settings)

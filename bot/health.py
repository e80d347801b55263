"""Route health: probes, the per-route state machine, incidents and the on-call messages.

State is derived from the database (recent checks + open incidents), never kept only in
memory, so a restarted bot or a second prober sees the same incidents and repeats no alert.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from routes.config import ProbeSettings
from routes.executor import RouteExecutor
from storage.health import HealthLog, latency_percentiles
from storage.runlog import as_utc
from storage.tables import HealthCheck, Incident, utcnow

if TYPE_CHECKING:
    from bot.slack_client import SlackPoster

log = logging.getLogger(__name__)

State = Literal["healthy", "failing", "degraded", "unknown", "off"]
Clock = Callable[[], datetime]


# -- the state machine (pure) ------------------------------------------------------------------
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


# -- messages ------------------------------------------------------------------------------------
ICON = {"failing": ":red_circle:", "degraded": ":large_yellow_circle:"}


def verify_hint(error_class: str | None, message: str | None, kind: str, slo: float) -> str:
    """What to check first, from the route board's verify lists."""
    text = (message or "").lower()
    if "verif" in text and "organi" in text:
        return (
            "Organization verification is an account-readiness step, not a reason to switch "
            "routes: complete it in the provider console (it can take a few minutes to apply)."
        )
    if kind == "degraded":
        return (
            f"Probes are slower than latency_slo_seconds ({slo:g} s): check the provider's "
            "status page and the route's load."
        )
    return {
        "auth": (
            "Check the route's API key or credentials, the billing owner's account and model "
            "access."
        ),
        "rate_limit": (
            "Check the account's rate limits and quota tier, and the route's max_concurrency."
        ),
        "timeout": "Check the provider's status page and the route's timeout_seconds.",
        "provider_down": "Check the provider's status page; retries are already applied.",
    }.get(error_class or "", "Check the route's configuration and the provider's status page.")


def _ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "never"
    minutes = int((now - as_utc(then)).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago"


def _minutes(start: datetime, end: datetime) -> int:
    return max(1, round((as_utc(end) - as_utc(start)).total_seconds() / 60))


@dataclass(frozen=True)
class AlertLine:
    incident: Incident
    board: str | None
    last_success: datetime | None


def alert_text(lines: Sequence[AlertLine], now: datetime, slo: float) -> str:
    if len(lines) == 1:
        only = lines[0].incident
        head = f"{ICON[only.kind]} Route `{only.route_id}` is {only.kind}"
    else:
        ids = ", ".join(f"`{line.incident.route_id}`" for line in lines)
        head = (
            f":rotating_light: {len(lines)} routes are down or degraded in one probe round "
            f"(provider outage?): {ids}"
        )
    body = []
    for line in lines:
        inc = line.incident
        rid = f" Request id `{inc.request_id}`." if inc.request_id else ""
        body.append(
            f"• `{inc.route_id}` ({inc.kind}, board row `{line.board or 'none'}`): "
            f"{inc.error_class or 'error'}: {inc.last_error or 'no detail'}.{rid} "
            f"Last success: {_ago(line.last_success, now)}.\n"
            f"   Verify: {verify_hint(inc.error_class, inc.last_error, inc.kind, slo)}"
        )
    return head + "\n" + "\n".join(body)


# -- the service -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RouteHealth:
    route_id: str
    state: State
    last_check: HealthCheck | None
    uptime_24h: float | None
    uptime_7d: float | None
    p50_s: float | None
    p95_s: float | None
    incident: Incident | None


class HealthMonitor:
    """Probes routes, records checks, moves incidents through their states, tells on-call."""

    def __init__(
        self,
        health: HealthLog,
        executors: dict[str, RouteExecutor],
        settings: ProbeSettings,
        poster: SlackPoster | None,
        alert_channel: str | None,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self.health = health
        self.executors = executors
        self.settings = settings
        self.poster = poster
        self.alert_channel = alert_channel
        self.clock = clock
        self._lock = asyncio.Lock()

    def probed(self, route_ids: Iterable[str] | None = None) -> list[str]:
        ids = list(route_ids) if route_ids is not None else list(self.executors)
        return [rid for rid in ids if self.executors[rid].route.config.probe != "off"]

    async def probe(self, route_ids: Iterable[str] | None = None) -> list[HealthCheck]:
        """Run each route's probe once, concurrently, and record the results."""
        ids = self.probed(route_ids)
        results = await asyncio.gather(
            *(self.executors[rid].probe(self.executors[rid].route.config.probe) for rid in ids)
        )
        checks = []
        for result in results:
            checks.append(
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
            )
        for check in checks:
            await asyncio.to_thread(self.health.record, check)
        return checks

    async def round(self) -> list[HealthCheck]:
        """One probe round: probe every route, then update incidents and Slack."""
        checks = await self.probe()
        await self.evaluate()
        return checks

    async def evaluate(self) -> None:
        async with self._lock:
            now = self.clock()
            await self._transitions(now)
            await self._announce_new(now)
            await self._remind(now)
            await self._recoveries(now)

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
                await self._thread_reply(
                    incident, f"`{rid}` is now {decision.change_to}: {incident.last_error}"
                )
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
            previous.kind = kind
            self._note_error(previous, last)
            await self._thread_reply(
                previous,
                f"{ICON.get(kind, '')} `{rid}` is {kind} again: {previous.last_error} "
                "(same incident: it recovered less than repeat_alert_minutes ago).",
            )
            await self._edit_parent(previous, now, resolved=False)
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

    # -- Slack ------------------------------------------------------------------------------
    def _board(self, rid: str) -> str | None:
        executor = self.executors.get(rid)
        return executor.route.config.board_row if executor else None

    async def _post(self, text: str, thread_ts: str | None = None) -> str | None:
        if self.poster is None or not self.alert_channel:
            log.warning("health alert (no ALERT_CHANNEL): %s", text)
            return None
        try:
            return await self.poster.post(self.alert_channel, text, thread_ts=thread_ts)
        except Exception as exc:  # Slack unreachable: the alert stays pending, retried later
            log.warning("could not post health alert: %s", type(exc).__name__)
            return None

    async def _announce_new(self, now: datetime) -> None:
        """Alerts not yet posted (new this round, or Slack failed last time): one message."""
        pending = [
            i for i in await asyncio.to_thread(self.health.open_incidents) if i.alerted_at is None
        ]
        if not pending:
            return
        lines = [
            AlertLine(
                i,
                self._board(i.route_id),
                await asyncio.to_thread(self.health.last_success, i.route_id),
            )
            for i in pending
        ]
        text = alert_text(lines, now, self.settings.latency_slo_seconds)
        ts = await self._post(text)
        if ts is None and self.poster is not None and self.alert_channel:
            return  # Slack did not take it: retried next round, nothing is marked sent
        for incident in pending:
            incident.alerted_at = now
            incident.reminded_at = now
            incident.alert_channel = self.alert_channel if ts else None
            incident.alert_ts = ts
        await asyncio.to_thread(self.health.save, pending)

    async def _remind(self, now: datetime) -> None:
        every = timedelta(minutes=self.settings.repeat_alert_minutes)
        groups: dict[str, list[Incident]] = {}
        for incident in await asyncio.to_thread(self.health.open_incidents):
            if (
                incident.alert_ts
                and incident.reminded_at
                and now - as_utc(incident.reminded_at) >= every
            ):
                groups.setdefault(incident.alert_ts, []).append(incident)
        for thread_ts, incidents in groups.items():
            parts = [
                f"`{i.route_id}` still {i.kind} after {_minutes(i.opened_at, now)} min: "
                f"{i.last_error}"
                for i in incidents
            ]
            if await self._post("Reminder: " + "; ".join(parts), thread_ts=thread_ts):
                for incident in incidents:
                    incident.reminded_at = now
                await asyncio.to_thread(self.health.save, incidents)

    async def _recoveries(self, now: datetime) -> None:
        done: list[Incident] = []
        for incident in await asyncio.to_thread(self.health.unannounced_recoveries):
            if not incident.alert_ts:
                incident.recovery_posted = True  # never announced: nothing to take back
                done.append(incident)
                continue
            minutes = _minutes(incident.opened_at, incident.resolved_at or now)
            text = (
                f":white_check_mark: `{incident.route_id}` recovered: resolved, "
                f"down for {minutes} min."
            )
            if await self._post(text, thread_ts=incident.alert_ts):
                incident.recovery_posted = True
                done.append(incident)
        if done:
            await asyncio.to_thread(self.health.save, done)
            for incident in done:
                if incident.alert_ts:
                    await self._edit_parent(incident, now, resolved=True)

    async def _thread_reply(self, incident: Incident, text: str) -> None:
        if incident.alert_ts:
            await self._post(text, thread_ts=incident.alert_ts)

    async def _edit_parent(self, incident: Incident, now: datetime, *, resolved: bool) -> None:
        """The alert message shows the incident's current state; grouped alerts read resolved
        once every route in them has recovered."""
        if self.poster is None or not incident.alert_channel or not incident.alert_ts:
            return
        group = [
            i
            for i in await asyncio.to_thread(self.health.open_incidents)
            if i.alert_ts == incident.alert_ts
        ]
        if group and resolved:
            return
        if resolved:
            minutes = _minutes(incident.opened_at, incident.resolved_at or now)
            text = (
                f":white_check_mark: `{incident.route_id}` was {incident.kind}: resolved, "
                f"down for {minutes} min."
            )
        else:
            line = AlertLine(incident, self._board(incident.route_id), None)
            text = alert_text([line], now, self.settings.latency_slo_seconds)
        try:
            await self.poster.update(incident.alert_channel, incident.alert_ts, text)
        except Exception as exc:
            log.warning("could not edit health alert: %s", type(exc).__name__)

    # -- reading ---------------------------------------------------------------------------
    async def states(self) -> dict[str, str]:
        open_by_route = {i.route_id: i for i in await asyncio.to_thread(self.health.open_incidents)}
        states: dict[str, str] = {}
        for rid, executor in self.executors.items():
            if rid in open_by_route:
                states[rid] = open_by_route[rid].kind
            elif executor.route.config.probe == "off":
                states[rid] = "off"
            else:
                last = await asyncio.to_thread(self.health.recent, rid, 1)
                states[rid] = "healthy" if last else "unknown"
        return states

    async def report(self) -> list[RouteHealth]:
        now = self.clock()
        states = await self.states()
        open_by_route = {i.route_id: i for i in await asyncio.to_thread(self.health.open_incidents)}
        out = []
        for rid in self.executors:
            last = await asyncio.to_thread(self.health.recent, rid, 1)
            up24, lat24 = await asyncio.to_thread(
                self.health.window, rid, now - timedelta(hours=24)
            )
            up7, _ = await asyncio.to_thread(self.health.window, rid, now - timedelta(days=7))
            p50, p95 = latency_percentiles(lat24)
            out.append(
                RouteHealth(
                    route_id=rid,
                    state=states[rid],  # type: ignore[arg-type]
                    last_check=last[0] if last else None,
                    uptime_24h=up24,
                    uptime_7d=up7,
                    p50_s=p50,
                    p95_s=p95,
                    incident=open_by_route.get(rid),
                )
            )
        return out


def health_blocks(
    report: Sequence[RouteHealth], probe_spend_7d: float, now: datetime
) -> list[dict[str, Any]]:
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    def secs(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}s"

    rows = [f"{'route':<14}{'state':<10}{'last probe':<22}{'24h':>7}{'7d':>8}{'p50':>8}{'p95':>8}"]
    incidents = []
    for item in report:
        last = item.last_check
        last_text = "never"
        if last is not None:
            last_text = (
                f"{'ok' if last.ok else last.error_class or 'failed'} {_ago(last.checked_at, now)}"
            )
        rows.append(
            f"{item.route_id[:13]:<14}{item.state:<10}{last_text[:21]:<22}"
            f"{pct(item.uptime_24h):>7}{pct(item.uptime_7d):>8}{secs(item.p50_s):>8}{secs(item.p95_s):>8}"
        )
        if item.incident is not None:
            inc = item.incident
            incidents.append(
                f"• `{inc.route_id}` {inc.kind} since {_ago(inc.opened_at, now)}: {inc.last_error}"
            )
    text = "*Route health* (probes)\n```" + "\n".join(rows) + "```"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    blocks.append(
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Open incidents*\n" + ("\n".join(incidents) or "None."),
            },
        }
    )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"Probe spend over 7 days: ${probe_spend_7d:.2f}"}
            ],
        }
    )
    return blocks

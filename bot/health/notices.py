"""Which health events go out and when: one alert per incident, reminders, one recovery.

What was sent is recorded on the incident (alerted_at, reminded_at, alert_ts, recovery_posted,
acknowledged_by), so a restarted process neither repeats nor loses an alert; the AlertSink only
renders. The alert message itself is rewritten as its incidents change (acknowledged, changed
kind, recovered): its status changes, its diagnosis stays."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.health.events import (
    AlertLine,
    AlertSink,
    HealthEvent,
    Recovered,
    Reopened,
    RoutesDown,
    StillDown,
)
from routes.config import ProbeSettings
from storage.health import HealthLog
from storage.runlog import as_utc
from storage.tables import Incident

log = logging.getLogger(__name__)


def minutes_between(start: datetime, end: datetime) -> int:
    return max(1, round((as_utc(end) - as_utc(start)).total_seconds() / 60))


# An incident as one line of an alert: its route's facts, last success and suggested fallback.
LineMaker = Callable[[Incident], Awaitable[AlertLine]]


class Notices:
    def __init__(
        self,
        health: HealthLog,
        settings: ProbeSettings,
        alerts: AlertSink | None,
        line: LineMaker,
    ) -> None:
        self.health = health
        self.settings = settings
        self.alerts = alerts
        self.line = line

    @property
    def channel(self) -> str | None:
        return self.alerts.channel if self.alerts is not None else None

    async def _post(self, event: HealthEvent, thread: str | None = None) -> str | None:
        if self.alerts is None:
            log.warning("health event with nowhere to send it: %s", type(event).__name__)
            return None
        return await self.alerts.post(event, thread)

    async def in_thread(self, event: HealthEvent, incident: Incident) -> None:
        if incident.alert_ts:
            await self._post(event, incident.alert_ts)

    async def announce_new(self, now: datetime) -> None:
        """Alerts not yet posted (new this round, or not delivered last time): one message."""
        pending = [
            i for i in await asyncio.to_thread(self.health.open_incidents) if i.alerted_at is None
        ]
        if not pending:
            return
        lines = tuple([await self.line(i) for i in pending])
        ts = await self._post(RoutesDown(lines, now, self.settings.latency_slo_seconds))
        if ts is None and self.channel:
            return  # not delivered: retried next round, nothing is marked sent
        for incident in pending:
            incident.alerted_at = now
            incident.reminded_at = now
            incident.alert_channel = self.channel if ts else None
            incident.alert_ts = ts
        await asyncio.to_thread(self.health.save, pending)

    async def remind(self, now: datetime) -> None:
        every = timedelta(minutes=self.settings.repeat_alert_minutes)
        groups: dict[str, list[Incident]] = {}
        for incident in await asyncio.to_thread(self.health.open_incidents):
            if (
                incident.alert_ts
                and incident.acknowledged_at is None  # someone took it: no more reminders
                and incident.reminded_at
                and now - as_utc(incident.reminded_at) >= every
            ):
                groups.setdefault(incident.alert_ts, []).append(incident)
        for thread, incidents in groups.items():
            if await self._post(StillDown(tuple(incidents), now), thread):
                for incident in incidents:
                    incident.reminded_at = now
                await asyncio.to_thread(self.health.save, incidents)

    async def recoveries(self, now: datetime) -> None:
        done: list[Incident] = []
        for incident in await asyncio.to_thread(self.health.unannounced_recoveries):
            if not incident.alert_ts:
                incident.recovery_posted = True  # never announced: nothing to take back
                done.append(incident)
                continue
            minutes = minutes_between(incident.opened_at, incident.resolved_at or now)
            if await self._post(Recovered(incident, minutes), incident.alert_ts):
                incident.recovery_posted = True
                done.append(incident)
        if done:
            await asyncio.to_thread(self.health.save, done)
            for ts in dict.fromkeys(i.alert_ts for i in done if i.alert_ts):
                await self.restate(_first(done, ts), now)

    async def reopened(self, incident: Incident, now: datetime) -> None:
        await self.in_thread(Reopened(incident), incident)
        await self.restate(incident, now)

    async def restate(self, incident: Incident, now: datetime) -> None:
        """Rewrite the alert message `incident` was announced in to its current state: every
        route it names, each with its status (open, acknowledged, recovered) and diagnosis."""
        if self.alerts is None or not incident.alert_channel or not incident.alert_ts:
            return
        group = await asyncio.to_thread(self.health.alert_group, incident.alert_ts)
        by_id = {i.id: i for i in group}
        by_id[incident.id] = incident  # the caller's copy may be newer than the stored one
        lines = tuple([await self.line(i) for i in by_id.values()])
        event = RoutesDown(lines, now, self.settings.latency_slo_seconds)
        await self.alerts.restate(incident.alert_channel, incident.alert_ts, event)

    async def acknowledge(self, incident: Incident, user: str, now: datetime) -> Incident:
        """Record who took the incident (reminders stop) and show it on the alert."""
        if incident.acknowledged_at is None:
            incident.acknowledged_by = user
            incident.acknowledged_at = now
            await asyncio.to_thread(self.health.save, [incident])
        await self.restate(incident, now)
        return incident


def _first(incidents: list[Incident], alert_ts: str) -> Incident:
    return next(i for i in incidents if i.alert_ts == alert_ts)

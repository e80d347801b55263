"""Which health events go out and when: one alert per incident, reminders, one recovery.

What was sent is recorded on the incident (alerted_at, reminded_at, alert_ts, recovery_posted),
so a restarted process neither repeats nor loses an alert; the AlertSink only renders."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
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


class Notices:
    def __init__(
        self,
        health: HealthLog,
        settings: ProbeSettings,
        alerts: AlertSink | None,
        board: Callable[[str], str | None],
    ) -> None:
        self.health = health
        self.settings = settings
        self.alerts = alerts
        self.board = board

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
        lines = tuple(
            [
                AlertLine(
                    i,
                    self.board(i.route_id),
                    await asyncio.to_thread(self.health.last_success, i.route_id),
                )
                for i in pending
            ]
        )
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
            for incident in done:
                if incident.alert_ts:
                    await self.restate(incident, now, resolved=True)

    async def reopened(self, incident: Incident, now: datetime) -> None:
        await self.in_thread(Reopened(incident), incident)
        await self.restate(incident, now, resolved=False)

    async def restate(self, incident: Incident, now: datetime, *, resolved: bool) -> None:
        """The alert message shows the incident's current state; grouped alerts read resolved
        once every route in them has recovered."""
        if self.alerts is None or not incident.alert_channel or not incident.alert_ts:
            return
        group = [
            i
            for i in await asyncio.to_thread(self.health.open_incidents)
            if i.alert_ts == incident.alert_ts
        ]
        if group and resolved:
            return
        event: RoutesDown | Recovered
        if resolved:
            minutes = minutes_between(incident.opened_at, incident.resolved_at or now)
            event = Recovered(incident, minutes)
        else:
            line = AlertLine(incident, self.board(incident.route_id), None)
            event = RoutesDown((line,), now, self.settings.latency_slo_seconds)
        await self.alerts.restate(incident.alert_channel, incident.alert_ts, event)

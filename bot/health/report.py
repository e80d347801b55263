"""Each route's health as it reads now: state, last check, uptime and latency percentiles."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.health.states import State, decide
from routes.config import ProbeSettings
from routes.executor import RouteExecutor
from storage.health import HealthLog, latency_percentiles
from storage.tables import HealthCheck, Incident


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


async def route_states(
    health: HealthLog, executors: Mapping[str, RouteExecutor], settings: ProbeSettings
) -> dict[str, State]:
    """Route id -> healthy | failing | degraded | unknown (never checked) | off.

    Read through the state machine, not only from open incidents: a route whose latest checks
    (probes or failed real runs) already cross the threshold is failing now, before the next
    probe round opens its incident and alerts."""
    open_by_route = {i.route_id: i for i in await asyncio.to_thread(health.open_incidents)}
    states: dict[str, State] = {}
    for rid, executor in executors.items():
        incident = open_by_route.get(rid)
        if incident is not None:
            states[rid] = "degraded" if incident.kind == "degraded" else "failing"
            continue
        checks = await asyncio.to_thread(health.recent, rid, 20)
        opening = decide(checks, settings, None).open
        if opening is not None:
            states[rid] = opening
        elif executor.route.config.probe == "off":
            states[rid] = "off"
        else:
            states[rid] = "healthy" if checks else "unknown"
    return states


async def health_report(
    health: HealthLog,
    executors: Mapping[str, RouteExecutor],
    now: datetime,
    settings: ProbeSettings,
) -> list[RouteHealth]:
    states = await route_states(health, executors, settings)
    open_by_route = {i.route_id: i for i in await asyncio.to_thread(health.open_incidents)}
    out = []
    for rid in executors:
        last = await asyncio.to_thread(health.recent, rid, 1)
        up24, lat24 = await asyncio.to_thread(health.window, rid, now - timedelta(hours=24))
        up7 = await asyncio.to_thread(health.uptime, rid, now - timedelta(days=7))
        p50, p95 = latency_percentiles(lat24)
        out.append(
            RouteHealth(
                route_id=rid,
                state=states[rid],
                last_check=last[0] if last else None,
                uptime_24h=up24,
                uptime_7d=up7,
                p50_s=p50,
                p95_s=p95,
                incident=open_by_route.get(rid),
            )
        )
    return out

"""Health checks and incidents: what the prober and real runs observed, and what was alerted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.runlog import Spend, as_utc, percentile
from storage.tables import HealthCheck, Incident

# Errors of a real run that say something about the route, not about the request.
PASSIVE_ERROR_CLASSES = frozenset(
    {"auth", "quota", "rate_limit", "timeout", "provider_down", "model_retired"}
)


# A generate probe that made an image whose cost is unknown: counted, never added as $0.
_PROBE_UNPRICED = sa.and_(
    col(HealthCheck.probe_kind) == "generate",
    col(HealthCheck.ok).is_(True),
    col(HealthCheck.cost_usd).is_(None),
)


def _probe_spend() -> tuple[sa.ColumnElement[Any], ...]:
    """Probes' known USD, priced probes, and probes that made an image of unknown cost."""
    return (
        sa.func.coalesce(sa.func.sum(HealthCheck.cost_usd), 0.0),
        sa.func.count(col(HealthCheck.cost_usd)),
        sa.func.coalesce(sa.func.sum(sa.case((_PROBE_UNPRICED, 1), else_=0)), 0),
    )


class HealthLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- checks --------------------------------------------------------------------------
    def record(self, check: HealthCheck) -> HealthCheck:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(check)
            session.commit()
            return check

    def recent(self, route_id: str, limit: int = 20) -> list[HealthCheck]:
        """Newest first."""
        with Session(self.engine, expire_on_commit=False) as session:
            query = (
                select(HealthCheck)
                .where(HealthCheck.route_id == route_id)
                .order_by(col(HealthCheck.checked_at).desc(), col(HealthCheck.id).desc())
                .limit(limit)
            )
            return list(session.exec(query).all())

    def last_success(self, route_id: str) -> datetime | None:
        with Session(self.engine) as session:
            query = select(sa.func.max(HealthCheck.checked_at)).where(
                HealthCheck.route_id == route_id, col(HealthCheck.ok).is_(True)
            )
            value = session.exec(query).one()
            return as_utc(value) if value is not None else None

    def window(self, route_id: str, since: datetime) -> tuple[float | None, list[float]]:
        """Uptime (share of successful probes) and the successful probes' latencies since
        `since` (for percentiles: keep the window short, a day say)."""
        with Session(self.engine) as session:
            query = select(HealthCheck.latency_s).where(
                *self._probes(route_id, since),
                col(HealthCheck.ok).is_(True),
                col(HealthCheck.latency_s).is_not(None),
            )
            latencies = [float(lat) for lat in session.exec(query).all() if lat is not None]
        return self.uptime(route_id, since), latencies

    def uptime(self, route_id: str, since: datetime) -> float | None:
        """The share of successful probes since `since`, counted in the database."""
        with Session(self.engine) as session:
            query = select(
                sa.func.count(), sa.func.sum(sa.case((col(HealthCheck.ok).is_(True), 1), else_=0))
            ).where(*self._probes(route_id, since))
            total, good = session.exec(query).one()
        return int(good or 0) / total if total else None

    @staticmethod
    def _probes(route_id: str, since: datetime) -> tuple[Any, ...]:
        return (
            HealthCheck.route_id == route_id,
            HealthCheck.source == "probe",
            col(HealthCheck.checked_at) >= since,
        )

    def probe_spend_counted(self, since: datetime) -> Spend:
        """Known spend of generate probes since `since`, all routes together, and how many
        made an image whose cost is unknown (never added as $0)."""
        query = sa.select(*_probe_spend()).where(
            col(HealthCheck.checked_at) >= since, col(HealthCheck.source) == "probe"
        )
        with self.engine.connect() as conn:
            known, priced, missing = conn.execute(query).one()
        return Spend(
            known_usd=round(float(known or 0.0), 6),
            priced_runs=int(priced or 0),
            unpriced_runs=int(missing or 0),
            unpriced_images=int(missing or 0),
        )

    def probe_spend_query(self, since: datetime, *, route_ids: Sequence[str]) -> sa.Select[Any]:
        """The figures `probe_spend_counted` reads, per route of `route_ids`, in the columns of
        a run spend query (route_id, known USD, priced, unpriced runs, unpriced images), for a
        spend check to read with others in one round trip."""
        known, priced, missing = _probe_spend()
        query: sa.Select[Any] = (
            sa.select(col(HealthCheck.route_id), known, priced, missing, missing)
            .where(
                col(HealthCheck.checked_at) >= since,
                col(HealthCheck.source) == "probe",
                col(HealthCheck.route_id).in_(route_ids),
            )
            .group_by(col(HealthCheck.route_id))
        )
        return query

    # -- incidents -----------------------------------------------------------------------
    def open_incidents(self) -> list[Incident]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = (
                select(Incident)
                .where(col(Incident.resolved_at).is_(None))
                .order_by(col(Incident.id))
            )
            return list(session.exec(query).all())

    def unannounced_recoveries(self) -> list[Incident]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(Incident).where(
                col(Incident.resolved_at).is_not(None),
                col(Incident.recovery_posted).is_(False),
            )
            return list(session.exec(query).all())

    def latest_resolved(self, route_id: str) -> Incident | None:
        with Session(self.engine, expire_on_commit=False) as session:
            query = (
                select(Incident)
                .where(Incident.route_id == route_id, col(Incident.resolved_at).is_not(None))
                .order_by(col(Incident.resolved_at).desc())
                .limit(1)
            )
            return session.exec(query).first()

    def incident(self, incident_id: int) -> Incident | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Incident, incident_id)

    def alert_group(self, alert_ts: str) -> list[Incident]:
        """Every incident one alert message speaks for (open or resolved), oldest first."""
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(Incident).where(Incident.alert_ts == alert_ts).order_by(col(Incident.id))
            return list(session.exec(query).all())

    def save(self, incidents: Sequence[Incident]) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            for incident in incidents:
                session.add(incident)
            session.commit()
            for incident in incidents:
                session.refresh(incident)


def latency_percentiles(latencies: Sequence[float]) -> tuple[float | None, float | None]:
    return percentile(latencies, 50), percentile(latencies, 95)

"""Spend reservations: the expected cost of calls in flight, admitted one at a time.

Admission (read what is spent and reserved, compare with the caps, add this call's
reservation) must not interleave between requests, or thirty requests read the same "spent so
far" and all pass a cap that fits five. `admitting()` serialises it across every process on
the database: PostgreSQL takes a transaction-scoped advisory lock, SQLite a write transaction
from the start (`BEGIN IMMEDIATE`). The caps themselves are the spend policy's (bot.core.spend).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col

from storage.tables import Run, SpendReservation, Worker, utcnow

# An arbitrary, fixed 64-bit key: "imageroute spend".
SPEND_LOCK_KEY = 0x696D_6167_7370_6E64

_reservations = SpendReservation.__table__  # type: ignore[attr-defined]
_runs = Run.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Hold:
    """One reservation to add: a call on `route_id` expected to cost `usd`."""

    route_id: str
    usd: float
    slack_user: str | None = None
    request_key: str | None = None


class Reservations:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    @contextlib.contextmanager
    def admitting(self) -> Iterator[Connection]:
        """A transaction no other admission runs beside, on any process; committed on exit.

        Reads made on other connections inside it see every earlier admission (each one has
        committed before the next could start)."""
        if self.postgres:
            with self.engine.begin() as conn:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SPEND_LOCK_KEY})
                yield conn
            return
        # pysqlite starts transactions lazily and DEFERRED; BEGIN IMMEDIATE takes the write
        # lock first, so a second admission waits here (busy_timeout) rather than reading the
        # same totals.
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")

    def reserved(self, conn: Connection, since: datetime) -> dict[str, float]:
        """USD held per route by reservations made since `since`."""
        return {rid: float(usd or 0.0) for rid, usd, *_ in conn.execute(self.held_query(since))}

    def held_query(
        self,
        since: datetime,
        *,
        route_ids: Sequence[str] | None = None,
        slack_user: str | None = None,
    ) -> sa.Select[Any]:
        """The statement `reserved` runs, in the columns of a run spend query (route_id, USD
        held, then zeros), for a spend check to read with others in one round trip."""
        zero: sa.ColumnElement[int] = sa.literal_column("0")
        query = (
            sa.select(
                _reservations.c.route_id,
                sa.func.coalesce(sa.func.sum(_reservations.c.usd), 0.0),
                zero,
                zero,
                zero,
            )
            .where(_reservations.c.created_at >= since)
            .group_by(_reservations.c.route_id)
        )
        if route_ids is not None:
            query = query.where(_reservations.c.route_id.in_(route_ids))
        if slack_user is not None:
            query = query.where(_reservations.c.slack_user == slack_user)
        return query

    def taken(self, conn: Connection, keys: Sequence[str]) -> list[str]:
        """Which of these request keys a reservation or a run already holds."""
        if not keys:
            return []
        held = conn.execute(
            sa.select(_reservations.c.request_key).where(_reservations.c.request_key.in_(keys))
        ).scalars()
        ran = conn.execute(sa.select(_runs.c.request_key).where(_runs.c.request_key.in_(keys)))
        return sorted({*held, *ran.scalars()})

    def add(self, conn: Connection, worker_id: str, holds: Iterable[Hold]) -> list[int]:
        ids = []
        for hold in holds:
            result = conn.execute(
                sa.insert(_reservations).values(
                    worker_id=worker_id,
                    route_id=hold.route_id,
                    slack_user=hold.slack_user,
                    usd=hold.usd,
                    request_key=hold.request_key,
                    created_at=utcnow(),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            ids.append(int(key[0]))
        return ids

    def release(self, ids: Iterable[int]) -> None:
        """Drop reservations whose runs have ended (their real cost is in the run log now)."""
        wanted = list(ids)
        if not wanted:
            return
        with self.engine.begin() as conn:
            conn.execute(sa.delete(_reservations).where(_reservations.c.id.in_(wanted)))

    def release_dead(self, cutoff: datetime) -> int:
        """Drop reservations of processes that stopped heart-beating before `cutoff`: a crashed
        process never releases its own, and they would hold the cap until midnight."""
        live = sa.select(col(Worker.id)).where(col(Worker.seen_at) >= cutoff)
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(_reservations).where(_reservations.c.worker_id.not_in(live))
            )
        return int(result.rowcount or 0)

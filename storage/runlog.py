"""The run log: write a run as pending before the provider call, finish it after, read it back.

Synchronous on purpose (SQLAlchemy sessions); the bot calls it from worker threads.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from cachetools import TTLCache
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, SQLModel, col, select

from storage.assets import StoredAsset
from storage.tables import (
    RouteDay,
    Run,
    RunAsset,
    RunAttempt,
    Verdict,
    ViewerDay,
    ViewerVerdict,
    Worker,
    utcnow,
)

# A condition on the runs table narrowing a read to what one viewer may see (the rule is
# bot.core.visibility's; storage only applies it).
Visible = ColumnElement[bool] | None


@dataclass(frozen=True)
class Seen:
    """The runs one viewer may see, as storage reads them: one Slack user's (anywhere) and one
    conversation's (bot.core.visibility says who sees what). Reads given a Seen count from the
    per-user and per-channel rollups (`viewer_days`) instead of the runs."""

    user: str | None = None
    channel: str | None = None

    def clause(self) -> ColumnElement[bool]:
        conditions = []
        if self.user:
            conditions.append(col(Run.slack_user) == self.user)
        if self.channel:
            conditions.append(col(Run.slack_channel) == self.channel)
        return sa.or_(*conditions) if conditions else sa.false()

    def scopes(self) -> list[tuple[str, str, int]]:
        """(scope, key, sign) of the viewer_days rows that add up to these runs: the user's
        plus the channel's, minus the user's runs in that channel (counted in both)."""
        out = []
        if self.user:
            out.append(("user", self.user, 1))
        if self.channel:
            out.append(("channel", self.channel, 1))
        if self.user and self.channel:
            out.append(("user_channel", f"{self.user}|{self.channel}", -1))
        return out


def in_scopes(table: Any, seen: Seen) -> tuple[ColumnElement[bool], Any]:
    """(which rows, their sign) of a per-viewer rollup table (viewer_days, viewer_checks,
    viewer_verdicts) that add up to what `seen` may see."""
    scopes = seen.scopes()
    which = sa.or_(
        *(sa.and_(table.scope == scope, table.key == key) for scope, key, _sign in scopes)
    )
    sign = sa.case(*((table.scope == scope, factor) for scope, _key, factor in scopes), else_=0)
    return which, sign


def as_clause(visible: Visible | Seen) -> Visible:
    return visible.clause() if isinstance(visible, Seen) else visible


def latest_seen_runs(
    engine: Engine, seen: Seen, route_id: str, since: datetime | None, limit: int
) -> list[tuple[str, float | None, float | None]]:
    """(status, latency, cost) of the route's latest `limit` runs one viewer may see, newest
    first: the channel's latest, and the user's latest outside that channel, each read from its
    own route-and-time index alone (they carry these columns), merged."""
    found: list[tuple[Any, ...]] = []
    with engine.connect() as conn:
        for column, value in ((Run.slack_channel, seen.channel), (Run.slack_user, seen.user)):
            if not value:
                continue
            query = (
                sa.select(
                    col(Run.created_at), col(Run.status), col(Run.latency_s), col(Run.cost_usd)
                )
                .where(col(column) == value, col(Run.route_id) == route_id)
                .order_by(col(Run.created_at).desc())
                .limit(limit)
            )
            if column is Run.slack_user and seen.channel:  # the channel's are counted above
                query = query.where(
                    sa.or_(col(Run.slack_channel).is_(None), col(Run.slack_channel) != seen.channel)
                )
            if since is not None:
                query = query.where(col(Run.created_at) >= since)
            found += [tuple(row) for row in conn.execute(query)]
    newest = sorted(found, key=lambda r: as_utc(r[0]), reverse=True)
    return [(r[1], r[2], r[3]) for r in newest[:limit]]


class DuplicateRequest(Exception):
    """A run with this request key exists already (a retried Slack request or a double click)."""

    def __init__(self, run_id: int | None) -> None:
        super().__init__(
            f"run {run_id} already serves this request"
            if run_id is not None
            else "this request was admitted already"
        )
        self.run_id = run_id


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Spend:
    """Spend over a set of runs: the known total and how many runs had no price. A run whose
    cost is unknown is counted here, never added as $0."""

    known_usd: float = 0.0
    priced_runs: int = 0
    unpriced_runs: int = 0
    unpriced_images: int = 0

    @property
    def complete(self) -> bool:
        return self.unpriced_runs == 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            known_usd=round(self.known_usd + other.known_usd, 6),
            priced_runs=self.priced_runs + other.priced_runs,
            unpriced_runs=self.unpriced_runs + other.unpriced_runs,
            unpriced_images=self.unpriced_images + other.unpriced_images,
        )


# A run the provider billed (it made images, or a billed task was accepted) whose cost is not
# known; a task that made nothing counts the images it was asked for.
_UNPRICED = sa.and_(
    col(Run.cost_usd).is_(None), sa.or_(col(Run.images) > 0, col(Run.task_id).is_not(None))
)
_UNPRICED_IMAGES = sa.case((col(Run.images) > 0, Run.images), else_=Run.n)
FINISHED = ("succeeded", "failed")
# Latency percentiles and the median cost are taken over each route's latest runs: a bounded
# window that says how the route behaves now, however long the history is.
RECENT_RUNS = 1000
# Another process's runs reach this process's cached all-time figures within this many seconds.
RECENT_TTL_S = 60.0


@dataclass(frozen=True)
class RouteStats:
    """Per-route figures from the run log, as plain values (the advisor and Slack read them)."""

    route_id: str
    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    p50_latency_s: float | None
    p95_latency_s: float | None
    median_cost_usd: float | None
    spend_usd: float  # the known total; runs without a price are in unpriced_runs
    unpriced_runs: int = 0
    # How many finished runs the percentiles and the median cost were taken over: the route's
    # latest RECENT_RUNS runs in the window, not its whole history.
    recent_runs: int = 0


@dataclass(frozen=True)
class RecentFigures:
    """Latency percentiles and median cost over a route's latest runs."""

    runs: int
    p50_latency_s: float | None
    p95_latency_s: float | None
    median_cost_usd: float | None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _recent(rows: Iterable[tuple[str, float | None, float | None]]) -> RecentFigures:
    """Percentiles and median cost from a route's latest runs' (status, latency, cost)."""
    finished = [(status, lat, cost) for status, lat, cost in rows if status in FINISHED]
    ok = [(lat, cost) for status, lat, cost in finished if status == "succeeded"]
    latencies = [lat for lat, _ in ok if lat is not None]
    costs = [cost for _, cost in ok if cost is not None]
    return RecentFigures(
        runs=len(finished),
        p50_latency_s=percentile(latencies, 50),
        p95_latency_s=percentile(latencies, 95),
        median_cost_usd=statistics.median(costs) if costs else None,
    )


_NO_FIGURES = RecentFigures(runs=0, p50_latency_s=None, p95_latency_s=None, median_cost_usd=None)


def _spend_query(
    key: Any,
    since: datetime,
    *,
    route_ids: Sequence[str] | None = None,
    slack_user: str | None = None,
) -> sa.Select[Any]:
    """(key, known USD, priced runs, unpriced runs, unpriced images) per `key` since `since`,
    of these routes' runs or one Slack user's when given."""
    unpriced = sa.case((_UNPRICED, 1), else_=0)
    query = (
        select(  # type: ignore[call-overload]
            key,
            sa.func.coalesce(sa.func.sum(Run.cost_usd), 0.0),
            sa.func.count(col(Run.cost_usd)),
            sa.func.coalesce(sa.func.sum(unpriced), 0),
            sa.func.coalesce(sa.func.sum(sa.case((_UNPRICED, _UNPRICED_IMAGES), else_=0)), 0),
        )
        .where(Run.created_at >= since)
        .group_by(key)
    )
    if slack_user:
        query = query.where(Run.slack_user == slack_user)
    if route_ids is not None:
        query = query.where(col(Run.route_id).in_(route_ids))
    return query  # type: ignore[no-any-return]


def spend_of(known: Any, priced: Any, runs: Any, images: Any) -> Spend:
    """A Spend from the columns of a spend query (NULL read as nothing)."""
    return Spend(
        known_usd=round(float(known or 0.0), 6),
        priced_runs=int(priced or 0),
        unpriced_runs=int(runs or 0),
        unpriced_images=int(images or 0),
    )


def spend_rows(conn: sa.Connection, parts: Sequence[sa.Select[Any]]) -> list[list[tuple[Any, ...]]]:
    """The rows of several spend queries (the run log's, probes', reservations': the same five
    columns) read in one statement, so one round trip and one moment of the database; each
    query's rows in order."""
    if not parts:
        return []
    tagged = [
        part.add_columns(sa.literal_column(str(i)).label("part")) for i, part in enumerate(parts)
    ]
    statement = tagged[0] if len(tagged) == 1 else sa.union_all(*tagged)
    out: list[list[tuple[Any, ...]]] = [[] for _ in parts]
    for row in conn.execute(statement):
        out[int(row[-1])].append(tuple(row[:-1]))
    return out


# Per route: finished runs, succeeded, failed, known spend, unpriced runs.
Totals = dict[str, tuple[int, int, int, float, int]]


def _totals(rows: Iterable[Any]) -> Totals:
    """Totals from rows of (route_id, runs, succeeded, failed, spend, unpriced)."""
    return {
        rid: (int(runs), int(ok), int(failed), float(spend or 0.0), int(unpriced))
        for rid, runs, ok, failed, spend, unpriced in rows
    }


def _add(totals: Totals, route_id: str, more: tuple[int, int, int, float, int]) -> None:
    before = totals.get(route_id, (0, 0, 0, 0.0, 0))
    totals[route_id] = (
        before[0] + more[0],
        before[1] + more[1],
        before[2] + more[2],
        before[3] + more[3],
        before[4] + more[4],
    )


def _route_stats(
    route_id: str,
    runs: int,
    ok: int,
    failed: int,
    spend: float,
    unpriced: int,
    recent: RecentFigures,
) -> RouteStats:
    """A route's figures: counts and spend from the rollups, the rest from its latest runs."""
    return RouteStats(
        route_id=route_id,
        runs=runs,
        succeeded=ok,
        failed=failed,
        success_rate=ok / runs if runs else None,
        p50_latency_s=recent.p50_latency_s,
        p95_latency_s=recent.p95_latency_s,
        median_cost_usd=recent.median_cost_usd,
        spend_usd=round(spend, 6),
        unpriced_runs=unpriced,
        recent_runs=recent.runs,
    )


class RunLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # All-time recent figures per route: worker threads read and write it concurrently.
        self._recent: TTLCache[str, RecentFigures] = TTLCache(maxsize=1024, ttl=RECENT_TTL_S)
        self._recent_lock = threading.Lock()

    # -- writing ------------------------------------------------------------------------------
    def start(self, run: Run) -> Run:
        """Insert a pending run. Raises DuplicateRequest if its request_key was seen before."""
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(run)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                if run.request_key is None:
                    raise
                existing = session.exec(
                    select(Run.id).where(Run.request_key == run.request_key)
                ).first()
                if existing is None:
                    raise
                raise DuplicateRequest(existing) from None
            session.refresh(run)
            return run

    def update(self, run_id: int, **fields: Any) -> Run:
        with Session(self.engine, expire_on_commit=False) as session:
            run = session.get(Run, run_id)
            if run is None:
                raise KeyError(run_id)
            for key, value in fields.items():
                setattr(run, key, value)
            session.add(run)
            session.commit()
            session.refresh(run)
        self._forget_recent(run.route_id)
        return run

    def finish(self, run_id: int, status: str, **fields: Any) -> Run:
        return self.update(run_id, status=status, finished_at=utcnow(), **fields)

    def complete(
        self,
        run_id: int,
        finish: dict[str, Any] | None,
        attempts: Iterable[dict[str, Any]] = (),
        outputs: Sequence[tuple[int, StoredAsset]] = (),
    ) -> Run | None:
        """A run's end in one transaction: its final fields (`finish`, with `status`), its
        attempts and its output assets (by position). Safe to repeat: `finish` and the attempts
        are applied only while the run is still pending (or was marked interrupted while its
        result waited in the spool), and an output replaces any row at its position. Returns
        the run, or None when it is not in the log."""
        with Session(self.engine, expire_on_commit=False) as session:
            run = session.get(Run, run_id)
            if run is None:
                return None
            if finish is not None and run.status in ("pending", "interrupted"):
                for key, value in {"finished_at": utcnow(), **finish}.items():
                    setattr(run, key, value)
                session.add(run)
                for attempt in attempts:
                    session.add(RunAttempt(run_id=run_id, **attempt))
            for position, stored in outputs:
                session.execute(
                    sa.delete(RunAsset).where(
                        col(RunAsset.run_id) == run_id,
                        col(RunAsset.role) == "output",
                        col(RunAsset.position) == position,
                    )
                )
                session.add(_asset_row(run_id, stored, "output", position))
            session.commit()
            session.refresh(run)
            return run

    def record_task(
        self,
        run_id: int,
        task_id: str,
        *,
        polling_url: str | None,
        submitted_at: datetime,
        expires_at: datetime | None,
    ) -> Run:
        """Keep the provider task a billed submit created, the moment it is accepted."""
        return self.update(
            run_id,
            task_id=task_id,
            task_polling_url=polling_url,
            task_submitted_at=submitted_at,
            task_expires_at=expires_at,
        )

    def collectable_tasks(self, now: datetime | None = None) -> list[Run]:
        """Runs left pending or interrupted (a restart) whose billed task was accepted and
        whose result the provider still keeps: collect them rather than lose them."""
        now = now or utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            query = (
                select(Run)
                .where(col(Run.status).in_(("pending", "interrupted")))
                .where(col(Run.task_id).is_not(None))
                .where(sa.or_(col(Run.task_expires_at).is_(None), col(Run.task_expires_at) > now))
            )
            # Sorted here, not in SQL: ordered by id, SQLite would walk the whole log in id
            # order rather than seek the few unfinished runs through the status index.
            return sorted(session.exec(query).all(), key=lambda run: run.id or 0)

    def reclaim(self, run_id: int, worker_id: str) -> Run | None:
        """Take over an interrupted run to finish it (collecting its billed task): the run is
        pending again under `worker_id`. None when it is not interrupted any more (another
        process took it first), so a task is collected by one process only."""
        with Session(self.engine, expire_on_commit=False) as session:
            taken = session.execute(
                sa.update(Run)
                .where(col(Run.id) == run_id, col(Run.status) == "interrupted")
                .values(
                    status="pending",
                    worker_id=worker_id,
                    finished_at=None,
                    error_class=None,
                    error_message=None,
                )
            )
            session.commit()
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return session.get(Run, run_id)

    def add_attempts(self, run_id: int, attempts: Iterable[dict[str, Any]]) -> None:
        with Session(self.engine) as session:
            for attempt in attempts:
                session.add(RunAttempt(run_id=run_id, **attempt))
            session.commit()

    def add_asset(self, run_id: int, stored: StoredAsset, role: str, position: int) -> RunAsset:
        asset = _asset_row(run_id, stored, role, position)
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(asset)
            session.commit()
            session.refresh(asset)
            return asset

    # -- reading ------------------------------------------------------------------------------
    def get(self, run_id: int) -> Run | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Run, run_id)

    def assets(self, run_id: int, role: str | None = None) -> list[RunAsset]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(RunAsset).where(RunAsset.run_id == run_id)
            if role:
                query = query.where(RunAsset.role == role)
            return list(session.exec(query.order_by(col(RunAsset.position))).all())

    def attempts(self, run_id: int) -> list[RunAttempt]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(RunAttempt).where(RunAttempt.run_id == run_id)
            return list(session.exec(query.order_by(col(RunAttempt.number))).all())

    def recent(
        self,
        limit: int = 20,
        *,
        route_id: str | None = None,
        group_id: str | None = None,
        bench_id: str | None = None,
        slack_user: str | None = None,
        status: str | None = None,
        visible: Visible | Seen = None,
    ) -> list[Run]:
        """The latest runs; `visible` (a condition on runs, bot.core.visibility) narrows them
        to what one viewer may see."""
        visible = as_clause(visible)
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(Run)
            if visible is not None:
                query = query.where(visible)
            if route_id:
                query = query.where(Run.route_id == route_id)
            if slack_user:
                query = query.where(Run.slack_user == slack_user)
            if status:
                query = query.where(Run.status == status)
            if group_id:
                query = query.where(Run.group_id == group_id)
            if bench_id:
                query = query.where(Run.bench_id == bench_id)
            # Newest first by time (ids follow it): each filter's index (user, route, status
            # with time) then reads just `limit` entries, not every run of the user or route.
            query = query.order_by(col(Run.created_at).desc(), col(Run.id).desc()).limit(limit)
            return list(session.exec(query).all())

    def iter_all(self, *, bench_id: str | None = None, batch: int = 1000) -> Iterable[Run]:
        """Every run, oldest first, in batches (exports of large logs stay small in memory)."""
        for rows in self.batches(bench_id=bench_id, size=batch):
            yield from rows

    def batches(self, *, bench_id: str | None = None, size: int = 1000) -> Iterator[list[Run]]:
        """Every run, oldest first, `size` at a time: one keyset query per batch, each in its
        own short transaction, so a long export never holds a read snapshot open."""
        last = 0
        while True:
            with Session(self.engine, expire_on_commit=False) as session:
                query = select(Run).where(col(Run.id) > last)
                if bench_id:
                    query = query.where(Run.bench_id == bench_id)
                rows = list(session.exec(query.order_by(col(Run.id)).limit(size)).all())
            if not rows:
                return
            yield rows
            last = rows[-1].id or last

    def row_batches(
        self, *, bench_id: str | None = None, size: int = 2000, json_text: bool = False
    ) -> Iterator[Sequence[sa.RowMapping]]:
        """Every run as plain column values, oldest first, `size` at a time: for readers of
        every column of many runs (exports), without building ORM objects. One keyset query
        per batch, each in its own short transaction. With `json_text`, JSON columns come as
        their stored JSON text (a CSV writes that text as it is: no decoding, no encoding)."""
        table = SQLModel.metadata.tables["runs"]
        columns = [
            sa.cast(c, sa.Text).label(c.name) if json_text and isinstance(c.type, sa.JSON) else c
            for c in table.c
        ]
        last = 0
        while True:
            query = sa.select(*columns).where(table.c.id > last)
            if bench_id:
                query = query.where(table.c.bench_id == bench_id)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(table.c.id).limit(size)).mappings().all()
            if not rows:
                return
            yield rows
            last = rows[-1]["id"]

    def output_files(self, run_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
        """(path, sha256) of each run's output assets in position order, by run id: one query
        for the whole batch."""
        if not run_ids:
            return {}
        table = SQLModel.metadata.tables["run_assets"]
        query = (
            sa.select(table.c.run_id, table.c.path, table.c.sha256)
            .where(table.c.run_id.in_(run_ids), table.c.role == "output")
            .order_by(table.c.run_id, table.c.position)
        )
        found: dict[int, list[tuple[str, str]]] = {}
        with self.engine.connect() as conn:
            for run_id, path, sha256 in conn.execute(query):
                found.setdefault(run_id, []).append((path, sha256))
        return found

    def route_stats(
        self,
        since: datetime | None = None,
        *,
        visible: Visible | Seen = None,
        percentiles: bool = True,
    ) -> dict[str, RouteStats]:
        """Per route over finished runs (succeeded or failed): runs, success rate and spend
        all time (from `route_days`, kept by the database) or since `since` (whole days from
        `route_days`, the first day's remainder from the runs); p50/p95 latency and the median
        cost over the route's latest RECENT_RUNS runs in the same window (left out with
        `percentiles=False` when only counts and spend are shown). No read grows with the
        length of the history.

        `visible` narrows every figure to the runs one viewer may see: given as a Seen, the
        counts come from `viewer_days` (the user's plus the channel's, minus their overlap)
        and the percentiles from each route's latest runs of the user and of the channel, so
        nothing grows with the history; given as any other condition on the runs, they are
        counted from the runs it selects."""
        if isinstance(visible, Seen):
            return self._seen_stats(since, visible, percentiles)
        if visible is not None:
            return self._visible_stats(since, visible, percentiles)
        totals = self._day_totals() if since is None else self._window_totals(since)
        stats: dict[str, RouteStats] = {}
        for route_id, (runs, ok, failed, spend, unpriced) in totals.items():
            recent = self._recent_figures(route_id, since) if percentiles else _NO_FIGURES
            stats[route_id] = _route_stats(route_id, runs, ok, failed, spend, unpriced, recent)
        return stats

    def _day_totals(self, from_day: date | None = None) -> Totals:
        with Session(self.engine) as session:
            query = (
                select(  # type: ignore[call-overload]
                    RouteDay.route_id,
                    sa.func.sum(RouteDay.runs),
                    sa.func.sum(RouteDay.succeeded),
                    sa.func.sum(RouteDay.failed),
                    sa.func.sum(RouteDay.spend_usd),
                    sa.func.sum(RouteDay.unpriced_runs),
                )
                .group_by(RouteDay.route_id)
                .having(sa.func.sum(RouteDay.runs) > 0)
            )
            if from_day is not None:
                query = query.where(col(RouteDay.day) >= from_day)
            rows = session.exec(query).all()
        return _totals(rows)

    def _window_totals(self, since: datetime) -> Totals:
        """Whole days after `since` from route_days; the runs of its own day after it from the
        run log (at most a day of runs, whatever the window)."""
        next_day = as_utc(since).date() + timedelta(days=1)
        boundary = datetime.combine(next_day, time.min, tzinfo=UTC)
        totals = self._day_totals(from_day=next_day)
        succeeded = col(Run.status) == "succeeded"
        with Session(self.engine) as session:
            query = (
                select(  # type: ignore[call-overload]
                    Run.route_id,
                    sa.func.count(),
                    sa.func.sum(sa.case((succeeded, 1), else_=0)),
                    sa.func.sum(
                        sa.case((succeeded, sa.func.coalesce(Run.cost_usd, 0.0)), else_=0.0)
                    ),
                    sa.func.sum(sa.case((_UNPRICED, 1), else_=0)),
                )
                .where(
                    col(Run.status).in_(FINISHED),
                    col(Run.created_at) >= since,
                    col(Run.created_at) < boundary,
                )
                .group_by(Run.route_id)
            )
            rows = session.exec(query).all()
        for rid, runs, ok, spend, unpriced in rows:
            runs, ok = int(runs), int(ok)
            _add(totals, rid, (runs, ok, runs - ok, float(spend or 0.0), int(unpriced)))
        return totals

    def _recent_figures(self, route_id: str, since: datetime | None) -> RecentFigures:
        """Latency percentiles and median cost over the route's latest RECENT_RUNS runs (since
        `since`); all-time figures are cached per route until a run of it changes here, or
        RECENT_TTL_S passes (another process's runs)."""
        if since is None:
            with self._recent_lock:
                cached = self._recent.get(route_id)
            if cached is not None:
                return cached
        with Session(self.engine) as session:
            query = select(Run.status, Run.latency_s, Run.cost_usd).where(Run.route_id == route_id)
            if since is not None:
                query = query.where(col(Run.created_at) >= since)
            query = query.order_by(col(Run.created_at).desc()).limit(RECENT_RUNS)
            rows = session.exec(query).all()
        figures = _recent(rows)
        if since is None:
            with self._recent_lock:
                self._recent[route_id] = figures
        return figures

    def _seen_stats(
        self, since: datetime | None, seen: Seen, percentiles: bool
    ) -> dict[str, RouteStats]:
        """route_stats() of what one viewer may see, from viewer_days (a window's first day
        from that day's runs) and each route's latest runs of the user and the channel."""
        if since is None:
            totals = self._viewer_day_totals(seen)
        else:
            next_day = as_utc(since).date() + timedelta(days=1)
            boundary = datetime.combine(next_day, time.min, tzinfo=UTC)
            totals = self._viewer_day_totals(seen, from_day=next_day)
            first_day = self._visible_stats(since, seen.clause(), False, until=boundary)
            for rid, s in first_day.items():
                _add(totals, rid, (s.runs, s.succeeded, s.failed, s.spend_usd, s.unpriced_runs))
        stats: dict[str, RouteStats] = {}
        for route_id, (runs, ok, failed, spend, unpriced) in totals.items():
            if runs <= 0:
                continue
            recent = (
                _recent(self.latest_seen(seen, route_id, since)) if percentiles else _NO_FIGURES
            )
            stats[route_id] = _route_stats(route_id, runs, ok, failed, spend, unpriced, recent)
        return stats

    def _viewer_day_totals(self, seen: Seen, from_day: date | None = None) -> Totals:
        if not seen.scopes():
            return {}
        which, sign = in_scopes(ViewerDay, seen)
        query = (
            sa.select(
                col(ViewerDay.route_id),
                sa.func.sum(sign * col(ViewerDay.runs)),
                sa.func.sum(sign * col(ViewerDay.succeeded)),
                sa.func.sum(sign * col(ViewerDay.failed)),
                sa.func.sum(sign * col(ViewerDay.spend_usd)),
                sa.func.sum(sign * col(ViewerDay.unpriced_runs)),
            )
            .where(which)
            .group_by(col(ViewerDay.route_id))
        )
        if from_day is not None:
            query = query.where(col(ViewerDay.day) >= from_day)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return _totals(rows)

    def latest_seen(
        self, seen: Seen, route_id: str, since: datetime | None = None, limit: int = RECENT_RUNS
    ) -> list[tuple[str, float | None, float | None]]:
        """(status, latency, cost) of the route's latest `limit` runs one viewer may see."""
        return latest_seen_runs(self.engine, seen, route_id, since, limit)

    def _visible_stats(
        self,
        since: datetime | None,
        visible: ColumnElement[bool],
        percentiles: bool,
        *,
        until: datetime | None = None,
    ) -> dict[str, RouteStats]:
        """route_stats() over the runs `visible` selects, counted in the database; the latest
        RECENT_RUNS of each route ranked there too, so at most that many rows per route reach
        Python."""
        succeeded = col(Run.status) == "succeeded"
        where = [col(Run.status).in_(FINISHED), visible]
        if since is not None:
            where.append(col(Run.created_at) >= since)
        if until is not None:
            where.append(col(Run.created_at) < until)
        totals = (
            select(  # type: ignore[call-overload]
                Run.route_id,
                sa.func.count(),
                sa.func.sum(sa.case((succeeded, 1), else_=0)),
                sa.func.sum(sa.case((succeeded, sa.func.coalesce(Run.cost_usd, 0.0)), else_=0.0)),
                sa.func.sum(sa.case((_UNPRICED, 1), else_=0)),
            )
            .where(*where)
            .group_by(Run.route_id)
        )
        latest: dict[str, list[tuple[str, float | None, float | None]]] = {}
        with Session(self.engine) as session:
            counted = session.exec(totals).all()
            if percentiles:
                rank = sa.func.row_number().over(
                    partition_by=col(Run.route_id), order_by=col(Run.created_at).desc()
                )
                ranked = (
                    sa.select(
                        col(Run.route_id),
                        col(Run.status),
                        col(Run.latency_s),
                        col(Run.cost_usd),
                        rank.label("rank"),
                    )
                    .where(*where)
                    .subquery()
                )
                query = sa.select(
                    ranked.c.route_id, ranked.c.status, ranked.c.latency_s, ranked.c.cost_usd
                ).where(ranked.c.rank <= RECENT_RUNS)
                for route_id, status, latency, cost in session.execute(query):
                    latest.setdefault(route_id, []).append((status, latency, cost))
        stats: dict[str, RouteStats] = {}
        for route_id, runs, ok, spend, unpriced in counted:
            recent = _recent(latest.get(route_id, [])) if percentiles else _NO_FIGURES
            runs, ok = int(runs), int(ok)
            stats[route_id] = _route_stats(
                route_id, runs, ok, runs - ok, float(spend or 0.0), int(unpriced), recent
            )
        return stats

    def _forget_recent(self, route_id: str) -> None:
        with self._recent_lock:
            self._recent.pop(route_id, None)

    def spend_by_route(
        self,
        since: datetime,
        *,
        route_id: str | None = None,
        slack_user: str | None = None,
    ) -> dict[str, Spend]:
        """Known spend and unpriced runs since `since`, per route (optionally one route's or
        one Slack user's runs only)."""
        routes = [route_id] if route_id else None
        return self._spend_grouped(Run.route_id, since, route_ids=routes, slack_user=slack_user)

    def spend(
        self,
        since: datetime,
        *,
        route_id: str | None = None,
        slack_user: str | None = None,
    ) -> Spend:
        """Known spend and unpriced runs since `since`, all routes together."""
        total = Spend()
        for part in self.spend_by_route(since, route_id=route_id, slack_user=slack_user).values():
            total = total + part
        return total

    def spend_by_billing_owner(
        self, since: datetime, *, visible: Visible | Seen = None
    ) -> dict[str, Spend]:
        """Known spend and unpriced runs since `since` per billing owner ('unknown' when the
        route named none)."""
        grouped = self._spend_grouped(Run.billing_owner, since, visible=as_clause(visible))
        return {(owner or "unknown"): spend for owner, spend in grouped.items()}

    def _spend_grouped(
        self,
        key: Any,
        since: datetime,
        *,
        route_ids: Sequence[str] | None = None,
        slack_user: str | None = None,
        visible: Visible = None,
    ) -> dict[Any, Spend]:
        query = _spend_query(key, since, route_ids=route_ids, slack_user=slack_user)
        if visible is not None:
            query = query.where(visible)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {
            group: spend_of(known, priced, runs, images)
            for group, known, priced, runs, images in rows
        }

    def spend_query(
        self,
        since: datetime,
        *,
        route_ids: Sequence[str] | None = None,
        slack_user: str | None = None,
    ) -> sa.Select[Any]:
        """The statement `spend_by_route` runs: (route_id, known USD, priced runs, unpriced runs,
        unpriced images) per route, of these routes or of one user's runs, for a spend check to
        read with others in one round trip."""
        return _spend_query(Run.route_id, since, route_ids=route_ids, slack_user=slack_user)

    # -- verdicts ------------------------------------------------------------------------------
    def set_verdict(self, run_id: int, survives: bool, judged_by: str) -> Verdict:
        """Record (or change) one person's verdict on a run; a second click does not double it."""
        with Session(self.engine, expire_on_commit=False) as session:
            verdict = session.exec(
                select(Verdict).where(Verdict.run_id == run_id, Verdict.judged_by == judged_by)
            ).first()
            if verdict is None:
                route_id = session.exec(select(Run.route_id).where(Run.id == run_id)).first()
                verdict = Verdict(
                    run_id=run_id, route_id=route_id, survives=survives, judged_by=judged_by
                )
            else:
                verdict.survives = survives
                verdict.judged_at = utcnow()
            session.add(verdict)
            try:
                session.commit()
            except IntegrityError:  # the same person's concurrent click won the race
                session.rollback()
                return self.set_verdict(run_id, survives, judged_by)
            session.refresh(verdict)
            return verdict

    def verdicts(self, run_id: int) -> list[Verdict]:
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.exec(select(Verdict).where(Verdict.run_id == run_id)).all())

    def verdict_counts(
        self,
        *,
        bench_id: str | None = None,
        since: datetime | None = None,
        visible: Visible | Seen = None,
    ) -> dict[str, tuple[int, int]]:
        """Per route: (survives, does not) over the runs selected, counted in the database
        (verdicts carry their run's route: only a benchmark's count, or a viewer's given as a
        condition, joins the runs; a viewer given as a Seen reads viewer_verdicts)."""
        if isinstance(visible, Seen) and bench_id is None and since is None:
            return self._seen_verdicts(visible)
        with Session(self.engine) as session:
            query = select(Verdict.route_id, Verdict.survives, sa.func.count()).group_by(
                col(Verdict.route_id), col(Verdict.survives)
            )
            visible = as_clause(visible)
            if visible is not None or bench_id:
                query = query.join(Run, col(Verdict.run_id) == col(Run.id))
            if visible is not None:
                query = query.where(visible)
            if bench_id:
                query = query.where(Run.bench_id == bench_id)
            if since is not None:
                query = query.where(Verdict.judged_at >= since)
            counts: dict[str, list[int]] = {}
            for route_id, survives, n in session.exec(query).all():
                if route_id is None:  # written before verdicts carried their route
                    continue
                pair = counts.setdefault(route_id, [0, 0])
                pair[0 if survives else 1] += int(n)
        return {k: (v[0], v[1]) for k, v in counts.items()}

    def _seen_verdicts(self, seen: Seen) -> dict[str, tuple[int, int]]:
        if not seen.scopes():
            return {}
        which, sign = in_scopes(ViewerVerdict, seen)
        query = (
            sa.select(
                col(ViewerVerdict.route_id),
                sa.func.sum(sign * col(ViewerVerdict.survived)),
                sa.func.sum(sign * col(ViewerVerdict.not_survived)),
            )
            .where(which)
            .group_by(col(ViewerVerdict.route_id))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {rid: (int(ok), int(no)) for rid, ok, no in rows if ok or no}

    # -- crash recovery -----------------------------------------------------------------------
    def heartbeat(self, worker_id: str, role: str) -> None:
        with Session(self.engine) as session:
            worker = session.get(Worker, worker_id)
            if worker is None:
                worker = Worker(id=worker_id, role=role)
            worker.seen_at = utcnow()
            session.add(worker)
            session.commit()

    def retire_worker(self, worker_id: str) -> None:
        with Session(self.engine) as session:
            session.execute(sa.delete(Worker).where(col(Worker.id) == worker_id))
            session.commit()

    def interrupt_orphans(self, live_worker: str, stale_after: timedelta) -> list[Run]:
        """Claim the pending runs of workers that stopped heart-beating and mark them
        interrupted; returns the runs this call claimed.

        A run belongs to a dead worker when that worker has no heartbeat newer than
        `stale_after`; runs of this process (`live_worker`) and of live replicas are left
        alone. Each run is claimed with a conditional update (`status = 'pending'`), so when
        several processes sweep at once every orphan is claimed, and so told about, once.
        """
        cutoff = utcnow() - stale_after
        with Session(self.engine, expire_on_commit=False) as session:
            live = set(session.exec(select(Worker.id).where(col(Worker.seen_at) >= cutoff)).all())
            live.add(live_worker)
            # In id order: two sweepers lock rows in the same order, so they cannot deadlock.
            pending = session.exec(
                select(Run.id, Run.worker_id).where(Run.status == "pending").order_by(col(Run.id))
            ).all()
            candidates = [
                run_id for run_id, worker in pending if worker not in live and run_id is not None
            ]
            claimed: list[int] = []
            for run_id in candidates:
                result = session.execute(
                    sa.update(Run)
                    .where(col(Run.id) == run_id, col(Run.status) == "pending")
                    .values(
                        status="interrupted",
                        finished_at=utcnow(),
                        error_class="interrupted",
                        error_message="the bot stopped before this run finished",
                    )
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    claimed.append(run_id)
            session.execute(sa.delete(Worker).where(col(Worker.seen_at) < cutoff))
            session.commit()
            if not claimed:
                return []
            rows = session.exec(select(Run).where(col(Run.id).in_(claimed)).order_by(col(Run.id)))
            return list(rows.all())


def _asset_row(run_id: int, stored: StoredAsset, role: str, position: int) -> RunAsset:
    return RunAsset(
        run_id=run_id,
        role=role,
        position=position,
        path=stored.path,
        mime=stored.mime,
        bytes=stored.bytes,
        sha256=stored.sha256,
        width=stored.width,
        height=stored.height,
    )

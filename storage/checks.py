"""The acceptance checks' log: each run's check rows, written once per check pass, read back per
run, and summed per route and family for stats, the advisor and the benchmark report."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, SQLModel, col, select

from storage.runlog import RECENT_RUNS, Seen, Visible, as_clause, in_scopes
from storage.tables import CheckTotal, Run, RunCheck, ViewerCheck

CHECK_NAMES = ("text", "edit", "transparency", "delivery", "repeat")
CHECK_STATUSES = ("passed", "failed", "not_run")
AD_HOC = ""  # the family of a run outside any benchmark


class CheckRow(Protocol):
    """What is read of a stored check row: a RunCheck, or its plain values (CheckValues)."""

    @property
    def name(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def score(self) -> float | None: ...
    @property
    def threshold(self) -> float | None: ...
    @property
    def summary(self) -> str: ...
    @property
    def reason(self) -> str | None: ...


Row = TypeVar("Row", bound=CheckRow)


@dataclass(frozen=True, slots=True)
class CheckValues:
    """A stored check row as plain values: what readers of many runs' checks (exports) load,
    a small fraction of the cost of ORM objects."""

    name: str
    position: int
    status: str
    score: float | None
    threshold: float | None
    summary: str
    reason: str | None


@dataclass(frozen=True)
class RunCheckSummary(Generic[Row]):
    """One check over one run's images: the worst status among those that ran ("not_run" when
    none did), their mean score, and the rows behind it."""

    name: str
    status: str
    score: float | None
    rows: tuple[Row, ...]


def summarise(rows: Iterable[Row]) -> list[RunCheckSummary[Row]]:
    """A run's check rows, one summary per check, in CHECK_NAMES order."""
    by_name: dict[str, list[Row]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    out = []
    order = {name: i for i, name in enumerate(CHECK_NAMES)}
    for name in sorted(by_name, key=lambda n: (order.get(n, len(order)), n)):
        group = sorted(by_name[name], key=lambda r: r.position)
        ran = [r for r in group if r.status != "not_run"]
        status = "passed" if ran else "not_run"
        if any(r.status == "failed" for r in ran):
            status = "failed"
        scores = [r.score for r in ran if r.score is not None]
        score = sum(scores) / len(scores) if scores else None
        out.append(RunCheckSummary(name, status, score, tuple(group)))
    return out


def verdict(rows: Iterable[CheckRow]) -> bool | None:
    """The checks' answer for a run: True when every check that ran passed, False when one
    failed, None when none ran."""
    return summaries_verdict(summarise(rows))


def summaries_verdict(summaries: Iterable[RunCheckSummary[Any]]) -> bool | None:
    """verdict() of a run whose checks are summarised already."""
    statuses = {s.status for s in summaries} - {"not_run"}
    if not statuses:
        return None
    return "failed" not in statuses


@dataclass(frozen=True)
class CheckFigures:
    """One check's results over a group of runs: counts by status and the mean score of the
    checks that ran (None when none did)."""

    route_id: str
    family: str  # a benchmark family, or AD_HOC
    name: str
    passed: int
    failed: int
    not_run: int
    mean_score: float | None

    @property
    def ran(self) -> int:
        return self.passed + self.failed

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.ran if self.ran else None


class CheckLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def replace(self, run_id: int, rows: Sequence[RunCheck]) -> list[RunCheck]:
        """Store a run's checks, replacing any earlier pass over the same run."""
        with Session(self.engine, expire_on_commit=False) as session:
            session.execute(sa.delete(RunCheck).where(col(RunCheck.run_id) == run_id))
            for row in rows:
                row.run_id = run_id
                session.add(row)
            session.commit()
            return list(rows)

    def for_run(self, run_id: int) -> list[RunCheck]:
        return self.for_runs([run_id]).get(run_id, [])

    def for_runs(self, run_ids: Iterable[int]) -> dict[int, list[RunCheck]]:
        """Check rows by run id (runs without checks are absent), in name and image order."""
        ids = sorted(set(run_ids))
        found: dict[int, list[RunCheck]] = {}
        with Session(self.engine, expire_on_commit=False) as session:
            for start in range(0, len(ids), 500):  # bounded IN lists on both databases
                query = (
                    select(RunCheck)
                    .where(col(RunCheck.run_id).in_(ids[start : start + 500]))
                    .order_by(col(RunCheck.run_id), col(RunCheck.id))
                )
                for row in session.exec(query).all():
                    found.setdefault(row.run_id, []).append(row)
        return found

    def values_for_runs(self, run_ids: Iterable[int]) -> dict[int, list[CheckValues]]:
        """for_runs() as plain values, for readers of many runs' checks (exports)."""
        ids = sorted(set(run_ids))
        table = SQLModel.metadata.tables["run_checks"]
        columns = [table.c.run_id, *(table.c[f] for f in CheckValues.__dataclass_fields__)]
        found: dict[int, list[CheckValues]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):  # bounded IN lists on both databases
                query = (
                    sa.select(*columns)
                    .where(table.c.run_id.in_(ids[start : start + 500]))
                    .order_by(table.c.run_id, table.c.id)
                )
                for run_id, *values in conn.execute(query):
                    found.setdefault(run_id, []).append(CheckValues(*values))
        return found

    def figures(
        self,
        *,
        since: datetime | None = None,
        bench_id: str | None = None,
        visible: Visible | Seen = None,
    ) -> list[CheckFigures]:
        """Per route, family and check: how many passed, failed or did not run, and the mean
        score, counted in the database (one row per image checked). All time, the counts come
        from `check_totals` (kept by the database as checks are written), so the read does not
        grow with the history; a window or a benchmark counts its own runs' checks."""
        if since is None and bench_id is None and visible is None:
            return self._totals()
        if isinstance(visible, Seen) and since is None and bench_id is None:
            return self._seen_figures(visible)
        visible = as_clause(visible)
        family = sa.func.coalesce(col(Run.bench_family), AD_HOC)

        def count(status: str) -> sa.ColumnElement[int]:
            return sa.func.sum(sa.case((col(RunCheck.status) == status, 1), else_=0))

        scored = sa.case((col(RunCheck.status) != "not_run", col(RunCheck.score)), else_=None)
        query = (
            select(  # type: ignore[call-overload]
                Run.route_id,
                family,
                RunCheck.name,
                count("passed"),
                count("failed"),
                count("not_run"),
                sa.func.avg(scored),
            )
            .join(Run, col(Run.id) == col(RunCheck.run_id))
            .group_by(Run.route_id, family, RunCheck.name)
        )
        if since is not None:
            query = query.where(col(Run.created_at) >= since)
        if bench_id is not None:
            query = query.where(col(Run.bench_id) == bench_id)
        if visible is not None:
            query = query.where(visible)
        with Session(self.engine) as session:
            rows = session.exec(query).all()
        return [
            CheckFigures(
                route_id=route_id,
                family=fam or AD_HOC,
                name=name,
                passed=int(passed or 0),
                failed=int(failed or 0),
                not_run=int(not_run or 0),
                mean_score=None if mean is None else float(mean),
            )
            for route_id, fam, name, passed, failed, not_run, mean in rows
        ]

    def _seen_figures(self, seen: Seen) -> list[CheckFigures]:
        """figures() of what one viewer may see, from viewer_checks (the user's plus the
        channel's, minus their overlap): a few rows, whatever the history."""
        if not seen.scopes():
            return []
        which, sign = in_scopes(ViewerCheck, seen)
        figures = [
            sa.func.sum(sign * col(c))
            for c in (
                ViewerCheck.passed,
                ViewerCheck.failed,
                ViewerCheck.not_run,
                ViewerCheck.score_sum,
                ViewerCheck.scored,
            )
        ]
        keys = (col(ViewerCheck.route_id), col(ViewerCheck.family), col(ViewerCheck.name))
        query = sa.select(*keys, *figures).where(which).group_by(*keys).order_by(*keys)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            CheckFigures(
                route_id=route_id,
                family=family,
                name=name,
                passed=int(passed),
                failed=int(failed),
                not_run=int(not_run),
                mean_score=float(total) / int(scored) if scored else None,
            )
            for route_id, family, name, passed, failed, not_run, total, scored in rows
            if passed or failed or not_run
        ]

    def _totals(self) -> list[CheckFigures]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(CheckTotal).order_by(
                    col(CheckTotal.route_id), col(CheckTotal.family), col(CheckTotal.name)
                )
            ).all()
        return [
            CheckFigures(
                route_id=t.route_id,
                family=t.family,
                name=t.name,
                passed=t.passed,
                failed=t.failed,
                not_run=t.not_run,
                mean_score=t.score_sum / t.scored if t.scored else None,
            )
            for t in rows
            if t.passed or t.failed or t.not_run  # every check of the group was replaced
        ]

    def previous_output(self, run: Run, lookback: int = 20) -> Run | None:
        """The latest earlier succeeded run of the same request on the same route (prompt,
        options and input images alike) among the route's latest RECENT_RUNS runs: what a
        repeat is compared with."""
        if run.id is None:
            return None
        params = {
            "route_id": run.route_id,
            "created_at": run.created_at,
            "run_id": run.id,
            "prompt": run.prompt,
        }
        with Session(self.engine, expire_on_commit=False) as session:
            candidates = session.exec(_previous_output_query(lookback), params=params).all()
        # JSON columns have no equality in PostgreSQL: options are compared here.
        for earlier in candidates:
            if earlier.params == run.params and earlier.input_assets == run.input_assets:
                found: Run = earlier
                return found
        return None


@functools.cache
def _previous_output_query(lookback: int) -> Any:
    """CheckLog.previous_output's query, built once with its values as parameters (building
    it took milliseconds of the checks' thread for each checked run).

    Looked for among the route's latest RECENT_RUNS runs before this one (found through the
    route-and-time index, then filtered): the prompt is not indexed, and a search of the whole
    history would cost every checked image a read that grows with the history."""
    recent = (
        select(Run)
        .where(col(Run.route_id) == sa.bindparam("route_id"))
        .where(col(Run.created_at) <= sa.bindparam("created_at"))
        .where(col(Run.id) < sa.bindparam("run_id"))
        .order_by(col(Run.created_at).desc())
        .limit(RECENT_RUNS)
        .subquery("recent")
    )
    earlier_run = aliased(Run, recent)
    return (
        select(earlier_run)
        .where(col(earlier_run.prompt) == sa.bindparam("prompt"))
        .where(col(earlier_run.status) == "succeeded")
        .order_by(col(earlier_run.id).desc())
        .limit(lookback)
    )

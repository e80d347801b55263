"""The acceptance checks' table on SQLite and PostgreSQL: rows per run, replaced on a second
pass, summed per route and family, and the earlier output a repeat is compared with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.checks import AD_HOC, CheckLog
from storage.db import make_engine, upgrade
from storage.runlog import RunLog
from storage.tables import Run, RunCheck


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _run(runlog: RunLog, status: str = "succeeded", **fields: object) -> Run:
    base: dict[str, object] = {
        "route_id": "demo",
        "route_kind": "demo",
        "model_requested": "imageroute-demo-1",
        "prompt": "Poster for 'SUMMER SALE'",
        "params": {"n": 1, "size": "1024x1024"},
    }
    base.update(fields)
    row = runlog.start(Run(**base))  # type: ignore[arg-type]
    assert row.id is not None
    return runlog.finish(row.id, status, images=1)


def _check(name: str, status: str, score: float | None, position: int = 0) -> RunCheck:
    return RunCheck(
        run_id=0,
        name=name,
        status=status,
        score=score,
        summary=f"{name} {score}",
        position=position,
        detail={"k": [1, 2]},
    )


def test_the_table_exists_after_migration(engine: Engine) -> None:
    columns = {c["name"] for c in sa.inspect(engine).get_columns("run_checks")}
    assert {
        "run_id",
        "name",
        "position",
        "status",
        "score",
        "threshold",
        "summary",
        "reason",
        "detail",
        "duration_s",
        "checked_at",
    } <= columns


def test_a_second_pass_replaces_the_first(engine: Engine) -> None:
    runlog, checks = RunLog(engine), CheckLog(engine)
    run = _run(runlog)
    assert run.id is not None
    checks.replace(run.id, [_check("text", "failed", 0.4), _check("delivery", "passed", 1.0)])
    checks.replace(run.id, [_check("text", "passed", 0.97)])
    rows = checks.for_run(run.id)
    assert [(r.name, r.status, r.score) for r in rows] == [("text", "passed", 0.97)]
    assert rows[0].detail == {"k": [1, 2]}
    assert list(checks.for_runs([run.id, 999])) == [run.id]


def test_figures_per_route_and_family(engine: Engine) -> None:
    runlog, checks = RunLog(engine), CheckLog(engine)
    a = _run(runlog, bench_id="b1", bench_family="poster")
    b = _run(runlog, bench_id="b1", bench_family="poster")
    c = _run(runlog, route_id="other")
    assert a.id and b.id and c.id
    checks.replace(a.id, [_check("text", "passed", 0.9), _check("text", "failed", 0.5, 1)])
    checks.replace(b.id, [_check("text", "not_run", None)])
    checks.replace(c.id, [_check("delivery", "passed", 1.0)])
    figures = {(f.route_id, f.family, f.name): f for f in checks.figures()}
    poster = figures[("demo", "poster", "text")]
    assert (poster.passed, poster.failed, poster.not_run) == (1, 1, 1)
    assert poster.mean_score == pytest.approx(0.7)
    assert poster.pass_rate == 0.5
    assert figures[("other", AD_HOC, "delivery")].passed == 1
    only_bench = checks.figures(bench_id="b1")
    assert {f.route_id for f in only_bench} == {"demo"}


def test_the_earlier_output_of_the_same_request(engine: Engine) -> None:
    runlog, checks = RunLog(engine), CheckLog(engine)
    first = _run(runlog)
    _run(runlog, params={"n": 1, "size": "512x512"})  # other options: not a repeat
    _run(runlog, status="failed")  # no output: not compared with
    _run(runlog, route_id="other")
    latest = _run(runlog)
    found = checks.previous_output(latest)
    assert found is not None and found.id == first.id
    assert checks.previous_output(first) is None

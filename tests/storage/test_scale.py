"""The run log at scale, on SQLite and PostgreSQL: `route_days` (kept by database triggers)
always agrees with the runs themselves, whatever writes them; the scale benchmark's seeding
path works at a small N; and the hot queries read through their indexes, checked with EXPLAIN
on both databases over a seeded year of history."""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from bench.seeding import CHANNELS, ROUTES, USERS, seed
from storage.checks import CheckFigures, CheckLog
from storage.db import make_engine, refresh_planner_statistics, upgrade
from storage.health import HealthLog
from storage.reservations import Reservations
from storage.runlog import RECENT_RUNS, RunLog, Seen, percentile, spend_rows
from storage.tables import HealthCheck, Run, RunCheck, utcnow

FINISHED = ("succeeded", "failed")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _run(route: str, created: datetime, **fields: Any) -> Run:
    return Run(
        route_id=route,
        route_kind="demo",
        model_requested="m",
        prompt="p",
        created_at=created,
        **fields,
    )


def _brute_force(
    engine: Engine, since: datetime | None = None, seen: Seen | None = None
) -> dict[str, dict[str, Any]]:
    """What route_stats must say, computed the slow way: every run loaded into Python (only
    those `seen` may see, when given)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                col(Run.route_id),
                col(Run.status),
                col(Run.created_at),
                col(Run.latency_s),
                col(Run.cost_usd),
                col(Run.images),
                col(Run.task_id),
                col(Run.slack_user),
                col(Run.slack_channel),
            ).order_by(col(Run.created_at).desc(), col(Run.id).desc())
        ).all()
    out: dict[str, dict[str, Any]] = {}
    latest: dict[str, list[Any]] = {}
    for rid, status, created, latency, cost, images, task, user, channel in rows:
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        if since is not None and created < since:
            continue
        if seen is not None and not (
            (seen.user and user == seen.user) or (seen.channel and channel == seen.channel)
        ):
            continue
        window = latest.setdefault(rid, [])
        if len(window) < RECENT_RUNS:
            window.append((status, latency, cost))
        if status not in FINISHED:
            continue
        s = out.setdefault(rid, {"runs": 0, "ok": 0, "spend": 0.0, "unpriced": 0})
        s["runs"] += 1
        s["ok"] += status == "succeeded"
        s["spend"] += (cost or 0.0) if status == "succeeded" else 0.0
        s["unpriced"] += cost is None and (images > 0 or task is not None)
    for rid, s in out.items():
        ok = [(lat, cost) for status, lat, cost in latest[rid] if status == "succeeded"]
        lats = [lat for lat, _ in ok if lat is not None]
        costs = [cost for _, cost in ok if cost is not None]
        s["p50"], s["p95"] = percentile(lats, 50), percentile(lats, 95)
        s["median_cost"] = statistics.median(costs) if costs else None
    return out


def _assert_agrees(
    runlog: RunLog, engine: Engine, since: datetime | None = None, seen: Seen | None = None
) -> None:
    expected = _brute_force(engine, since, seen)
    got = runlog.route_stats(since, visible=seen)
    assert set(got) == set(expected)
    for rid, want in expected.items():
        s = got[rid]
        assert (s.runs, s.succeeded, s.failed) == (
            want["runs"],
            want["ok"],
            want["runs"] - want["ok"],
        )
        assert s.spend_usd == pytest.approx(want["spend"], abs=1e-6)
        assert s.unpriced_runs == want["unpriced"]
        assert s.p50_latency_s == want["p50"] and s.p95_latency_s == want["p95"]
        assert s.median_cost_usd == pytest.approx(want["median_cost"])


def test_route_days_agree_with_the_runs_after_every_kind_of_write(engine: Engine) -> None:
    runlog = RunLog(engine)
    rng = random.Random(7)
    now = utcnow()
    ids: list[int] = []
    for i in range(160):
        created = now - timedelta(days=rng.randint(0, 20), minutes=rng.randint(0, 1400))
        run = runlog.start(
            _run(
                rng.choice("abc"),
                created,
                task_id="t" if i % 9 == 0 else None,
                slack_user=rng.choice(("U1", "U2", "U3", None)),
                slack_channel=rng.choice(("C1", "C2", None)),
            )
        )
        assert run.id is not None
        ids.append(run.id)
        roll = rng.random()
        if roll < 0.6:
            cost = None if rng.random() < 0.2 else round(rng.uniform(0.01, 0.2), 6)
            runlog.finish(run.id, "succeeded", latency_s=rng.uniform(1, 9), cost_usd=cost, images=1)
        elif roll < 0.8:
            runlog.finish(run.id, "failed", latency_s=rng.uniform(1, 9), error_class="timeout")
        elif roll < 0.9:
            runlog.finish(run.id, "interrupted")
        # else: left pending
    # Later changes: a price learnt afterwards, a resumed run finishing, a route renamed.
    for run_id in rng.sample(ids, 30):
        runlog.update(run_id, cost_usd=0.5)
    for run_id in rng.sample(ids, 10):
        runlog.finish(run_id, "succeeded", latency_s=2.0, images=1)
    stats_before = runlog.route_stats()  # cached figures must not outlive the writes below
    with engine.begin() as conn:  # writes that bypass the run log entirely
        conn.execute(sa.update(Run).where(col(Run.id).in_(ids[:5])).values(route_id="d"))
        conn.execute(sa.update(Run).where(col(Run.id).in_(ids[15:20])).values(slack_user="U9"))
        conn.execute(sa.update(Run).where(col(Run.id).in_(ids[20:25])).values(slack_channel=None))
        conn.execute(sa.delete(Run).where(col(Run.id).in_(ids[5:15])))
        conn.execute(
            sa.insert(Run),
            [
                {
                    "route_id": "a",
                    "route_kind": "demo",
                    "model_requested": "m",
                    "prompt": "bulk",
                    "created_at": now - timedelta(days=3),
                    "status": "succeeded",
                    "latency_s": 1.5,
                    "cost_usd": 0.01,
                    "images": 1,
                    "input_assets": [],
                    "params": {},
                    "provider_metadata": {},
                    "n": 1,
                    "attempts": 1,
                    "source": "cli",
                }
            ]
            * 4,
        )
    runlog = RunLog(engine)  # another process's view: nothing cached
    for seen in (None, Seen("U1", "C1"), Seen("U2", None), Seen(None, "C2"), Seen("U9", "C2")):
        _assert_agrees(runlog, engine, seen=seen)
        _assert_agrees(runlog, engine, since=now - timedelta(days=7), seen=seen)
        _assert_agrees(runlog, engine, since=now - timedelta(hours=5), seen=seen)
    assert stats_before  # the first read did see runs


def test_all_time_figures_follow_this_process_runs_at_once(engine: Engine) -> None:
    runlog = RunLog(engine)
    first = runlog.start(_run("a", utcnow()))
    runlog.finish(first.id, "succeeded", latency_s=1.0, cost_usd=0.1, images=1)  # type: ignore[arg-type]
    assert runlog.route_stats()["a"].p50_latency_s == 1.0  # now cached
    for _ in range(3):
        run = runlog.start(_run("a", utcnow()))
        runlog.finish(run.id, "succeeded", latency_s=5.0, cost_usd=0.3, images=1)  # type: ignore[arg-type]
    stats = runlog.route_stats()["a"]
    assert (stats.runs, stats.p50_latency_s, stats.median_cost_usd) == (4, 5.0, 0.3)
    assert stats.recent_runs == 4
    week = runlog.route_stats(utcnow() - timedelta(days=7), percentiles=False)["a"]
    assert week.runs == 4 and week.p50_latency_s is None


def test_verdict_counts_read_the_verdicts_alone(engine: Engine) -> None:
    runlog = RunLog(engine)
    runs = [
        runlog.start(_run(rid, utcnow(), bench_id="b1" if rid == "a" else None)) for rid in "aab"
    ]
    for run, user in zip(runs, ("U1", "U2", "U1"), strict=True):
        runlog.set_verdict(run.id, user != "U2", user)  # type: ignore[arg-type]
    runlog.set_verdict(runs[2].id, False, "U1")  # type: ignore[arg-type]  # a change of mind
    assert runlog.verdict_counts() == {"a": (1, 1), "b": (0, 1)}
    assert runlog.verdict_counts(bench_id="b1") == {"a": (1, 1)}
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM verdicts WHERE route_id IS NULL")
            ).scalar_one()
            == 0
        )


# -- a seeded year of history: the seeding path at a small N, and query plans --------------------
SCANNED = ("runs", "health_checks", "run_assets", "run_checks")


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    done = seed(engine, 12_000, days=365, probes_every_s=6 * 3600)
    assert (done.runs, done.first_id, done.last_id) == (12_000, 1, 12_000)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one() == 12_000
        assert conn.execute(sa.text("SELECT count(*) FROM run_assets")).scalar_one() == done.assets
        assert (
            conn.execute(sa.text("SELECT count(*) FROM health_checks")).scalar_one()
            == done.health_checks
        )
        checked = conn.execute(sa.text("SELECT count(DISTINCT run_id) FROM run_checks"))
        assert checked.scalar_one() == done.assets > 0  # every succeeded run was checked
        routes = {r for (r,) in conn.execute(sa.text("SELECT DISTINCT route_id FROM runs"))}
    assert routes == {r.id for r in ROUTES}
    if engine.dialect.name == "sqlite":
        assert refresh_planner_statistics(engine)  # no statistics yet: gathered
        assert not refresh_planner_statistics(engine)  # nothing changed since: left alone
    else:  # what autovacuum does on a live server, done now
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    return engine


def test_seeded_history_is_what_the_product_reads(seeded: Engine) -> None:
    runlog = RunLog(seeded)
    _assert_agrees(runlog, seeded)
    _assert_agrees(runlog, seeded, since=utcnow() - timedelta(days=7))
    # New runs after the seed get ids past it (PostgreSQL's sequences moved along).
    run = runlog.start(_run(ROUTES[0].id, utcnow()))
    assert run.id == 12_001


def _checks_brute_force(
    engine: Engine,
) -> dict[tuple[str, str, str], tuple[int, int, int, float | None]]:
    """What the all-time check figures must say, counted the slow way in Python."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT runs.route_id, runs.bench_family, run_checks.status, run_checks.score, "
                "run_checks.name FROM run_checks JOIN runs ON runs.id = run_checks.run_id"
            )
        ).all()
    cells: dict[tuple[str, str, str], list[Any]] = {}
    for route_id, family, status, score, name in rows:
        cell = cells.setdefault((route_id, family or "", name), [0, 0, 0, []])
        cell[("passed", "failed", "not_run").index(status)] += 1
        if status != "not_run" and score is not None:
            cell[3].append(score)
    return {
        key: (p, f, n, round(statistics.fmean(scores), 6) if scores else None)
        for key, (p, f, n, scores) in cells.items()
    }


def _checks_read(engine: Engine) -> dict[tuple[str, str, str], tuple[int, int, int, float | None]]:
    return {
        (f.route_id, f.family, f.name): (
            f.passed,
            f.failed,
            f.not_run,
            None if f.mean_score is None else round(f.mean_score, 6),
        )
        for f in CheckLog(engine).figures()
    }


def test_check_totals_agree_with_the_checks_after_every_kind_of_write(engine: Engine) -> None:
    runlog, checks = RunLog(engine), CheckLog(engine)
    now = utcnow()
    ad_hoc = runlog.start(_run("a", now, status="succeeded"))
    benched = runlog.start(_run("a", now, status="succeeded", bench_family="product"))
    other = runlog.start(_run("b", now, status="succeeded"))

    def row(name: str, status: str, score: float | None, position: int = 0) -> RunCheck:
        return RunCheck(
            run_id=0, name=name, status=status, score=score, summary=name, position=position
        )

    checks.replace(ad_hoc.id or 0, [row("delivery", "passed", 1.0), row("text", "failed", 0.4)])
    checks.replace(benched.id or 0, [row("text", "passed", 0.95), row("repeat", "not_run", None)])
    checks.replace(other.id or 0, [row("text", "passed", 0.9), row("text", "passed", None, 1)])
    assert _checks_read(engine) == _checks_brute_force(engine)
    # A second pass over a run replaces its rows (delete, then insert): counted once.
    checks.replace(ad_hoc.id or 0, [row("delivery", "passed", 1.0), row("text", "passed", 0.97)])
    # A row changed in place (whoever writes it) moves from one count to another.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE run_checks SET status = 'failed', score = 0.2 "
                             "WHERE name = 'repeat'"))  # fmt: skip
    assert _checks_read(engine) == _checks_brute_force(engine)
    assert _checks_read(engine)[("a", "", "text")] == (1, 0, 0, 0.97)
    # Every check of a group gone: the group is not shown with zero counts.
    checks.replace(other.id or 0, [])
    assert ("b", "", "text") not in _checks_read(engine)
    assert _checks_read(engine) == _checks_brute_force(engine)


def _viewer_figures_agree(engine: Engine, seen: Seen) -> None:
    """A viewer's stats, check figures and verdicts from the per-viewer rollups say what the
    runs, checks and verdicts they may see say (counted from those rows)."""
    _assert_agrees(RunLog(engine), engine, seen=seen)
    checks = CheckLog(engine)

    def key(f: CheckFigures) -> tuple[Any, ...]:
        mean = None if f.mean_score is None else round(f.mean_score, 6)
        return (f.route_id, f.family, f.name, f.passed, f.failed, f.not_run, mean)

    from_rows = sorted(key(f) for f in checks.figures(visible=seen.clause()))
    assert sorted(key(f) for f in checks.figures(visible=seen)) == from_rows
    runlog = RunLog(engine)
    assert runlog.verdict_counts(visible=seen) == runlog.verdict_counts(visible=seen.clause())


def test_a_viewers_figures_come_from_the_rollups(seeded: Engine) -> None:
    for seen in (Seen(USERS[7], CHANNELS[3]), Seen(USERS[7], None), Seen(None, CHANNELS[0])):
        _viewer_figures_agree(seeded, seen)


def test_viewer_rollups_follow_checks_and_verdicts_however_written(engine: Engine) -> None:
    runlog, checks = RunLog(engine), CheckLog(engine)
    now = utcnow()
    runs = [
        runlog.start(_run("a", now, status="succeeded", slack_user="U1", slack_channel="C1")),
        runlog.start(_run("a", now, status="succeeded", slack_user="U1", slack_channel="C2")),
        runlog.start(_run("b", now, status="succeeded", slack_user="U2", slack_channel="C1")),
        runlog.start(_run("b", now, status="succeeded", bench_family="product")),
    ]

    def row(name: str, status: str, score: float | None) -> RunCheck:
        return RunCheck(run_id=0, name=name, status=status, score=score, summary=name)

    for run in runs:
        assert run.id is not None
        checks.replace(run.id, [row("delivery", "passed", 1.0), row("text", "failed", 0.3)])
        runlog.set_verdict(run.id, True, "U7")
        runlog.set_verdict(run.id, False, "U8")
    first = runs[0].id or 0
    checks.replace(first, [row("delivery", "failed", 0.0)])  # a second pass
    runlog.set_verdict(first, False, "U7")  # a changed mind
    with engine.begin() as conn:  # writes that bypass the logs
        conn.execute(sa.text("DELETE FROM verdicts WHERE judged_by = 'U8'"))
        conn.execute(sa.text("UPDATE run_checks SET status = 'passed' WHERE name = 'text'"))
    for seen in (Seen("U1", "C1"), Seen("U1", None), Seen(None, "C1"), Seen("U2", "C2")):
        _viewer_figures_agree(engine, seen)


def test_seeded_checks_are_what_stats_and_the_advisor_read(seeded: Engine) -> None:
    figures = _checks_read(seeded)
    assert figures == _checks_brute_force(seeded)
    assert {family for _, family, _ in figures} == {"", "product"}


def _statements(engine: Engine, read: Callable[[], object]) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        read()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert seen, "the read issued no query"
    return seen


def _full_scans(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """Tables of SCANNED that the plan reads whole (SQLite `SCAN t`, PostgreSQL `Seq Scan`)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            details = [str(row[3]) for row in plan]
            if "LIMIT" in statement and not any("TEMP B-TREE" in d for d in details):
                return []  # walks an index or the table in order and stops at the limit
            return [d for d in details if d.split()[:1] == ["SCAN"] and d.split()[1] in SCANNED]
        [(document,)] = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).all()
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in SCANNED:
            found.append(f"Seq Scan on {node['Relation Name']}")
        for child in node.get("Plans", []):
            walk(child)

    walk((document if isinstance(document, list) else json.loads(document))[0]["Plan"])
    return found


def test_hot_queries_read_through_their_indexes(seeded: Engine) -> None:
    runlog, health, checks = RunLog(seeded), HealthLog(seeded), CheckLog(seeded)
    viewer = Seen(USERS[7], CHANNELS[3])
    repeated = runlog.get(11_000)
    assert repeated is not None
    now = utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = now - timedelta(days=7)
    route, user = ROUTES[1].id, USERS[7]
    reads: dict[str, Callable[[], object]] = {
        "stats, all time": runlog.route_stats,
        "stats, this week": lambda: runlog.route_stats(week, percentiles=False),
        "stats, this week with percentiles": lambda: runlog.route_stats(week),
        "verdicts": runlog.verdict_counts,
        "route spend today (cap)": lambda: runlog.spend(today, route_id=route),
        "user spend today (cap)": lambda: runlog.spend(today, slack_user=user),
        "spend by route today": lambda: runlog.spend_by_route(today),
        "spend by billing owner this week": lambda: runlog.spend_by_billing_owner(week),
        "probe spend this week": lambda: health.probe_spend_counted(week),
        "spend check, one statement (capped routes, their probes, the user, reservations)": (
            lambda: _spend_check(seeded, today, route, user)
        ),
        "probe latencies today": lambda: health.window(route, now - timedelta(hours=24)),
        "probe uptime this week": lambda: health.uptime(route, week),
        "last probes": lambda: health.recent(route, 20),
        "last success": lambda: health.last_success(route),
        "recent runs": lambda: runlog.recent(8),
        "a viewer's recent runs (App Home)": lambda: runlog.recent(8, slack_user=user),
        "a route's recent runs": lambda: runlog.recent(8, route_id=route),
        "export batch": lambda: next(iter(runlog.row_batches(size=500))),
        "export outputs": lambda: runlog.output_files(list(range(4000, 4500))),
        "stored tasks": runlog.collectable_tasks,
        "check figures, all time": checks.figures,
        "a viewer's stats": lambda: runlog.route_stats(visible=viewer),
        "a viewer's stats this week": lambda: runlog.route_stats(week, visible=viewer),
        "a viewer's check figures": lambda: checks.figures(visible=viewer),
        "a viewer's verdicts": lambda: runlog.verdict_counts(visible=viewer),
        "earlier run of a repeat": lambda: checks.previous_output(repeated),
        "checks of an export batch": lambda: checks.for_runs(range(4000, 4500)),
    }
    problems = {}
    for name, read in reads.items():
        for statement, parameters in _statements(seeded, read):
            scans = _full_scans(seeded, statement, parameters)
            if scans:
                problems[name] = (scans, " ".join(statement.split())[:160])
    assert problems == {}
    # The newest few of a user's or a route's runs are read in index order: nothing sorts all
    # of that user's runs to keep eight.
    for name in ("a viewer's recent runs (App Home)", "a route's recent runs"):
        for statement, parameters in _statements(seeded, reads[name]):
            assert not _sorts(seeded, statement, parameters), name


def _spend_check(engine: Engine, since: datetime, route: str, user: str) -> object:
    """What a spend check reads for one capped route and a capped user, as it reads it."""
    runlog, health, held = RunLog(engine), HealthLog(engine), Reservations(engine)
    parts = [
        held.held_query(since, route_ids=[route]),
        runlog.spend_query(since, route_ids=[route]),
        health.probe_spend_query(since, route_ids=[route]),
        held.held_query(since, slack_user=user),
        runlog.spend_query(since, slack_user=user),
    ]
    with engine.connect() as conn:
        return spend_rows(conn, parts)


def _sorts(engine: Engine, statement: str, parameters: Any) -> bool:
    """Whether the plan sorts all its rows (SQLite's temporary B-tree, PostgreSQL's Sort)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            return any("TEMP B-TREE FOR ORDER BY" in str(row[3]) for row in plan)
        [(document,)] = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).all()
    # An Incremental Sort only orders runs of the same instant by id, as it reads the index.
    return '"Node Type": "Sort"' in json.dumps(document)


def test_health_checks_by_time_have_an_index(engine: Engine) -> None:
    health = HealthLog(engine)
    health.record(HealthCheck(route_id="a", ok=True, latency_s=0.2))
    indexes = {
        ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("health_checks")
    }
    assert indexes["ix_health_checks_time"] == ["checked_at"]
    runs = {ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("runs")}
    for name, lead in {
        "ix_runs_route_time": "route_id",
        "ix_runs_user_time": "slack_user",
        "ix_runs_channel_time": "slack_channel",
        "ix_runs_owner_time": "billing_owner",
        "ix_runs_status_time": "status",
    }.items():
        assert runs[name][:2] == [lead, "created_at"], name


def test_a_restart_at_the_newest_revision_skips_alembic(db_url: str) -> None:
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config, current_revision, script_heads

    assert script_heads() == set(ScriptDirectory.from_config(alembic_config()).get_heads())
    engine = make_engine(db_url)
    upgrade(engine)
    assert current_revision(engine) == ",".join(sorted(script_heads()))
    engine.dispose()
    code = (
        "import sys; from storage.db import make_engine, upgrade; "
        f"upgrade(make_engine({db_url!r})); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_database_migrated_before_the_scale_migration_sat_below_0008_gets_it(
    db_url: str,
) -> None:
    """0007 was placed below 0008 after 0008 and 0009 had shipped: a database already at 0009
    never ran 0007, and 0010 applies it."""
    import importlib

    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    engine = make_engine(db_url)
    upgrade(engine, "0006_reliability")
    with engine.begin() as conn:
        context = MigrationContext.configure(conn)
        with Operations.context(context):
            for name in ("0008_checks", "0009_acknowledgements"):
                importlib.import_module(f"storage.migrations.versions.{name}").upgrade()
        context.stamp(ScriptDirectory.from_config(alembic_config()), "0009_acknowledgements")
    assert not sa.inspect(engine).has_table("route_days")
    upgrade(engine)
    assert sa.inspect(engine).has_table("route_days")
    assert sa.inspect(engine).has_table("check_totals")
    runlog = RunLog(engine)
    runlog.start(_run("a", utcnow(), status="succeeded", cost_usd=0.5))
    assert runlog.route_stats()["a"].spend_usd == 0.5  # the triggers are in place
    engine.dispose()

"""The run log on SQLite and PostgreSQL: migrations, the run lifecycle, every route-board field,
verdicts, spend, stats and crash recovery. Real databases, no mocks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.assets import StoredAsset
from storage.db import current_revision, make_engine, ping, upgrade
from storage.health import HealthLog
from storage.runlog import DuplicateRequest, RunLog, Spend
from storage.tables import HealthCheck, Run, utcnow


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def runlog(engine: Engine) -> RunLog:
    return RunLog(engine)


def _pending(**fields: object) -> Run:
    base: dict[str, object] = {
        "route_id": "imagen",
        "route_kind": "google-imagen",
        "model_requested": "imagen-4.0-ultra-generate-001",
        "prompt": "a product shot of a ceramic mug",
        "source": "slack",
    }
    base.update(fields)
    return Run(**base)  # type: ignore[arg-type]


def test_migrations_apply_from_empty_and_are_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    upgrade(engine)
    first = current_revision(engine)
    assert first
    upgrade(engine)  # a second start changes nothing
    assert current_revision(engine) == first
    tables = set(sa.inspect(engine).get_table_names())
    assert {"runs", "run_assets", "run_attempts", "workers", "verdicts"} <= tables
    assert ping(engine) == "ok"
    engine.dispose()


def test_every_route_board_field_round_trips(runlog: RunLog) -> None:
    run = runlog.start(
        _pending(
            route_id="gw",
            route_kind="gateway",
            model_requested="openai/gpt-image-2",
            underlying_model="gpt-image-2",
            route_owner="Gateway Inc",
            billing_owner="Platform team",
            board="gateway",
            size="1024x1024",
            quality="high",
            n=2,
            params={"background": "opaque", "seed": 7},
            input_assets=["slack:F123"],
            hardware="1x L40S",
            model_version="flux1-dev",
            deployment_hash="sha256:abc",
            serving_config="comfyui 28 steps",
            slack_team="T1",
            slack_channel="C1",
            slack_user="U1",
            slack_thread_ts="1.2",
        )
    )
    assert run.id is not None and run.status == "pending"
    # Pending is on disk before any provider call: a second process sees it.
    assert runlog.get(run.id).status == "pending"  # type: ignore[union-attr]
    runlog.finish(
        run.id,
        "succeeded",
        model_reported="gpt-image-2-2026-04-21",
        response_id="resp_1",
        latency_s=3.25,
        cost_usd=0.042,
        cost_basis="tokens",
        images=2,
    )
    stored = StoredAsset(
        path="/tmp/x.png", mime="image/png", bytes=10, sha256="0" * 64, width=1024, height=1024
    )
    runlog.add_asset(run.id, stored, role="output", position=0)
    runlog.add_attempts(
        run.id,
        [
            {
                "number": 1,
                "started_at": utcnow(),
                "latency_s": 1.0,
                "ok": False,
                "error_class": "rate_limit",
                "status_code": 429,
                "request_id": "req_a",
            },
            {"number": 2, "started_at": utcnow(), "latency_s": 2.2, "ok": True, "waited_s": 0.5},
        ],
    )
    got = runlog.get(run.id)
    assert got is not None
    for name, value in {
        "underlying_model": "gpt-image-2",
        "route_owner": "Gateway Inc",
        "billing_owner": "Platform team",
        "board": "gateway",
        "size": "1024x1024",
        "quality": "high",
        "n": 2,
        "params": {"background": "opaque", "seed": 7},
        "input_assets": ["slack:F123"],
        "hardware": "1x L40S",
        "model_version": "flux1-dev",
        "deployment_hash": "sha256:abc",
        "serving_config": "comfyui 28 steps",
        "model_reported": "gpt-image-2-2026-04-21",
        "response_id": "resp_1",
        "latency_s": 3.25,
        "cost_usd": 0.042,
        "cost_basis": "tokens",
        "status": "succeeded",
        "slack_channel": "C1",
        "slack_thread_ts": "1.2",
    }.items():
        assert getattr(got, name) == value, name
    assert got.created_at is not None and got.finished_at is not None
    [asset] = runlog.assets(run.id)
    assert (asset.sha256, asset.width, asset.mime) == ("0" * 64, 1024, "image/png")
    attempts = runlog.attempts(run.id)
    assert [(a.number, a.ok, a.error_class) for a in attempts] == [
        (1, False, "rate_limit"),
        (2, True, None),
    ]


def test_a_repeated_request_key_is_refused(runlog: RunLog) -> None:
    runlog.start(_pending(request_key="cmd:trigger-1:imagen"))
    with pytest.raises(DuplicateRequest):
        runlog.start(_pending(request_key="cmd:trigger-1:imagen"))
    assert len(runlog.recent(10)) == 1


def test_orphaned_pending_runs_become_interrupted(runlog: RunLog) -> None:
    runlog.heartbeat("dead-worker", "bot")
    orphan = runlog.start(_pending(worker_id="dead-worker"))
    mine = runlog.start(_pending(worker_id="me"))
    # The dead worker's heartbeat is older than the stale limit.
    interrupted = runlog.interrupt_orphans("me", stale_after=timedelta(seconds=-1))
    assert [r.id for r in interrupted] == [orphan.id]
    assert runlog.get(orphan.id).status == "interrupted"  # type: ignore[arg-type,union-attr]
    assert runlog.get(mine.id).status == "pending"  # type: ignore[arg-type,union-attr]


def test_verdicts_spend_and_stats(runlog: RunLog) -> None:
    latencies = [1.0, 2.0, 3.0, 4.0]
    ids = []
    for i, latency in enumerate(latencies):
        run = runlog.start(
            _pending(slack_user="U1" if i < 2 else "U2", billing_owner="GCP acct" if i else None)
        )
        assert run.id is not None
        runlog.finish(run.id, "succeeded", latency_s=latency, cost_usd=0.06, images=1)
        ids.append(run.id)
    failed = runlog.start(_pending())
    runlog.finish(failed.id, "failed", error_class="timeout")  # type: ignore[arg-type]

    runlog.set_verdict(ids[0], True, "U1")
    runlog.set_verdict(ids[0], False, "U1")  # a change of mind replaces, not adds
    runlog.set_verdict(ids[0], True, "U2")
    assert sorted((v.judged_by, v.survives) for v in runlog.verdicts(ids[0])) == [
        ("U1", False),
        ("U2", True),
    ]
    assert runlog.verdict_counts()["imagen"] == (1, 1)

    since = utcnow() - timedelta(hours=1)
    assert runlog.spend(since).known_usd == pytest.approx(0.24)
    assert runlog.spend(since, slack_user="U1").known_usd == pytest.approx(0.12)
    assert runlog.spend(since, route_id="other") == Spend()
    owners = runlog.spend_by_billing_owner(since)
    assert {k: v.known_usd for k, v in owners.items()} == pytest.approx(
        {"unknown": 0.06, "GCP acct": 0.18}
    )

    stats = runlog.route_stats()["imagen"]
    assert (stats.runs, stats.succeeded, stats.failed) == (5, 4, 1)
    assert stats.success_rate == pytest.approx(0.8)
    assert stats.p50_latency_s == pytest.approx(2.5, abs=0.51)
    assert stats.p95_latency_s is not None and 3.0 <= stats.p95_latency_s <= 4.0
    assert stats.median_cost_usd == pytest.approx(0.06)


def test_export_iterates_in_batches_without_skipping(runlog: RunLog) -> None:
    for i in range(23):
        runlog.start(_pending(prompt=f"p{i}", bench_id="b1" if i % 2 else None))
    everything = list(runlog.iter_all(batch=5))
    assert [r.prompt for r in everything] == [f"p{i}" for i in range(23)]
    bench = list(runlog.iter_all(bench_id="b1", batch=4))
    assert len(bench) == 11


def test_spend_counts_unpriced_runs_and_never_adds_them_as_zero(runlog: RunLog) -> None:
    def finished(cost: float | None, images: int, **fields: object) -> None:
        run = runlog.start(_pending(**fields))
        assert run.id is not None
        runlog.finish(run.id, "succeeded", cost_usd=cost, images=images)

    finished(0.04, 1, slack_user="U1", billing_owner="Design")
    finished(None, 2, slack_user="U1", billing_owner="Design")  # billed, price unknown
    finished(None, 1, route_id="gpt", slack_user="U2")
    finished(0.0, 1, route_id="demo")  # free is a known $0
    failed = runlog.start(_pending())
    runlog.finish(failed.id, "failed", error_class="auth")  # type: ignore[arg-type]

    since = utcnow() - timedelta(hours=1)
    total = runlog.spend(since)
    assert total.known_usd == pytest.approx(0.04)
    assert (total.priced_runs, total.unpriced_runs, total.unpriced_images) == (2, 2, 3)
    assert not total.complete
    by_route = runlog.spend_by_route(since)
    assert by_route["imagen"].unpriced_runs == 1 and by_route["imagen"].known_usd == 0.04
    assert by_route["gpt"].unpriced_images == 1 and by_route["demo"].complete
    user = runlog.spend(since, slack_user="U1")
    assert user.known_usd == pytest.approx(0.04) and user.unpriced_runs == 1
    owners = runlog.spend_by_billing_owner(since)
    assert owners["Design"].unpriced_runs == 1 and owners["unknown"].unpriced_runs == 1
    stats = runlog.route_stats()
    assert stats["imagen"].spend_usd == pytest.approx(0.04)
    assert stats["imagen"].unpriced_runs == 1 and stats["demo"].unpriced_runs == 0


def test_probe_spend_counts_generate_probes_of_unknown_cost(engine: Engine) -> None:
    health = HealthLog(engine)
    health.record(HealthCheck(route_id="a", probe_kind="generate", ok=True, cost_usd=0.02))
    health.record(HealthCheck(route_id="b", probe_kind="generate", ok=True, cost_usd=None))
    health.record(HealthCheck(route_id="b", probe_kind="auth", ok=True, cost_usd=None))
    health.record(HealthCheck(route_id="b", probe_kind="generate", ok=False, cost_usd=None))
    spend = health.probe_spend_counted(utcnow() - timedelta(hours=1))
    assert spend.known_usd == pytest.approx(0.02)
    assert (spend.priced_runs, spend.unpriced_runs) == (1, 1)


def test_an_interrupted_run_is_reclaimed_by_one_process_only(runlog: RunLog) -> None:
    run = runlog.start(_pending(task_id="task-5", worker_id="bot-dead"))
    assert run.id is not None
    assert runlog.reclaim(run.id, "bot-new") is None  # still pending: not an orphan yet
    runlog.finish(run.id, "interrupted", error_class="interrupted", error_message="stopped")
    taken = runlog.reclaim(run.id, "bot-new")
    assert taken is not None and (taken.status, taken.worker_id) == ("pending", "bot-new")
    assert taken.error_class is None and taken.finished_at is None and taken.task_id == "task-5"
    assert runlog.reclaim(run.id, "bot-other") is None  # the first one collects it

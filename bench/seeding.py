"""A year of synthetic run history written through the product's own tables, fast.

Used by bench/bench_scale.py (100k and 1M runs) and, at a small N, by the storage tests, so the
seeding path is exercised in CI. Rows go in with SQLAlchemy Core bulk inserts on the very
`Table` objects of storage.tables (migrations applied first), so every column, default and
constraint is the product's; nothing is written around the schema.

The history looks like a busy workspace: nine routes of every kind with their own latency,
price, failure rate and billing owner; 200 users in 40 channels; comparisons (runs sharing a
group), benchmark runs, runs of unknown cost, billed tasks, one output asset per successful
run with its acceptance checks (delivery always, text when the prompt quotes some, repeat on
some), a verdict on 1% of them, and a health probe per route every five minutes over the span.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from storage.db import upgrade

TABLES = SQLModel.metadata.tables

BATCH = 5_000


@dataclass(frozen=True)
class SeedRoute:
    """One route of the synthetic workspace and how its runs behave."""

    id: str
    kind: str
    board: str
    model: str
    billing_owner: str
    share: float  # of all runs
    latency_s: float = 5.0  # median
    cost_usd: float | None = None  # per image; None: no price on file
    failure_rate: float = 0.05
    unpriced_rate: float = 0.0  # share of successful runs whose cost is not known
    billed_task: bool = False  # the submit is billed and recorded as a task (BFL)


def _route(
    id: str, kind: str, board: str, model: str, owner: str, share: float, **facts: Any
) -> SeedRoute:
    return SeedRoute(id, kind, board, model, owner, share, **facts)


ROUTES: tuple[SeedRoute, ...] = (
    _route("gpt-image", "openai", "openai", "gpt-image-2", "Platform team", 0.22,
           latency_s=9.0, cost_usd=0.053, failure_rate=0.04),
    _route("gpt-mini", "openai", "openai", "gpt-image-1-mini", "Platform team", 0.14,
           latency_s=5.0, cost_usd=0.011, failure_rate=0.03),
    _route("assistant", "openai-responses", "openai", "gpt-5", "Assistants", 0.08,
           latency_s=14.0, cost_usd=0.07, failure_rate=0.05),
    _route("gemini", "gemini-image", "google", "gemini-3-pro-image", "GCP marketing", 0.16,
           latency_s=11.0, cost_usd=0.134, failure_rate=0.06),
    _route("imagen", "google-imagen", "google", "imagen-4.0-ultra-generate-001", "GCP marketing",
           0.05, latency_s=7.0, cost_usd=0.06, failure_rate=0.08),
    _route("flux", "bfl", "flux", "flux-2-pro", "Design", 0.12,
           latency_s=6.0, cost_usd=0.03, failure_rate=0.05, billed_task=True),
    _route("gateway", "gateway", "gateway", "openai/gpt-image-2", "Gateway Inc", 0.09,
           latency_s=10.0, cost_usd=0.05, failure_rate=0.07, unpriced_rate=0.3),
    _route("nova", "bedrock", "gateway", "amazon.nova-canvas-v1:0", "AWS sandbox", 0.06,
           latency_s=8.0, cost_usd=0.04, failure_rate=0.04),
    _route("local", "self-hosted", "self-hosted", "flux1-dev", "Research", 0.08,
           latency_s=4.0, cost_usd=0.002, failure_rate=0.10),
)  # fmt: skip

PROMPTS = (
    "a product shot of a ceramic mug on a white background",
    "a red bicycle on a beach at sunset",
    "a logo for a coffee roaster, flat vector, two colours",
    "a poster that reads SUMMER SALE in bold letters",
    "an isometric illustration of a tiny city",
    "a watercolor fox in a snowy forest",
    "a photorealistic lighthouse at dusk, warm light",
    "a cobalt-blue mug with the handle on the left",
    "a children's book page with a friendly dragon",
    "a minimalist banner for a developer conference",
)
ERRORS = (
    ("rate_limit", "429 Too Many Requests: slow down"),
    ("timeout", "no answer within 120 s (the route's timeout_seconds)"),
    ("provider_down", "503 Service Unavailable"),
    ("moderation", "the request was rejected by the provider's safety system"),
    ("bad_request", "size 4096x4096 is not supported"),
)
USERS = tuple(f"U{n:07d}SEED" for n in range(200))
CHANNELS = tuple(f"C{n:07d}SEED" for n in range(40))


@dataclass(frozen=True)
class Seeded:
    runs: int
    assets: int
    verdicts: int
    health_checks: int
    first_id: int
    last_id: int
    run_checks: int = 0


def seed(
    engine: Engine,
    runs: int,
    *,
    days: float = 365.0,
    now: datetime | None = None,
    rng_seed: int = 19,
    probes_every_s: float = 300.0,
) -> Seeded:
    """Write `runs` runs spread evenly over the last `days` days (ids in time order), with their
    assets, verdicts and the routes' health probes; migrations are applied first. Appends to
    whatever the database holds already."""
    upgrade(engine)
    now = now or datetime.now(UTC)
    rng = random.Random(rng_seed)
    start = now - timedelta(days=days)
    with engine.begin() as conn:
        first_id = _next_id(conn, "runs")
        first_asset = _next_id(conn, "run_assets")
    counts = {"assets": 0, "verdicts": 0, "checks": 0}
    bench_ids: set[str] = set()
    step = timedelta(days=days) / max(runs, 1)
    rows = _runs(rng, runs, first_id, start, step, bench_ids)
    asset_id = first_asset
    with engine.begin() as conn:
        while True:
            batch = [next(rows, None) for _ in range(BATCH)]
            batch_runs = [r for r in batch if r is not None]
            if not batch_runs:
                break
            conn.execute(sa.insert(TABLES["runs"]), batch_runs)
            assets = []
            verdicts = []
            checks: list[dict[str, Any]] = []
            for run in batch_runs:
                if run["status"] != "succeeded":
                    continue
                assets.append(_asset(asset_id, run))
                asset_id += 1
                checks += _checks(rng, run["id"], run["prompt"], run["finished_at"])
                if rng.random() < 0.01:
                    verdicts.append(
                        {
                            "run_id": run["id"],
                            "route_id": run["route_id"],
                            "survives": rng.random() < 0.7,
                            "judged_by": rng.choice(USERS),
                            "judged_at": run["finished_at"],
                            "note": None,
                        }
                    )
            if assets:
                conn.execute(sa.insert(TABLES["run_assets"]), assets)
            if verdicts:
                conn.execute(sa.insert(TABLES["verdicts"]), verdicts)
            if checks:
                conn.execute(sa.insert(TABLES["run_checks"]), checks)
            counts["assets"] += len(assets)
            counts["verdicts"] += len(verdicts)
            counts["checks"] += len(checks)
        if bench_ids:
            conn.execute(
                sa.insert(TABLES["benches"]),
                [_bench(bid, start) for bid in sorted(bench_ids)],
            )
        probes = _seed_probes(conn, rng, start, now, probes_every_s)
        _move_sequences(conn)
    return Seeded(
        runs=runs,
        assets=counts["assets"],
        verdicts=counts["verdicts"],
        health_checks=probes,
        run_checks=counts["checks"],
        first_id=first_id,
        last_id=first_id + runs - 1,
    )


def seed_checks(engine: Engine, *, rng_seed: int = 19) -> int:
    """Acceptance checks for the succeeded runs that have none (a history seeded before the
    checks existed, then migrated): the rows seed() writes for new runs. Returns how many."""
    upgrade(engine)
    rng = random.Random(rng_seed)
    runs, checks = TABLES["runs"], TABLES["run_checks"]
    checked = sa.select(checks.c.run_id).where(checks.c.run_id == runs.c.id).exists()
    written, after = 0, 0
    with engine.begin() as conn:
        while True:
            query = (
                sa.select(runs.c.id, runs.c.prompt, runs.c.finished_at)
                .where(runs.c.id > after, runs.c.status == "succeeded", ~checked)
                .order_by(runs.c.id)
                .limit(BATCH)
            )
            batch = conn.execute(query).all()
            if not batch:
                break
            rows = [row for r in batch for row in _checks(rng, r.id, r.prompt, r.finished_at)]
            conn.execute(sa.insert(checks), rows)
            written += len(rows)
            after = batch[-1].id
        _move_sequences(conn)
    return written


def _checks(rng: random.Random, run_id: int, prompt: str, at: datetime) -> list[dict[str, Any]]:
    """A succeeded run's check rows, as the checks write them: delivery always, text when the
    prompt quotes words, repeat when the same prompt ran before (about a third of runs)."""
    rows = [_check(run_id, "delivery", rng.random() >= 0.01, 1.0, None, "as asked", at)]
    if "reads" in prompt:
        score = min(1.0, max(0.0, rng.gauss(0.9, 0.12)))
        rows.append(_check(run_id, "text", score >= 0.9, score, 0.9, f"text {score:.0%}", at))
    if rng.random() < 0.33:
        score = min(1.0, max(0.0, rng.gauss(0.7, 0.2)))
        rows.append(_check(run_id, "repeat", score >= 0.5, score, 0.5, f"alike {score:.0%}", at))
    return rows


def _check(
    run_id: int,
    name: str,
    passed: bool,
    score: float,
    threshold: float | None,
    summary: str,
    at: datetime,
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "name": name,
        "position": 0,
        "status": "passed" if passed else "failed",
        "score": round(score, 4),
        "threshold": threshold,
        "summary": summary,
        "reason": None if passed else f"{summary}, below the pass mark",
        "detail": {},
        "duration_s": 0.05,
        "checked_at": at,
    }


def _move_sequences(conn: sa.Connection) -> None:
    """Ids were given explicitly on PostgreSQL: move the sequences past them for the bot's own
    inserts (SQLite takes the next rowid by itself)."""
    if conn.dialect.name != "postgresql":
        return
    for table in ("runs", "run_assets", "verdicts", "health_checks", "run_checks"):
        conn.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        )


def _next_id(conn: sa.Connection, table: str) -> int:
    column = TABLES[table].c.id
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))).scalar_one()) + 1


def _runs(
    rng: random.Random,
    total: int,
    first_id: int,
    start: datetime,
    step: timedelta,
    bench_ids: set[str],
) -> Iterator[dict[str, Any]]:
    weights = [r.share for r in ROUTES]
    made = 0
    while made < total:
        created = start + step * made
        roll = rng.random()
        if roll < 0.12:  # a comparison: 2-4 routes, one group
            members = rng.sample(ROUTES, k=min(rng.randint(2, 4), total - made))
            group: str | None = f"g{first_id + made:012x}"
            bench: str | None = None
        elif roll < 0.17:  # a benchmark's output
            members = rng.choices(ROUTES, weights)
            group = None
            bench = f"bench-{created:%Y%m%d}"
            bench_ids.add(bench)
        else:
            members = rng.choices(ROUTES, weights)
            group = bench = None
        user, channel = rng.choice(USERS), rng.choice(CHANNELS)
        for route in members:
            yield _run(rng, first_id + made, route, created, group, bench, user, channel)
            made += 1
            created += step


def _run(
    rng: random.Random,
    run_id: int,
    route: SeedRoute,
    created: datetime,
    group: str | None,
    bench: str | None,
    user: str,
    channel: str,
) -> dict[str, Any]:
    roll = rng.random()
    if roll < route.failure_rate:
        status = "failed"
    elif roll < route.failure_rate + 0.004:
        status = "interrupted"
    else:
        status = "succeeded"
    latency = route.latency_s * math.exp(rng.gauss(0.0, 0.35))
    ok = status == "succeeded"
    priced = ok and route.cost_usd is not None and rng.random() >= route.unpriced_rate
    error_class, error_message = rng.choice(ERRORS) if status == "failed" else (None, None)
    prompt = f"{rng.choice(PROMPTS)} #{run_id % 997}"
    source = "bench" if bench else "slack"
    slack = source == "slack"
    task = f"task-{run_id:010d}" if route.billed_task and status != "failed" else None
    local = route.kind == "self-hosted"
    openai = route.board == "openai"
    cost = None
    if priced and route.cost_usd is not None:
        cost = round(route.cost_usd * math.exp(rng.gauss(0, 0.1)), 6)
    if status == "interrupted":
        error_class = "interrupted"
    return {
        "id": run_id,
        "status": status,
        "source": source,
        "created_at": created,
        "finished_at": created + timedelta(seconds=latency),
        "route_id": route.id,
        "route_kind": route.kind,
        "board": route.board,
        "route_owner": f"{route.billing_owner} admins",
        "billing_owner": route.billing_owner,
        "model_requested": route.model,
        "model_reported": route.model if ok else None,
        "underlying_model": route.model.split("/")[-1] if route.kind == "gateway" else None,
        "prompt": prompt,
        "revised_prompt": f"{prompt}, detailed" if route.kind == "openai-responses" else None,
        "input_assets": [],
        "size": "1024x1024",
        "quality": "medium",
        "n": 1,
        "params": {"background": "opaque"} if openai else {},
        "response_id": f"resp_{run_id:010d}" if ok else None,
        "latency_s": round(latency, 3) if status != "interrupted" else None,
        "cost_usd": cost,
        "cost_basis": ("usage" if openai else "price_table") if cost is not None else None,
        "cost_detail": None,
        "usage": {"input_tokens": 24, "output_tokens": 4160} if ok and openai else None,
        "provider_metadata": {},
        "images": 1 if ok else 0,
        "error_class": error_class,
        "error_message": error_message if status == "failed" else None,
        "error_request_id": f"req_{run_id:010d}" if status == "failed" else None,
        "attempts": 1 if status != "failed" else 3,
        "task_id": task,
        "task_polling_url": f"https://api.bfl.ai/v1/get_result?id={task}" if task else None,
        "task_submitted_at": created if task else None,
        "task_expires_at": created + timedelta(minutes=10) if task else None,
        "hardware": "1x L40S" if local else None,
        "model_version": "flux1-dev-fp8" if local else None,
        "deployment_hash": "sha256:5eed" if local else None,
        "serving_config": "comfyui 28 steps" if local else None,
        "slack_team": "T0SEED" if slack else None,
        "slack_channel": channel if slack else None,
        "slack_user": user if slack else None,
        "slack_thread_ts": f"{created.timestamp():.6f}" if slack else None,
        "slack_response_url": None,
        "group_id": group,
        "bench_id": bench,
        "bench_family": "product" if bench else None,
        "request_key": f"seed:{run_id}",
        "worker_id": "bot-seed-1",
    }


def _asset(asset_id: int, run: dict[str, Any]) -> dict[str, Any]:
    digest = hashlib.sha256(str(run["id"]).encode()).hexdigest()
    created: datetime = run["created_at"]
    return {
        "id": asset_id,
        "run_id": run["id"],
        "role": "output",
        "position": 0,
        "path": f"runs/{created:%Y/%m/%d}/{run['id']}-0.png",
        "mime": "image/png",
        "bytes": 1_400_000 + run["id"] % 300_000,
        "sha256": digest,
        "width": 1024,
        "height": 1024,
        "created_at": run["finished_at"],
    }


def _bench(bench_id: str, start: datetime) -> dict[str, Any]:
    day = datetime.strptime(bench_id.removeprefix("bench-"), "%Y%m%d").replace(tzinfo=UTC)
    return {
        "id": bench_id,
        "status": "finished",
        "source": "cli",
        "created_at": max(day, start),
        "finished_at": max(day, start) + timedelta(hours=1),
        "routes": [r.id for r in ROUTES],
        "families": ["product"],
        "repeat": 1,
        "max_cost_usd": 20.0,
        "per_route": 2,
        "prompt_set": None,
        "slack_channel": None,
        "slack_thread_ts": None,
        "slack_user": None,
    }


def _seed_probes(
    conn: sa.Connection, rng: random.Random, start: datetime, end: datetime, every_s: float
) -> int:
    """One auth probe per route every `every_s` seconds over the span (2% failing)."""
    if every_s <= 0:
        return 0
    rounds = int((end - start).total_seconds() // every_s)
    written = 0
    batch: list[dict[str, Any]] = []
    for n in range(rounds):
        at = start + timedelta(seconds=n * every_s)
        for route in ROUTES:
            ok = rng.random() >= 0.02
            batch.append(
                {
                    "route_id": route.id,
                    "checked_at": at,
                    "source": "probe",
                    "probe_kind": "auth",
                    "ok": ok,
                    "latency_s": round(0.2 * math.exp(rng.gauss(0, 0.3)), 3),
                    "error_class": None if ok else "provider_down",
                    "error_message": None if ok else "503 Service Unavailable",
                    "request_id": None,
                    "cost_usd": None,
                }
            )
        if len(batch) >= BATCH:
            conn.execute(sa.insert(TABLES["health_checks"]), batch)
            written += len(batch)
            batch = []
    if batch:
        conn.execute(sa.insert(TABLES["health_checks"]), batch)
        written += len(batch)
    return written

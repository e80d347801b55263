"""Migrations when several replicas start together on one fresh PostgreSQL database: each
process runs `upgrade` at start-up, and they take turns under an advisory lock, so every one
starts and the schema is built once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.db import current_revision, make_engine

MIGRATE = (
    "import sys, time\n"
    "from storage.db import make_engine, upgrade, current_revision\n"
    "time.sleep(max(float(sys.argv[2]) - time.time(), 0))\n"
    "engine = make_engine(sys.argv[1])\n"
    "upgrade(engine)\n"
    "print(current_revision(engine))\n"
)


@pytest.mark.postgres
async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    start_at = str(time.time() + 3.0)  # every process is up and waiting by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, postgres_url, start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        for _ in range(4)
    ]
    outputs = [await asyncio.to_thread(p.communicate, timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    engine = make_engine(postgres_url)
    head = current_revision(engine)
    assert head and {out.strip() for out, _ in outputs} == {head}
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar()
        tables = set(sa.inspect(conn).get_table_names())
    assert versions == 1
    assert {"runs", "workers", "spend_reservations", "health_checks"} <= tables
    engine.dispose()

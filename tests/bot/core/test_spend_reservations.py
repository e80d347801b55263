"""Spend caps that hold under concurrency: a run's expected cost is reserved atomically before
the provider call and held until the run ends, so with a cap that fits five images, thirty
requests at once run at most five, in one process and in two processes on one PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.core.runs import RunOrigin
from bot.core.spend import OverCap
from routes.model import ImageRequest
from storage.runlog import DuplicateRequest
from tests.conftest import RuntimeOpener

# $0.04 an image and a user cap of $0.20: five images fit. The route's delay keeps every
# admitted run in flight while the others ask.
CAPPED = """
[limits]
user_daily_spend_usd = 0.20

[routes.paid]
kind = "demo"
delay_seconds = 0.4
pricing = { usd_per_image = 0.04 }
"""
USER = "U0CAPPED"


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
async def test_thirty_concurrent_requests_run_at_most_five(
    open_runtime: RuntimeOpener, request: pytest.FixtureRequest, db: str, tmp_path: Path
) -> None:
    url = (
        f"sqlite:///{tmp_path}/cap.db"
        if db == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    runtime = open_runtime(CAPPED, database_url=url)
    calls: list[float] = []

    async def one(n: int) -> str:
        prompt = ImageRequest(prompt=f"poster {n}")
        try:
            hold = await runtime.spend.reserve(["paid"], USER, prompt)
        except OverCap as exc:
            return str(exc)
        try:
            calls.append(time.monotonic())
            await runtime.runs.run("paid", prompt, RunOrigin(source="slack", slack_user=USER))
        finally:
            await runtime.spend.release(hold)
        return "ran"

    answers = await asyncio.gather(*(one(n) for n in range(30)))
    assert answers.count("ran") == 5
    refusals = [a for a in answers if a != "ran"]
    assert all("daily spend cap of $0.20" in a for a in refusals), refusals[:2]
    # While runs were in flight the refusal names what they hold.
    assert any("held by runs in progress" in a for a in refusals)
    runs = runtime.runlog.recent(50)
    assert len(runs) == 5 and all(r.status == "succeeded" for r in runs)
    assert sum(r.cost_usd or 0 for r in runs) == pytest.approx(0.20)
    # Every hold was released: the real costs alone now fill the cap.
    assert runtime.spend.reservations.reserved(runtime.engine.connect(), runs[0].created_at) == {}
    with pytest.raises(OverCap, match=r"\$0.20 spent today\)"):
        await runtime.spend.reserve(["paid"], USER, ImageRequest(prompt="one more"))


@pytest.mark.postgres
async def test_two_processes_sharing_postgresql_run_at_most_five(
    postgres_url: str, open_runtime: RuntimeOpener, tmp_path: Path
) -> None:
    runtime = open_runtime(CAPPED, database_url=postgres_url)  # migrated, and read back below
    settings = {
        "database_url": postgres_url,
        "asset_store": f"file://{tmp_path}/assets",
        "imageroute_config": str(tmp_path / "imageroute.toml"),
        "imageroute_spool": str(tmp_path / "spool"),
    }
    start_at = time.time() + 4.0  # both processes are up by then and start together
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bot.core.cap_pressure",
                json.dumps(settings),
                "15",
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[3],
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = await asyncio.to_thread(proc.communicate, timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["admitted"] for r in results) == 5, results
    assert sum(r["refused"] for r in results) == 25
    runs = runtime.runlog.recent(50)
    assert len(runs) == 5 and {r.status for r in runs} == {"succeeded"}
    assert len({r.worker_id for r in runs}) >= 1


async def test_one_request_key_is_admitted_once(open_runtime: RuntimeOpener) -> None:
    runtime = open_runtime(CAPPED)
    request = ImageRequest(prompt="once")
    first = await runtime.spend.reserve(["paid"], USER, request, request_key="cmd:trig.1")
    with pytest.raises(DuplicateRequest):
        await runtime.spend.reserve(["paid"], USER, request, request_key="cmd:trig.1")
    # After the run (its row carries the same key) a late replay is still refused.
    await runtime.runs.run(
        "paid", request, RunOrigin(source="slack", slack_user=USER, request_key="cmd:trig.1:paid")
    )
    await runtime.spend.release(first)
    with pytest.raises(DuplicateRequest):
        await runtime.spend.reserve(["paid"], USER, request, request_key="cmd:trig.1")

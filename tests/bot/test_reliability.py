"""No lost or doubled work: retried deliveries, crashes mid-run, storage failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from storage.db import make_engine, upgrade
from storage.runlog import RunLog
from storage.tables import Run
from tests.bot.conftest import CHANNEL, DEMO_CONFIG, wait_for


async def test_repeated_delivery_of_one_command_runs_once(start_harness):
    h = await start_harness()
    for _ in range(3):
        response = await h.command("/imagegen", 'route=demo prompt="once"', trigger_id="trig.same")
        assert response.status_code == 200
    await h.settle()
    runs = h.runtime.runlog.recent(10)
    assert len(runs) == 1
    assert runs[0].request_key == "cmd:trig.same:demo"


async def test_interrupted_slack_run_is_reported_in_its_thread(start_harness, tmp_path):
    db_url = f"sqlite:///{tmp_path}/crash.db"
    engine = make_engine(db_url)
    upgrade(engine)
    log = RunLog(engine)
    # A run a previous bot process wrote as pending, then died before finishing.
    log.heartbeat("bot-dead-1", "bot")
    orphan = log.start(
        Run(
            route_id="demo",
            route_kind="demo",
            model_requested="imageroute-demo-1",
            prompt="lost?",
            source="slack",
            slack_channel=CHANNEL,
            slack_thread_ts="1699999999.000100",
            worker_id="bot-dead-1",
        )
    )
    with engine.begin() as conn:  # the dead worker's heartbeat is old
        conn.exec_driver_sql("UPDATE workers SET seen_at = '2000-01-01 00:00:00'")
    engine.dispose()

    h = await start_harness(database_url=db_url)
    row = h.runtime.runlog.get(orphan.id)
    assert row.status == "interrupted"
    notes = h.slack.thread(CHANNEL, "1699999999.000100")
    assert len(notes) == 1 and "interrupted" in notes[0].text and f"#{orphan.id}" in notes[0].text


def test_killed_cli_run_becomes_interrupted_at_next_start(tmp_path: Path):
    config = tmp_path / "imageroute.toml"
    config.write_text(DEMO_CONFIG.replace("delay_seconds = 0.3", "delay_seconds = 30"))
    env = {
        **os.environ,
        "IMAGEROUTE_CONFIG": str(config),
        "DATABASE_URL": f"sqlite:///{tmp_path}/kill.db",
        "ASSET_STORE": f"file://{tmp_path}/assets",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "gen", "--route", "slowdemo", "slow one"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = make_engine(env["DATABASE_URL"])
    deadline = time.time() + 30
    log = None
    while time.time() < deadline:
        try:
            log = RunLog(engine)
            if log.recent(1):
                break
        except Exception:
            pass
        time.sleep(0.1)
    assert log is not None and log.recent(1)[0].status == "pending"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The next process (here: a CLI listing after a bot start) recovers it.
    from bot.runtime import Runtime
    from bot.settings import Settings

    settings = Settings(
        _env_file=None,
        imageroute_config=config,
        database_url=env["DATABASE_URL"],
        asset_store=env["ASSET_STORE"],
    )
    import asyncio

    async def start() -> list[Run]:
        runtime = Runtime.open(settings, role="bot")
        import bot.runtime as rt

        # The killed process never retired: it counts as dead once its heartbeat is stale.
        with runtime.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE workers SET seen_at = '2000-01-01 00:00:00'")
        orphans = await runtime.start_worker()
        await runtime.aclose()
        assert rt.STALE_AFTER.total_seconds() > rt.HEARTBEAT_SECONDS
        return orphans

    orphans = asyncio.run(start())
    assert [o.prompt for o in orphans] == ["slow one"]
    assert RunLog(engine).recent(1)[0].status == "interrupted"


async def test_storage_failure_still_posts_the_image(start_harness, tmp_path):
    h = await start_harness()
    # Make the asset folder unwritable by replacing it with a file.
    root = Path(str(h.runtime.settings.asset_store).removeprefix("file://"))
    if root.exists():
        import shutil

        shutil.rmtree(root)
    root.write_text("not a folder")
    await h.command("/imagegen", 'route=demo prompt="keep me"')
    await h.settle()
    parent = h.slack.top_level(CHANNEL)[0]
    uploads = [i for i in h.slack.thread(CHANNEL, parent.ts) if hasattr(i, "data")]
    assert len(uploads) == 1 and uploads[0].data.startswith(b"\x89PNG")
    assert "could not be stored" in (uploads[0].comment or "")
    run = h.runtime.runlog.recent(1)[0]
    assert run.status == "failed" and run.error_class == "storage" and run.response_id
    await wait_for(lambda: True)

"""No lost or doubled work: retried deliveries, crashes mid-run, storage failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from bot.wiring.runtime import HEARTBEAT_SECONDS, STALE_AFTER
from storage.db import make_engine, upgrade
from storage.runlog import RunLog
from storage.tables import Run
from tests.bot.conftest import CHANNEL
from tests.conftest import RuntimeOpener
from tests.fakes.openai import OpenAIFake
from tests.fakes.server import Reply


async def test_repeated_delivery_of_one_command_runs_once(start_harness):
    h = await start_harness()
    for _ in range(3):
        response = await h.command("/imagegen", 'route=demo prompt="once"', trigger_id="trig.same")
        assert response.status_code == 200
    await h.settle()
    # Replayed later, after the run finished: still nothing new.
    await h.command("/imagegen", 'route=demo prompt="once"', trigger_id="trig.same")
    await h.settle()
    runs = h.runtime.runlog.recent(10)
    assert len(runs) == 1
    assert runs[0].request_key == "cmd:trig.same:demo"
    # One parent, and it is resolved: a repeat never posts a second one left "Running…".
    [parent] = h.slack.top_level(CHANNEL)
    final = json.dumps(parent.blocks)
    assert "Done" in final and "waiting" not in final


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


async def test_killed_cli_run_becomes_interrupted_at_next_start(
    tmp_path: Path, open_runtime: RuntimeOpener
) -> None:
    provider = OpenAIFake(api_key="sk-hang").start()
    # The provider takes its time: the CLI is killed while its run is in flight.
    provider.queue("generations", Reply(200, {"created": 1, "data": []}, delay=60))
    config = (
        f'[routes.hang]\nkind = "openai"\napi_key = "sk-hang"\n'
        f'base_url = "{provider.url}"\nretries = 0\n'
    )
    (tmp_path / "imageroute.toml").write_text(config)
    database_url = f"sqlite:///{tmp_path}/imageroute.db"
    env = {
        **os.environ,
        "IMAGEROUTE_CONFIG": str(tmp_path / "imageroute.toml"),
        "DATABASE_URL": database_url,
        "ASSET_STORE": f"file://{tmp_path}/assets",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "gen", "--route", "hang", "slow one"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # The run row is written before the provider is called, so it is pending by now.
        await provider.server.received(lambda: provider.calls("generations"), timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        provider.stop()
    engine = make_engine(database_url)
    assert RunLog(engine).recent(1)[0].status == "pending"
    # The next process (here: a bot start on the same database) recovers it.
    runtime = open_runtime(config, role="bot")
    # The killed process never retired: it counts as dead once its heartbeat is stale.
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE workers SET seen_at = '2000-01-01 00:00:00'")
    orphans = await runtime.start_worker()
    assert STALE_AFTER.total_seconds() > HEARTBEAT_SECONDS
    assert [o.prompt for o in orphans] == ["slow one"]
    assert RunLog(engine).recent(1)[0].status == "interrupted"
    engine.dispose()


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
    [result] = h.slack.replies(CHANNEL, parent.ts)
    [image] = h.slack.images(result)
    assert image.data.startswith(b"\x89PNG")
    assert "could not be stored" in result.all_text()
    run = h.runtime.runlog.recent(1)[0]
    assert run.status == "failed" and run.error_class == "storage" and run.response_id

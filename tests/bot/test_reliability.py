"""No lost or doubled work: retried deliveries, crashes mid-run, storage failures."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from storage.db import make_engine
from storage.runlog import RunLog
from storage.tables import Run
from tests.bot.conftest import CHANNEL, button
from tests.conftest import RuntimeOpener
from tests.fakes.openai import OpenAIFake
from tests.fakes.server import FakeServer, Reply


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


async def test_a_dead_processs_run_is_settled_while_the_bot_runs(start_harness):
    # A short heartbeat: a worker is dead after 0.4 s without one; sweeps every 0.3 s.
    h = await start_harness(imageroute_heartbeat_seconds=0.1)
    parent = await h.bot.poster.post(CHANNEL, "parent of a run another process was running")
    assert parent is not None
    log = h.runtime.runlog
    # A run a replica wrote as pending, then died (kill -9) before finishing.
    log.heartbeat("bot-dead-1", "bot")
    orphan = log.start(
        Run(
            route_id="demo",
            route_kind="demo",
            model_requested="imageroute-demo-1",
            prompt="lost?",
            source="slack",
            slack_channel=CHANNEL,
            slack_user="U0USER0001",
            slack_thread_ts=parent,
            slack_parent_ts=parent,
            worker_id="bot-dead-1",
        )
    )
    with h.runtime.engine.begin() as conn:  # the dead worker's heartbeat is old
        conn.exec_driver_sql(
            "UPDATE workers SET seen_at = '2000-01-01 00:00:00' WHERE id = 'bot-dead-1'"
        )
    notes = await h.slack.received(lambda: h.slack.thread(CHANNEL, parent))
    assert log.get(orphan.id).status == "interrupted"
    assert len(notes) == 1 and "interrupted" in notes[0].text and f"#{orphan.id}" in notes[0].text
    [message] = [m for m in h.slack.top_level(CHANNEL) if m.ts == parent]
    await h.slack.received(lambda: message.updates)
    assert "Interrupted" in json.dumps(message.blocks)
    # Told once: later sweeps find nothing more to say.
    assert await h.runtime.liveness.sweep() == []
    assert len(h.slack.thread(CHANNEL, parent)) == 1


async def test_killed_cli_run_is_interrupted_by_a_live_process(
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
        "IMAGEROUTE_HEARTBEAT_SECONDS": "0.1",  # every process on a database beats alike
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
    # A live process on the same database notices within a few beats, not at its next start.
    runtime = open_runtime(config, role="bot", imageroute_heartbeat_seconds=0.1)
    found: asyncio.Queue[list[Run]] = asyncio.Queue()
    await runtime.start_worker(sweep=True, on_orphans=found.put)
    orphans = await asyncio.wait_for(found.get(), 10)
    assert [o.prompt for o in orphans] == ["slow one"]
    assert RunLog(engine).recent(1)[0].status == "interrupted"
    engine.dispose()


async def test_storage_failure_still_posts_the_image_and_keeps_it(start_harness, tmp_path):
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
    assert "kept on the bot's disk" in result.all_text()
    run = h.runtime.runlog.recent(1)[0]
    # Paid and delivered: a success, whose image waits in the spool for the asset store.
    assert run.status == "succeeded" and run.images == 1 and run.response_id
    assert h.runtime.runlog.assets(run.id, "output") == []
    [entry] = h.runtime.spool.entries()
    assert (entry / "0.png").read_bytes() == image.data
    # The store comes back: the next reconcile stores it and logs its asset.
    root.unlink()
    result = h.runtime.spool.reconcile(h.runtime.assets, h.runtime.runlog)
    assert (result.done, result.waiting) == (1, 0)
    [asset] = h.runtime.runlog.assets(run.id, "output")
    assert Path(asset.path).read_bytes() == image.data
    assert h.runtime.spool.entries() == []


async def test_a_verdict_keeps_the_note_that_the_image_waits_on_the_bots_disk(start_harness):
    h = await start_harness()
    root = Path(str(h.runtime.settings.asset_store).removeprefix("file://"))
    if root.exists():
        import shutil

        shutil.rmtree(root)
    root.write_text("not a folder")  # the asset store cannot take the image
    await h.command("/imagegen", 'route=demo prompt="keep me"')
    await h.settle()
    parent = h.slack.top_level(CHANNEL)[0]
    [result] = h.slack.replies(CHANNEL, parent.ts)
    assert "kept on the bot's disk" in result.all_text()

    await h.interact(h.click(result, button(result, "verdict_pass")))
    await h.settle()
    rewritten = json.dumps(result.updates[-1]["blocks"])
    assert "1 survives the next step" in rewritten
    assert "kept on the bot's disk" in rewritten  # the verdict does not hide where it is
    assert h.slack.images(result)  # and the image stays


async def test_a_run_cancelled_mid_call_is_interrupted_not_left_pending(
    open_runtime: RuntimeOpener,
) -> None:
    provider = FakeServer("openai").start()
    provider.on("POST", "/v1/images/generations", Reply(500, "late", delay=60))
    config = (
        f'[routes.hang]\nkind = "openai"\napi_key = "sk-hang"\n'
        f'base_url = "{provider.url}/v1"\nretries = 2\n'
    )
    runtime = open_runtime(config)
    from bot.core.runs import RunOrigin
    from routes.model import ImageRequest

    running = asyncio.create_task(
        runtime.runs.run("hang", ImageRequest(prompt="stopped by a deploy"), RunOrigin())
    )
    try:
        await provider.received(lambda: provider.calls("/v1/images/generations"))
        running.cancel()  # what a drain past its grace period does
        try:
            await running
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the cancellation was swallowed")
    finally:
        provider.stop()
    run = runtime.runlog.recent(1)[0]
    assert run.status == "interrupted" and run.error_class == "interrupted"
    assert len(provider.calls("/v1/images/generations")) == 1  # cancelled, not retried

"""A billed task survives a restart: the bot process is killed after BFL accepted the task, the
next start collects the task (polled, never submitted again), stores the image and posts it in
the run's Slack thread; a task whose result expired is named in the thread instead.

The first process is the real `imageroute serve --http`, sent a signed /imagegen and killed with
SIGKILL; the fakes (Slack, BFL) record what each process sent."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

import httpx
import pytest

from storage.db import make_engine, upgrade
from storage.runlog import RunLog
from storage.tables import Run, utcnow
from tests.bot.conftest import BOT_TOKEN, CHANNEL, SIGNING_SECRET, USER
from tests.fakes.bfl import BflFake
from tests.fakes.slack import SlackFake, signed_headers

T = TypeVar("T")


@pytest.fixture
def bfl() -> Iterator[BflFake]:
    fake = BflFake().start()
    fake.statuses = []  # Pending while `rendering` says so, then Ready
    yield fake
    fake.stop()


def flux_config(bfl: BflFake) -> str:
    return (
        f'[routes.flux]\nkind = "bfl"\nmodel = "flux-pro-1.1"\napi_key = "bfl-key"\n'
        f'base_url = "{bfl.url}"\npoll_interval_seconds = 0.05\ntimeout_seconds = 30\n'
        'retries = 1\nbilling_owner = "BFL account"\n'
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signed_command(text: str, slack: SlackFake) -> tuple[str, dict[str, str]]:
    body = urlencode(
        {
            "team_id": "T0TEAM",
            "channel_id": CHANNEL,
            "user_id": USER,
            "command": "/imagegen",
            "text": text,
            "api_app_id": "A0APP",
            "response_url": slack.response_url("restart"),
            "trigger_id": "trigger.restart.1",
        }
    )
    return body, signed_headers(body, SIGNING_SECRET)


def _orphaned_task(
    database_url: str,
    *,
    route_id: str,
    prompt: str,
    slack_thread_ts: str,
    task_id: str,
    task_polling_url: str,
    task_submitted_at: datetime,
) -> Run:
    """A billed FLUX task left pending by a bot process that died (its heartbeat long stale),
    as a live process finds it in the run log; the task expires ten minutes after submission."""
    engine = make_engine(database_url)
    upgrade(engine)
    log = RunLog(engine)
    log.heartbeat("bot-dead", "bot")
    orphan = log.start(
        Run(
            route_id=route_id,
            route_kind="bfl",
            model_requested="flux-pro-1.1",
            prompt=prompt,
            source="slack",
            slack_channel=CHANNEL,
            slack_thread_ts=slack_thread_ts,
            worker_id="bot-dead",
            task_id=task_id,
            task_polling_url=task_polling_url,
            task_submitted_at=task_submitted_at,
            task_expires_at=task_submitted_at + timedelta(minutes=10),
        )
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE workers SET seen_at = '2000-01-01 00:00:00'")
    engine.dispose()
    return orphan


def _scoreboard(slack: SlackFake, ts: str) -> str:
    """What the scoreboard message at `ts` shows now (it must say it was collected)."""
    [parent] = [m for m in slack.top_level(CHANNEL) if m.ts == ts]
    shown = json.dumps(parent.blocks, ensure_ascii=False)
    assert "collected after a restart" in shown, shown
    return shown


def _wait_for(check: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_task_accepted_before_a_kill_is_collected_after_restart_and_paid_once(
    bfl: BflFake, slack_fake: SlackFake, start_harness, tmp_path: Path
) -> None:
    killed = threading.Event()
    bfl.rendering = lambda: not killed.is_set()  # still running when the process dies
    config = flux_config(bfl)
    (tmp_path / "imageroute.toml").write_text(config)
    database_url = f"sqlite:///{tmp_path}/imageroute.db"
    port = _free_port()
    env = {
        **os.environ,
        "IMAGEROUTE_CONFIG": str(tmp_path / "imageroute.toml"),
        "DATABASE_URL": database_url,
        "ASSET_STORE": f"file://{tmp_path}/assets",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_fake.api_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--http", "--port", str(port), "--no-probes"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = make_engine(database_url)
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(healthy, 60, "serve --http to answer /healthz")
        body, headers = _signed_command('route=flux prompt="a fox in the snow"', slack_fake)
        response = httpx.post(
            f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers, timeout=10
        )
        assert response.status_code == 200
        runlog = RunLog(engine)
        # BFL accepted (and billed) the task and the run keeps its id: now the process dies.
        pending = _wait_for(
            lambda: [r for r in runlog.recent(5) if r.task_id], 30, "the task to be recorded"
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed.set()  # the render finishes while no process polls it
    [run] = pending
    assert run.status == "pending" and run.task_id == "task-1"
    assert len(bfl.submits("flux-pro-1.1")) == 1
    parent_ts = run.slack_thread_ts
    assert parent_ts is not None
    # The killed process never retired; it counts as dead once its heartbeat is stale.
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE workers SET seen_at = '2000-01-01 00:00:00'")
    engine.dispose()

    # The next process settles it within a few heartbeats (0.1 s here) of starting, then
    # collects the task in the background.
    h = await start_harness(config, database_url=database_url, imageroute_heartbeat_seconds=0.1)
    await slack_fake.received(lambda: slack_fake.thread(CHANNEL, parent_ts), timeout=60)
    await h.settle(timeout=60)
    final = h.runtime.runlog.get(run.id)
    assert final is not None and final.status == "succeeded", final
    assert final.response_id == "task-1" and final.images == 1
    assert final.cost_usd == pytest.approx(0.04) and final.cost_basis == "list_price"
    assert final.provider_metadata.get("collected_after_restart") is True
    assert len(h.runtime.runlog.assets(run.id, "output")) == 1
    # Exactly one billed submit over both processes; the second one only polled task-1.
    assert len(bfl.submits("flux-pro-1.1")) == 1
    assert {p.query["id"][0] for p in bfl.server.calls("/us1/v1/get_result")} == {"task-1"}
    texts = [
        str(getattr(m, "text", "") or getattr(m, "comment", ""))
        for m in slack_fake.thread(CHANNEL, parent_ts)
    ]
    assert any("collected after the restart" in t and "task-1" in t for t in texts)
    [image] = slack_fake.images(
        next(m for m in slack_fake.replies(CHANNEL, parent_ts) if m.image_blocks())
    )
    assert image.data[:3] == b"\xff\xd8\xff"  # the FLUX JPEG, shown as it came
    assert not [t for t in texts if "was interrupted" in t]
    # The scoreboard its request opened says how it ended, not "waiting" for ever.
    status = _scoreboard(slack_fake, parent_ts)
    assert "waiting" not in status and "Done · each result" in status, status


async def test_a_task_whose_result_expired_is_named_in_its_thread(
    bfl: BflFake, start_harness, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path}/expired.db"
    submitted = utcnow() - timedelta(minutes=15)
    orphan = _orphaned_task(
        database_url,
        route_id="flux",
        prompt="too late",
        slack_thread_ts="1699999999.000200",
        task_id="task-old-7",
        task_polling_url=f"{bfl.url}/us1/v1/get_result?id=task-old-7",
        task_submitted_at=submitted,
    )

    h = await start_harness(
        flux_config(bfl), database_url=database_url, imageroute_heartbeat_seconds=0.1
    )
    await h.slack.received(lambda: h.slack.thread(CHANNEL, "1699999999.000200"))
    await h.settle()
    row = h.runtime.runlog.get(orphan.id)
    assert row is not None and row.status == "interrupted"
    assert "task task-old-7" in (row.error_message or "") and row.error_request_id == "task-old-7"
    [note] = h.slack.thread(CHANNEL, "1699999999.000200")
    assert "interrupted" in note.text and "`task-old-7`" in note.text
    assert bfl.server.calls() == []  # an expired task is not polled, and nothing is resubmitted


async def test_a_task_on_a_route_this_process_lacks_is_told_once(
    bfl: BflFake, start_harness, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path}/elsewhere.db"
    orphan = _orphaned_task(
        database_url,
        route_id="flux-eu",  # configured on the replica that died, not on this one
        prompt="far away",
        slack_thread_ts="1699999999.000300",
        task_id="task-eu-9",
        task_polling_url=f"{bfl.url}/eu1/v1/get_result?id=task-eu-9",
        task_submitted_at=utcnow(),
    )

    h = await start_harness(
        flux_config(bfl), database_url=database_url, imageroute_heartbeat_seconds=0.1
    )
    await h.slack.received(lambda: h.slack.thread(CHANNEL, "1699999999.000300"))
    await h.settle()
    row = h.runtime.runlog.get(orphan.id)
    assert row is not None and row.status == "interrupted"
    assert "flux-eu is no longer configured here" in (row.error_message or "")
    # The task can still be collected (by a process with that route), so it stays on the
    # list the sweep reads: later sweeps here must not tell the thread again.
    for _ in range(3):
        await h.runtime.liveness.sweep()
    await h.settle()
    [note] = h.slack.thread(CHANNEL, "1699999999.000300")
    assert "interrupted" in note.text and "`task-eu-9`" in note.text
    assert bfl.server.calls() == []  # never polled from a process without the route

"""The fault suite: the real server process (`imageroute serve --http`) against the fake Slack
and fake providers, through deploys, crashes, outages and hostile input.

Each case ends by asserting that nothing was lost: every run finished or interrupted (none left
pending), its thread told, the parent message its request opened resolved, and every image a
provider returned in the asset store (with its run-log row) or waiting in the spool.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from storage.db import make_engine
from storage.runlog import RunLog
from storage.tables import Run
from tests.conftest import PostgresCluster, pg_bin
from tests.fakes.openai import OpenAIFake, png
from tests.fakes.server import RecordedRequest, Reply
from tests.fakes.slack import Message, SlackFake, Upload
from tests.faults.conftest import Launch
from tests.faults.server import CHANNEL, USER, ServerProcess, free_port

API_KEY = "sk-fault-provider-key-0123456789"


def _image_reply(delay: float = 0.0) -> Reply:
    body = {
        "created": 1,
        "data": [{"b64_json": base64.b64encode(png("teal")).decode()}],
        "usage": {
            "input_tokens": 20,
            "output_tokens": 272,
            "total_tokens": 292,
            "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
        },
    }
    return Reply(200, body, headers={"x-request-id": "req_fault_ok"}, delay=delay)


def _openai_config(fake: OpenAIFake, *, timeout: float = 120) -> str:
    return f"""
[routes.slow]
kind = "openai"
model = "gpt-image-2"
api_key = "{API_KEY}"
base_url = "{fake.url}"
billing_owner = "Fault team"
timeout_seconds = {timeout}
retries = 0
"""


@pytest.fixture
def provider() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(api_key=API_KEY).start()
    yield fake
    fake.stop()


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/imageroute.db"


async def _until(slack: SlackFake, predicate: Any, timeout: float = 30.0) -> Any:
    return await slack.received(predicate, timeout)


async def _health_until(
    server: ServerProcess, predicate: Any, timeout: float = 60.0
) -> dict[str, Any]:
    """/healthz polled until `predicate(body)` holds: the process's own account of itself."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _, body = await server.health()
        if predicate(body):
            return body
        await asyncio.sleep(0.1)  # a process outside the test: its state can only be asked
    raise AssertionError(f"/healthz never satisfied the condition: {body}")


def _parents(slack: SlackFake) -> list[Message]:
    return [m for m in slack.top_level(CHANNEL) if "asked for an image" in m.text]


def _status(message: Message) -> str:
    return json.dumps(message.blocks or [], ensure_ascii=False)


def _resolved(message: Message) -> bool:
    """A scoreboard says how its request ended: no route still waiting for its result."""
    return "results arrive in the thread" not in _status(message)


def _text(item: Message | Upload) -> str:
    return (item.comment or "") if isinstance(item, Upload) else item.all_text()


def _result(slack: SlackFake, parent: Message) -> Message:
    """The thread's result message (the image shown through an image block)."""
    [result] = [m for m in slack.replies(CHANNEL, parent.ts) if m.image_blocks()]
    return result


def assert_nothing_lost(database_url: str, slack: SlackFake, spools: list[Path]) -> list[Run]:
    """Every run settled, told and resolved; every returned image stored or spooled."""
    engine = make_engine(database_url)
    try:
        runlog = RunLog(engine)
        runs = runlog.recent(500)
        for run in runs:
            assert run.status in ("succeeded", "failed", "interrupted"), (run.id, run.status)
            if run.source != "slack" or not run.slack_thread_ts:
                continue
            thread = slack.thread(str(run.slack_channel), run.slack_thread_ts)
            told = [m for m in thread if f"#{run.id}" in _text(m)]
            answered = [r for r in slack.responses if f"#{run.id}" in json.dumps(r)]
            assert told or answered, f"run #{run.id} ({run.status}) was never told"
            if run.slack_parent_ts:
                [parent] = [m for m in slack.top_level() if m.ts == run.slack_parent_ts]
                # Resolved, or (the bot removed from the channel, Slack refusing the edit) the
                # requester has the result directly with the hint to invite the bot back.
                resolved = _resolved(parent)
                removed = [a for a in answered if "invite me back" in json.dumps(a)]
                assert resolved or removed, f"parent of run #{run.id} never resolved"
            if run.images:
                stored = runlog.assets(run.id or 0, "output")
                spooled = [
                    entry
                    for spool in spools
                    if spool.is_dir()
                    for entry in spool.iterdir()
                    if entry.name.startswith(f"run-{run.id}-")
                ]
                assert len(stored) == run.images or spooled, f"run #{run.id} lost its images"
                for asset in stored:
                    if asset.path.startswith("/"):
                        assert Path(asset.path).read_bytes()[:4] == b"\x89PNG"
        return runs
    finally:
        engine.dispose()


# -- deploys and crashes --------------------------------------------------------------------
async def test_sigterm_mid_run_finishes_the_run_and_turns_new_work_away(
    launch: Launch, slack: SlackFake, provider: OpenAIFake, tmp_path: Path
) -> None:
    provider.queue("generations", _image_reply(delay=2.0))
    db = _sqlite(tmp_path)
    server = launch(_openai_config(provider), db, IMAGEROUTE_DRAIN_SECONDS="30")
    await server.command("/imagegen", 'route=slow prompt="a lighthouse at dusk"')
    await provider.server.received(lambda: provider.calls("generations"))
    server.signal(signal.SIGTERM)
    # Still answering while it drains: new work hears "restarting", health says draining.
    await _health_until(server, lambda b: b["status"] == "draining")
    response = await server.command("/imagegen", 'route=slow prompt="too late"')
    assert response.status_code == 200 and "restarting" in response.json()["text"]
    assert (await server.health())[0] == 503
    assert await asyncio.to_thread(server.wait, 60) == 0
    assert "drained" in server.log()
    [run] = assert_nothing_lost(db, slack, [server.folder / "spool"])
    assert run.status == "succeeded" and run.prompt == "a lighthouse at dusk"
    [parent] = _parents(slack)
    assert "Done · each result is in the thread" in _status(parent)
    assert len(provider.calls("generations")) == 1  # the late command never ran


async def test_sigterm_past_the_grace_period_interrupts_and_says_so(
    launch: Launch, slack: SlackFake, provider: OpenAIFake, tmp_path: Path
) -> None:
    provider.queue("generations", _image_reply(delay=60.0))
    db = _sqlite(tmp_path)
    server = launch(_openai_config(provider), db, IMAGEROUTE_DRAIN_SECONDS="1")
    await server.command("/imagegen", 'route=slow prompt="a very slow render"')
    await provider.server.received(lambda: provider.calls("generations"))
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert await asyncio.to_thread(server.wait, 60) == 0
    assert time.monotonic() - started < 20  # bounded by the grace period, not the provider
    [run] = assert_nothing_lost(db, slack, [server.folder / "spool"])
    assert run.status == "interrupted"
    [parent] = _parents(slack)
    assert "Interrupted" in _status(parent)
    thread = slack.thread(CHANNEL, parent.ts)
    assert any(f"Run #{run.id} on `slow` was interrupted" in _text(m) for m in thread)


async def test_kill_9_and_quick_restart_settles_the_run_within_a_minute(
    launch: Launch, slack: SlackFake, provider: OpenAIFake, tmp_path: Path
) -> None:
    provider.queue("generations", _image_reply(delay=120.0))
    db = _sqlite(tmp_path)
    first = launch(_openai_config(provider), db, name="first")
    await first.command("/imagegen", 'route=slow prompt="lost in a crash?"')
    await provider.server.received(lambda: provider.calls("generations"))
    first.kill()  # SIGKILL: no drain, no goodbye
    killed_at = time.monotonic()
    second = launch(_openai_config(provider), db, name="second")
    [parent] = _parents(slack)
    notes = await _until(
        slack,
        lambda: [m for m in slack.thread(CHANNEL, parent.ts) if "interrupted" in _text(m)],
        timeout=60,
    )
    assert time.monotonic() - killed_at < 60
    # Told once, even after more sweeps of the live process.
    swept = (await second.health())[1]["sweeps"]
    await _health_until(second, lambda b: b["sweeps"] >= swept + 2)
    assert len([m for m in slack.thread(CHANNEL, parent.ts) if "interrupted" in _text(m)]) == 1
    assert len(notes) == 1
    await _until(slack, lambda: "Interrupted" in _status(parent))
    [run] = assert_nothing_lost(db, slack, [first.folder / "spool", second.folder / "spool"])
    assert run.status == "interrupted"


# -- stores going away ------------------------------------------------------------------------
@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL of this test's own, which it stops and starts."""
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries are not installed (.ci/run installs them)")
    cluster = PostgresCluster(bin_dir)
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.mark.postgres
async def test_database_stopped_mid_run_keeps_the_image_and_logs_it_when_back(
    launch: Launch, slack: SlackFake, provider: OpenAIFake, cluster: PostgresCluster
) -> None:
    provider.queue("generations", _image_reply(delay=2.0))
    server = launch(_openai_config(provider), cluster.url)
    await server.command("/imagegen", 'route=slow prompt="paid for, then the database left"')
    await provider.server.received(lambda: provider.calls("generations"))
    await asyncio.to_thread(cluster.stop)
    # The provider answers; the image reaches Slack and the spool, the parent is resolved.
    [parent] = _parents(slack)
    await _until(slack, lambda: [m for m in slack.replies(CHANNEL, parent.ts) if m.image_blocks()])
    await _until(slack, lambda: "Done · each result" in _status(parent))
    result = _result(slack, parent)
    [upload] = slack.images(result)
    assert upload.data[:4] == b"\x89PNG" and "kept on the bot's disk" in result.all_text()
    status, body = await server.health()
    assert status == 503 and body["database"].startswith("error") and body["spooled"] == 1
    # A command while the database is down: one sentence, no parent left hanging.
    await server.command("/imagegen", 'route=slow prompt="while it is down"')
    await _until(slack, lambda: [m for m in slack.ephemerals() if "run log" in m.text])
    assert len(_parents(slack)) == 1
    await asyncio.to_thread(cluster.start)
    await _health_until(server, lambda b: b["spooled"] == 0 and b["database"] == "ok")
    runs = assert_nothing_lost(cluster.url, slack, [server.folder / "spool"])
    [run] = runs
    assert run.status == "succeeded" and run.response_id == "req_fault_ok"
    engine = make_engine(cluster.url)
    [asset] = RunLog(engine).assets(run.id or 0, "output")
    assert Path(asset.path).read_bytes() == upload.data
    assert [a.ok for a in RunLog(engine).attempts(run.id or 0)] == [True]
    engine.dispose()
    assert len(provider.calls("generations")) == 1  # nothing ran while the log was down
    assert not [m for m in slack.thread(CHANNEL, parent.ts) if "interrupted" in _text(m)]


async def test_unreachable_s3_keeps_the_image_and_healthz_says_so(
    launch: Launch, slack: SlackFake, tmp_path: Path
) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server_s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server_s3.start()
    endpoint = f"http://127.0.0.1:{port}"
    aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="faults")
    db = _sqlite(tmp_path)
    config = '[routes.demo]\nkind = "demo"\nbilling_owner = "Demo team"\n'
    try:
        bot = launch(config, db, ASSET_STORE="s3://faults/img", **aws)
        assert (await bot.health())[1]["asset_store"] == "ok"
    finally:
        server_s3.stop()  # S3 unreachable
    status, body = await bot.health()
    assert status == 503 and body["asset_store"].startswith("error")
    await bot.command("/imagegen", 'route=demo prompt="a kite while S3 is away"')
    await _until(slack, lambda: _parents(slack) and "Done · each" in _status(_parents(slack)[0]))
    [parent] = _parents(slack)
    result = _result(slack, parent)
    [upload] = slack.images(result)
    assert "kept on the bot's disk" in result.all_text()
    assert (await bot.health())[1]["spooled"] == 1
    assert_nothing_lost(db, slack, [bot.folder / "spool"])
    # S3 is back (same address, same buckets: moto keeps them in this process).
    back = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    back.start()
    try:
        await _health_until(bot, lambda b: b["spooled"] == 0 and b["asset_store"] == "ok")
        [run] = assert_nothing_lost(db, slack, [bot.folder / "spool"])
        engine = make_engine(db)
        [asset] = RunLog(engine).assets(run.id or 0, "output")
        engine.dispose()
        assert asset.path.startswith("s3://faults/img/runs/")
        key = asset.path.removeprefix("s3://faults/")
        assert s3.get_object(Bucket="faults", Key=key)["Body"].read() == upload.data
    finally:
        back.stop()


# -- Slack misbehaving ------------------------------------------------------------------------
async def test_slack_rate_limits_and_removal_from_the_channel(
    launch: Launch, slack: SlackFake, provider: OpenAIFake, tmp_path: Path
) -> None:
    db = _sqlite(tmp_path)
    provider.queue("generations", _image_reply(), _image_reply(delay=2.0))
    server = launch(_openai_config(provider), db)
    # 429 twice with Retry-After: the bot waits and posts; nothing is lost or doubled.
    slack.fail("chat.postMessage", "ratelimited", times=2, status=429, **{"Retry-After": "1"})
    await server.command("/imagegen", 'route=slow prompt="under rate limits"')
    await _until(slack, lambda: _parents(slack) and "Done" in _status(_parents(slack)[0]))
    assert len(_parents(slack)) == 1
    # Removed from the channel mid-run: the result goes to the requester via response_url.
    await server.command("/imagegen", 'route=slow prompt="after the bot was removed"')
    await provider.server.received(lambda: len(provider.calls("generations")) == 2)
    for method in ("chat.postMessage", "files.completeUploadExternal", "chat.update"):
        slack.fail(method, "not_in_channel", times=20)
    answer = await _until(
        slack, lambda: [r for r in slack.responses if "invite me back" in r.get("text", "")]
    )
    assert "req_fault_ok" in answer[0]["text"]  # the run's context: route, cost, response id
    runs = assert_nothing_lost(db, slack, [server.folder / "spool"])
    assert [r.status for r in runs] == ["succeeded", "succeeded"]


# -- spend caps under pressure ----------------------------------------------------------------
CAPPED = """
[limits]
user_daily_spend_usd = 0.20

[routes.paid]
kind = "demo"
delay_seconds = 1.0
pricing = { usd_per_image = 0.04 }
"""


# No crash in these cases: the product's own heartbeat, not the suite's 0.25 s one, so a
# process starved of CPU on a loaded test machine is never taken for dead by its peer.
DEFAULT_BEAT = {"IMAGEROUTE_HEARTBEAT_SECONDS": "5"}


async def _pressure(servers: list[ServerProcess], slack: SlackFake, count: int) -> None:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as client:
        sends = [
            servers[i % len(servers)].command(
                "/imagegen", f'route=paid prompt="poster {i}"', client=client
            )
            for i in range(count)
        ]
        answers = await asyncio.gather(*sends)
    assert all(a.status_code == 200 for a in answers)
    await _until(
        slack,
        lambda: (
            len([m for m in slack.ephemerals() if "spend cap" in m.text])
            + len([p for p in _parents(slack) if "Done" in _status(p)])
            >= count
        ),
        timeout=120,
    )


async def test_cap_pressure_on_one_process_with_sqlite(
    launch: Launch, slack: SlackFake, tmp_path: Path
) -> None:
    db = _sqlite(tmp_path)
    server = launch(CAPPED, db, **DEFAULT_BEAT)
    await _pressure([server], slack, 30)
    runs = assert_nothing_lost(db, slack, [server.folder / "spool"])
    assert len(runs) == 5 and {r.status for r in runs} == {"succeeded"}
    assert len([m for m in slack.ephemerals() if "spend cap" in m.text]) == 25


@pytest.mark.postgres
async def test_cap_pressure_on_two_processes_sharing_postgresql(
    launch: Launch, slack: SlackFake, postgres_url: str
) -> None:
    servers = [
        launch(CAPPED, postgres_url, name="one", **DEFAULT_BEAT),
        launch(CAPPED, postgres_url, name="two", **DEFAULT_BEAT),
    ]
    await _pressure(servers, slack, 30)
    runs = assert_nothing_lost(postgres_url, slack, [s.folder / "spool" for s in servers])
    assert len(runs) == 5 and {r.status for r in runs} == {"succeeded"}
    assert len([m for m in slack.ephemerals() if "spend cap" in m.text]) == 25


# -- hostile text -----------------------------------------------------------------------------
GATEWAY_KEY = "gwkey-fault-0123456789abcdef"
HEADER_SECRET = "hdr-fault-fedcba9876543210"
INJECTION = "<!channel> <!here> @everyone <@U0BOSS> <https://evil.example|click me>"
LIVE = ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil", "@everyone")


def _echo(_endpoint: str, req: RecordedRequest) -> Reply:
    """A gateway that repeats the request in its error: credentials, header and prompt."""
    prompt = (req.json() or {}).get("prompt", "") if req.body else ""
    message = (
        f"upstream refused: {req.headers.get('authorization')} "
        f"x-gateway-secret={req.headers.get('x-gateway-secret')} prompt={prompt}"
    )
    return Reply(400, {"error": {"message": message, "type": "invalid_request_error"}})


def _everything_sent(slack: SlackFake) -> str:
    raw = [r.body.decode("utf-8", "replace") for r in slack.server.requests]
    return "\n".join(raw) + json.dumps(slack.responses)


def _rendered(value: Any) -> Any:
    """What Slack parses for markup: plain_text objects and image alt text are shown (or read
    out) exactly as typed, so a prompt in them is no live mention."""
    if isinstance(value, dict):
        if value.get("type") == "plain_text":
            return None
        return {k: _rendered(v) for k, v in value.items() if k != "alt_text"}
    if isinstance(value, list):
        return [_rendered(v) for v in value]
    return value


def _everything_shown(slack: SlackFake) -> str:
    """Every text Slack renders as mrkdwn: messages, their edits, file comments, views and
    response_url answers."""
    parts: list[str] = []
    for m in slack.messages:
        parts += [m.text, json.dumps(_rendered(m.blocks or []), ensure_ascii=False)]
        parts += [json.dumps(_rendered(u), ensure_ascii=False) for u in m.updates]
        if m.file is not None:
            parts.append(f"{m.file.comment}")
    parts += [json.dumps(_rendered(v), ensure_ascii=False) for v in slack.views]
    parts.append(json.dumps(_rendered(slack.responses), ensure_ascii=False))
    return "\n".join(parts)


def _tables(database_url: str) -> str:
    engine = make_engine(database_url)
    rows = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows += [json.dumps([str(v) for v in row]) for row in conn.execute(sa.select(table))]
    engine.dispose()
    return "\n".join(rows)


async def test_secrets_and_markup_echoed_back_reach_nothing(
    launch: Launch, slack: SlackFake, tmp_path: Path
) -> None:
    gateway = OpenAIFake(flavor="gateway", api_key=GATEWAY_KEY).start()
    gateway.intercept = _echo
    try:
        config = f"""
[probes]
interval_seconds = 1
jitter_seconds = 0
failure_threshold = 1

[routes.gw]
kind = "gateway"
model = "openai/gpt-image-2"
api_key = "{GATEWAY_KEY}"
base_url = "{gateway.url}"
headers = {{ "X-Gateway-Secret" = "{HEADER_SECRET}" }}
underlying_model = "gpt-image-2"
retries = 0
probe = "generate"

[routes.demo]
kind = "demo"
probe = "off"
"""
        db = _sqlite(tmp_path)
        server = launch(config, db, probes=True, ALERT_CHANNEL="C0ALERTS01")
        await server.command("/imagegen", f'route=gw prompt="a kite {INJECTION}"')
        await server.command("/imagegen", f'route=demo prompt="{INJECTION}"')
        refused = await server.command("/imagegen", 'route=demo prompt="nul\x00marker-7731"')
        await server.command("/imageroute", f"which route for posters {INJECTION}")
        # The prober's alert carries the gateway's echo: wait for it, then read health.
        await _until(slack, lambda: slack.top_level("C0ALERTS01"), timeout=60)
        await server.command("/imageroute", "health")
        await server.command("/imageroute", "runs")
        await server.event({"type": "app_home_opened", "user": USER, "tab": "home"})
        await _until(slack, lambda: slack.published())
        await _until(slack, lambda: len([p for p in _parents(slack) if _resolved(p)]) == 2)
        # The lookups are private answers, through each command's response_url.
        await _until(
            slack,
            lambda: {"Route health", "Recent runs"} <= {r.get("text") for r in slack.responses},
        )
        # The CLI on the same database and routes file.
        env = {**server.env, "PYTHONUNBUFFERED": "1"}
        cli = [
            subprocess.run(
                [sys.executable, "-m", "bot", *args],
                env=env,
                cwd=server.folder,
                capture_output=True,
                text=True,
                timeout=120,
            )
            for args in (["probe", "--route", "gw"], ["runs"], ["export"])
        ]
    finally:
        gateway.stop()
    assert gateway.calls("generations"), "the provider was called and echoed"
    sent, shown, stored = _everything_sent(slack), _everything_shown(slack), _tables(db)
    printed = "\n".join(p.stdout + p.stderr for p in cli)
    assert "upstream refused" in printed and "upstream refused" in stored
    for secret in (GATEWAY_KEY, HEADER_SECRET):
        for where, text in (
            ("slack", sent),
            ("tables", stored),
            ("cli", printed),
            ("log", server.log()),
        ):
            assert secret not in text, f"{secret} in {where}"
    assert "[redacted]" in stored and "[redacted]" in sent
    assert "upstream refused" in shown and "click me" in shown
    for live in LIVE:
        at = shown.find(live)
        assert at < 0, f"{live} shown live: ...{shown[max(0, at - 300) : at + 80]}"
    # The NUL prompt was refused at parsing with a sentence, and nothing stored it.
    assert "cannot be stored" in refused.json()["text"] and "marker-7731" not in stored
    assert_nothing_lost(db, slack, [server.folder / "spool"])

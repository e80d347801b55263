"""imageroute as a service, proven with real processes: two `imageroute serve --http` replicas
and two `imageroute prober` processes on one PostgreSQL database and one S3 store (a moto
server), with the fake Slack and fake OpenAI servers on loopback.

Migrations run once first, as the deployment's migrate step does. Signed requests go to the
replicas in turn and each runs its share, images in S3. A comparison started on one replica is
re-run from its button on the other. Killing (SIGKILL) the replica that holds a run in flight
gets that run marked interrupted and its thread told, once, by the surviving replica. Killing
the active prober hands probing to the other within one probe interval, and the alert and its
recovery are each posted once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from storage.checks import CheckLog
from storage.db import make_engine
from storage.runlog import RunLog
from storage.tables import Run
from tests.bot.conftest import BOT_TOKEN, CHANNEL, SIGNING_SECRET, USER, button
from tests.bot.processes import COLD, Process, Processes, command, interact, processes, wait_for
from tests.fakes.openai import OpenAIFake
from tests.fakes.server import Reply
from tests.fakes.slack import Message, SlackFake

pytestmark = pytest.mark.postgres

KEY = "sk-service-key-0123456789"
ALERTS = "C0ALERTS01"
BUCKET = "imageroute-service-test"
PROBE_INTERVAL = 2.0  # seconds: short, so a handoff is quick to see
PROBE_PATH = "/v1/models/gpt-image-2"  # the openai route's free auth probe
# Heartbeats every second: a dead replica is stale after 4 s and swept within 3 s more.
HEARTBEAT = 1.0


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(api_key=KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def held_fake() -> Iterator[OpenAIFake]:
    """A provider that accepts a generation and does not answer while the test runs."""
    fake = OpenAIFake(api_key=KEY).start()
    fake.server.on("POST", "/v1/images/generations", Reply(200, {}, delay=600))
    yield fake
    fake.stop()


def routes_file(openai: OpenAIFake, held: OpenAIFake) -> str:
    return f"""
[probes]
interval_seconds = {PROBE_INTERVAL}
jitter_seconds = 0
failure_threshold = 1
success_threshold = 1
repeat_alert_minutes = 600

[routes.demo]
kind = "demo"
billing_owner = "Demo team"
probe = "off"

[routes.openai]
kind = "openai"
model = "gpt-image-2"
api_key = "{KEY}"
base_url = "{openai.server.url}/v1"
billing_owner = "Acme OpenAI org"
probe = "auth"
retries = 0

[routes.held]
kind = "openai"
model = "gpt-image-2"
api_key = "{KEY}"
base_url = "{held.server.url}/v1"
billing_owner = "Acme OpenAI org"
probe = "off"
retries = 0
timeout_seconds = 600
"""


@pytest.fixture
def service(
    tmp_path: Path,
    postgres_url: str,
    s3_server: str,
    slack_fake: SlackFake,
    openai_fake: OpenAIFake,
    held_fake: OpenAIFake,
) -> Iterator[Processes]:
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=BUCKET)
    routes = tmp_path / "imageroute.toml"
    routes.write_text(routes_file(openai_fake, held_fake))
    env = {
        "IMAGEROUTE_CONFIG": str(routes),
        "DATABASE_URL": postgres_url,
        "ASSET_STORE": f"s3://{BUCKET}/service",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_fake.api_url,
        "ALERT_CHANNEL": ALERTS,
        "LOG_FORMAT": "json",
        "IMAGEROUTE_HEARTBEAT_SECONDS": str(HEARTBEAT),
    }
    yield from processes(tmp_path, env)


def pid_of(run: Run) -> int:
    """The process that ran `run` (its worker id is role-host-pid-random)."""
    assert run.worker_id is not None
    return int(run.worker_id.split("-")[-2])


def rerun_button(slack: SlackFake, run_id: int) -> tuple[Message, dict[str, Any]] | None:
    """The message carrying run `run_id`'s Re-run button, and the button."""
    for message in list(slack.messages):
        try:
            found = button(message, "rerun")
        except AssertionError:
            continue
        if found.get("value") == str(run_id):
            return message, found
    return None


def click(slack: SlackFake, message: Message, action: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": USER},
        "team": {"id": "T0TEAM"},
        "channel": {"id": CHANNEL},
        "container": {"type": "message", "channel_id": CHANNEL, "message_ts": message.ts},
        "message": {"ts": message.ts, "thread_ts": message.thread_ts, "blocks": message.blocks},
        "trigger_id": f"trigger.click.{n}",
        "response_url": slack.response_url(f"click-{n}"),
        "actions": [{**action, "action_ts": f"{time.time():.6f}", "block_id": "result"}],
    }


def runs_total(process: Process, route: str, status: str = "succeeded") -> float:
    key = ("imageroute_runs_total", (("error_class", "none"), ("route", route), ("status", status)))
    return process.metrics().get(key, 0.0)


def took_the_lock_at(prober: Process) -> float | None:
    """When `prober` became the active prober, from its own log line (JSON, epoch seconds)."""
    for line in prober.json_lines():
        if line["message"] == "this process is the active prober":
            return datetime.fromisoformat(line["time"]).timestamp()
    return None


def active_prober(probers: list[Process]) -> Process | None:
    leading = [p for p in probers if p.get("/healthz").json().get("active")]
    assert len(leading) <= 1, "two probers active at once"
    return leading[0] if leading else None


def succeeded_runs(runlog: RunLog, count: int) -> list[Run] | None:
    rows = runlog.recent(20)
    if len(rows) == count and all(r.status == "succeeded" for r in rows):
        return rows
    return None


def requests_alternate(a: Process, b: Process, slack: SlackFake, runlog: RunLog) -> list[Run]:
    """Four commands, sent to A and B in turn: each replica runs what it was asked, and
    counts it on its own /metrics."""
    asks = [
        (a, 'route=demo,openai prompt="a kite over the sea"'),
        (b, 'route=demo prompt="a lighthouse"'),
        (a, 'route=openai prompt="a harbour at dawn"'),
        (b, 'route=demo,openai prompt="two boats"'),
    ]
    for n, (replica, text) in enumerate(asks):
        answer = command(
            replica, text, response_url=slack.response_url(f"ask-{n}"), trigger=f"t.ask.{n}"
        )
        assert answer.status_code == 200
    runs = wait_for(lambda: succeeded_runs(runlog, 6), COLD, "six runs to succeed")
    by_pid = {a.popen.pid: 0, b.popen.pid: 0}
    for run in runs:
        by_pid[pid_of(run)] += 1
    assert by_pid == {a.popen.pid: 3, b.popen.pid: 3}
    assert runs_total(a, "demo") + runs_total(b, "demo") == 3
    assert runs_total(a, "openai") == 2 and runs_total(b, "openai") == 1
    # Each replica's checks process (started by `python -m bot serve`) checked its runs.
    checks = CheckLog(runlog.engine)

    def all_checked() -> list[list[Any]] | None:
        stored = [list(checks.for_run(r.id or 0)) for r in runs]
        return stored if all(stored) else None

    checked = wait_for(all_checked, COLD, "every run's acceptance checks")
    assert all(row.status != "not_run" for rows in checked for row in rows)
    return runs


def rerun_elsewhere(
    first: Run, other: Process, slack: SlackFake, runlog: RunLog, s3_server: str
) -> Run:
    """`first`'s Re-run button clicked, the click sent to `other`: the re-run is `other`'s,
    in the same thread, and both runs' images are in S3."""
    run_id = first.id
    assert run_id is not None
    message, rerun = wait_for(lambda: rerun_button(slack, run_id), COLD, "the Re-run button")
    assert interact(other, click(slack, message, rerun, 1)).status_code == 200

    def rerun_done() -> list[Run]:
        return [
            r
            for r in runlog.recent(20)
            if r.id != run_id
            and r.prompt == first.prompt
            and r.route_id == first.route_id
            and r.status == "succeeded"
        ]

    [again] = wait_for(rerun_done, COLD, "the re-run to succeed")
    assert pid_of(again) == other.popen.pid
    assert again.slack_thread_ts == first.slack_thread_ts
    store = boto3.client("s3", endpoint_url=s3_server)
    for row in (first, again):
        assert row.id is not None
        [asset] = runlog.assets(row.id, "output")
        key = asset.path.removeprefix(f"s3://{BUCKET}/")
        assert store.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0
    return again


def killed_in_flight(
    holder: Process, survivor: Process, slack: SlackFake, held: OpenAIFake, runlog: RunLog
) -> float:
    """A run on the held route, started on `holder`, in flight at the provider when `holder`
    is killed: the survivor marks it interrupted and tells its thread once. Returns the seconds
    from the kill to the interruption."""
    answer = command(
        holder,
        'route=held prompt="a slow sunrise"',
        response_url=slack.response_url("held"),
        trigger="t.held",
    )
    assert answer.status_code == 200
    held.server.wait_until(lambda: held.server.calls("/v1/images/generations"), COLD)

    def pending() -> Run | None:
        rows = [r for r in runlog.recent(20) if r.route_id == "held"]
        return rows[0] if rows and rows[0].status == "pending" else None

    run = wait_for(pending, COLD, "the held run to be pending")
    assert pid_of(run) == holder.popen.pid and run.slack_thread_ts is not None
    sweeps_before = survivor.get("/healthz").json()["sweeps"]
    holder.kill()
    killed_at = time.time()

    def interrupted() -> Run | None:
        row = runlog.get(run.id) if run.id is not None else None
        return row if row is not None and row.status == "interrupted" else None

    wait_for(interrupted, COLD, "the survivor to interrupt the run")
    settled = time.time() - killed_at

    def told() -> list[Message]:
        return [
            m
            for m in slack.thread(CHANNEL, run.slack_thread_ts or "")
            if isinstance(m, Message) and f"Run #{run.id} on `held` was interrupted" in m.text
        ]

    slack.server.wait_until(told, COLD)
    # Two more sweeps by the survivor: the thread is not told again.
    wait_for(
        lambda: survivor.get("/healthz").json()["sweeps"] >= sweeps_before + 3,
        COLD,
        "two more sweeps",
    )
    assert len(told()) == 1
    interrupted_key = (
        "imageroute_runs_total",
        (("error_class", "interrupted"), ("route", "held"), ("status", "interrupted")),
    )
    assert survivor.metrics()[interrupted_key] == 1
    return settled


def probes_after(openai: OpenAIFake, since: float) -> list[Any]:
    return [c for c in openai.server.calls(PROBE_PATH) if c.received_at > since]


def test_two_replicas_and_two_probers_share_one_database_and_store(
    service: Processes,
    slack_fake: SlackFake,
    openai_fake: OpenAIFake,
    held_fake: OpenAIFake,
    postgres_url: str,
    s3_server: str,
) -> None:
    # The route's probe fails from the start: the first round opens an incident and alerts.
    openai_fake.server.on(
        "GET", PROBE_PATH, Reply(503, {"error": {"message": "overloaded", "type": "server_error"}})
    )
    # Migrations once, before any replica starts (the deployment's migrate step).
    service.run_once("migrate", "db", "upgrade")
    a = service.start("replica-a", "serve", "--http", "--port", "{port}", "--no-probes")
    b = service.start("replica-b", "serve", "--http", "--port", "{port}", "--no-probes")
    probers = [service.start(f"prober-{n}", "prober", "--port", "{port}") for n in (1, 2)]
    for process in (a, b, *probers):
        process.wait_healthy()
    runlog = RunLog(make_engine(postgres_url))

    runs = requests_alternate(a, b, slack_fake, runlog)

    # A comparison started on A is re-run from its button, handled by B.
    [first] = [r for r in runs if r.prompt == "a kite over the sea" and r.route_id == "openai"]
    assert pid_of(first) == a.popen.pid
    rerun_elsewhere(first, b, slack_fake, runlog, s3_server)
    assert runs_total(b, "openai") == 2

    # A dies holding a run in flight: B, which survives, settles it. A heartbeat is stale
    # after four beats and B sweeps every three: within about seven beats of the kill.
    settled = killed_in_flight(a, b, slack_fake, held_fake, runlog)
    assert settled <= HEARTBEAT * (4 + 3) + 3, f"interrupted {settled:.1f} s after the kill"

    # One alert for the failing route, from whichever prober leads.
    def alerts() -> list[Message]:
        return slack_fake.top_level(ALERTS)

    slack_fake.server.wait_until(alerts, COLD)
    leader = wait_for(lambda: active_prober(probers), COLD, "an active prober")
    [standby] = [p for p in probers if p is not leader]
    assert standby.get("/healthz").json()["active"] is False

    # Killing the active prober hands probing to the other within one interval.
    leader.kill()
    killed_at = time.time()
    took_lock = wait_for(lambda: took_the_lock_at(standby), PROBE_INTERVAL * 5, "a new prober")
    handoff = took_lock - killed_at
    assert handoff <= PROBE_INTERVAL + 1.5, f"the standby took over {handoff:.2f} s after the kill"
    openai_fake.server.wait_until(lambda: probes_after(openai_fake, took_lock), COLD)
    assert standby.get("/healthz").json()["active"] is True
    # Two more rounds on the new prober: the open incident is not alerted again.
    later = time.time()
    openai_fake.server.wait_until(
        lambda: len(probes_after(openai_fake, later)) >= 2, PROBE_INTERVAL * 10
    )

    # The route recovers: one recovery, in the alert's thread, and no second alert.
    openai_fake.server.on("GET", PROBE_PATH, Reply(200, {"id": "gpt-image-2", "object": "model"}))
    [alert] = alerts()

    def recoveries() -> list[Any]:
        return [
            m
            for m in slack_fake.thread(ALERTS, alert.ts)
            if "recovered" in str(getattr(m, "text", ""))
        ]

    slack_fake.server.wait_until(recoveries, PROBE_INTERVAL * 10)
    recovered = time.time()
    openai_fake.server.wait_until(
        lambda: len(probes_after(openai_fake, recovered)) >= 2, PROBE_INTERVAL * 10
    )
    assert len(alerts()) == 1 and len(recoveries()) == 1
    samples = standby.metrics()
    assert samples[("imageroute_prober_active", ())] == 1
    assert samples[("imageroute_route_state", (("route", "openai"), ("state", "healthy")))] == 1

"""What an operator reads from real processes: `imageroute serve --http` with LOG_FORMAT=json
writes one JSON event per line (the run line names its run, route, Slack team and channel, the
proxy's request id and its duration) and never a route key a provider echoed back; GET /metrics
counts the runs. `imageroute prober --port` answers /healthz and /metrics once it has probed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.conftest import BOT_TOKEN, CHANNEL, SIGNING_SECRET
from tests.bot.processes import COLD, Process, Processes, command, processes, wait_for
from tests.fakes.openai import OpenAIFake
from tests.fakes.server import Reply
from tests.fakes.slack import SlackFake

KEY = "sk-live-route-key-77aa88bb99cc"


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(api_key=KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def procs(tmp_path: Path, slack_fake: SlackFake, openai_fake: OpenAIFake) -> Iterator[Processes]:
    routes = tmp_path / "imageroute.toml"
    routes.write_text(
        f"""
[probes]
interval_seconds = 3600
jitter_seconds = 0

[routes.demo]
kind = "demo"
billing_owner = "Demo team"

[routes.openai]
kind = "openai"
model = "gpt-image-2"
api_key = "{KEY}"
base_url = "{openai_fake.server.url}/v1"
billing_owner = "Acme OpenAI org"
retries = 0
"""
    )
    env = {
        "IMAGEROUTE_CONFIG": str(routes),
        "DATABASE_URL": f"sqlite:///{tmp_path}/imageroute.db",
        "ASSET_STORE": f"file://{tmp_path}/assets",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_fake.api_url,
        "LOG_FORMAT": "json",
    }
    yield from processes(tmp_path, env)


def run_line(process: Process, route: str) -> dict[str, object] | None:
    found = [
        line for line in process.json_lines() if line.get("route") == route and "run_id" in line
    ]
    return found[-1] if found else None


def test_serve_writes_json_lines_and_counts_runs(procs, slack_fake, openai_fake) -> None:
    # The provider repeats the route's key in its error, as some gateways do.
    openai_fake.server.on(
        "POST",
        "/v1/images/generations",
        Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "auth"}}),
    )
    bot = procs.start("bot", "serve", "--http", "--port", "{port}", "--no-probes")
    bot.wait_healthy()

    answer = command(
        bot,
        'route=demo prompt="a red kite"',
        response_url=slack_fake.response_url("json-1"),
        trigger="trigger.json.1",
        request_id="req-proxy-0001",
    )
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "req-proxy-0001"
    command(
        bot,
        'route=openai prompt="a blue kite"',
        response_url=slack_fake.response_url("json-2"),
        trigger="trigger.json.2",
    )
    demo = wait_for(lambda: run_line(bot, "demo"), COLD, "the demo run's log line")
    failed = wait_for(lambda: run_line(bot, "openai"), COLD, "the openai run's log line")
    assert len(openai_fake.server.calls("/v1/images/generations")) == 1

    assert demo["status"] == "succeeded" and demo["request_id"] == "req-proxy-0001"
    assert demo["slack_team"] == "T0TEAM" and demo["slack_channel"] == CHANNEL
    assert isinstance(demo["run_id"], int) and isinstance(demo["duration_s"], float)
    assert demo["level"] == "INFO" and demo["logger"] == "bot.core.runs"
    assert failed["status"] == "failed" and failed["error_class"] == "auth"
    assert len(str(failed["request_id"])) == 16  # no proxy id: the replica made one
    [answered] = [
        line
        for line in bot.json_lines()
        if line.get("request_id") == "req-proxy-0001" and line.get("status_code") == 200
    ]
    assert answered["slack_kind"] == "command" and answered["duration_s"] < 3

    samples = bot.metrics()
    key = (
        "imageroute_runs_total",
        (("error_class", "none"), ("route", "demo"), ("status", "succeeded")),
    )
    assert samples[key] == 1
    key = (
        "imageroute_runs_total",
        (("error_class", "auth"), ("route", "openai"), ("status", "failed")),
    )
    assert samples[key] == 1
    assert samples[("imageroute_slack_ack_seconds_count", (("kind", "command"),))] == 2

    bot.stop()
    text = bot.log()
    assert KEY not in text
    assert all(line.startswith("{") for line in text.splitlines() if line.strip()), text[:2000]


def test_the_prober_answers_healthz_and_metrics_after_a_round(procs, openai_fake) -> None:
    prober = procs.start("prober", "prober", "--port", "{port}")
    prober.wait_healthy()
    # The first round probes the OpenAI route's credentials (a free models lookup).
    openai_fake.server.wait_until(lambda: openai_fake.server.calls("/v1/models/gpt-image-2"), COLD)

    def probed() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = prober.metrics()
        state = ("imageroute_route_state", (("route", "openai"), ("state", "healthy")))
        return samples if samples.get(state) == 1 else None

    samples = wait_for(probed, COLD, "the round's route states on /metrics")
    assert samples[("imageroute_prober_active", ())] == 1
    ok = (("error_class", "none"), ("kind", "auth"), ("result", "ok"), ("route", "openai"))
    assert samples[("imageroute_probes_total", ok)] == 1
    assert (
        samples[("imageroute_probe_latency_seconds_count", (("kind", "auth"), ("route", "openai")))]
        == 1
    )
    assert samples[("imageroute_build_info", (("role", "prober"), ("version", "0.1.0")))] == 1
    health = prober.get("/healthz").json()
    assert health["status"] == "ok" and health["active"] is True and health["rounds"] >= 1
    assert prober.stop() == 0
    lines = prober.json_lines()
    assert any(line.get("route") == "openai" and line.get("probe_kind") == "auth" for line in lines)

"""Health probes and on-call alerts, against a fake OpenAI-compatible API switched between
healthy, failing and slow, the fake Slack Web API, and a controllable clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.core.requests import build_request
from bot.core.runs import RunOrigin
from bot.health.monitor import HealthMonitor
from bot.slack.health_alerts import SlackAlerts
from bot.slack.poster import SlackPoster, make_client
from bot.wiring.prober import Leadership, Prober
from bot.wiring.runtime import Runtime
from storage.db import make_engine
from storage.tables import utcnow
from tests.bot.conftest import BOT_TOKEN
from tests.conftest import SettingsFactory
from tests.fakes.openai import OpenAIFake, openai_error
from tests.fakes.server import RecordedRequest, Reply
from tests.fakes.slack import Message, SlackFake

ALERTS = "C0ALERTS01"


class Provider:
    """The strict OpenAI fake mounted once per route under /{route}/v1; each route has a mode
    (ok, forbidden, down, slow) that changes how a valid request is answered."""

    def __init__(self) -> None:
        self.fake = OpenAIFake(prefix="/{route}/v1").start()
        self.server = self.fake.server
        self.mode: dict[str, str] = {}
        self.fake.intercept = self._reply

    def _reply(self, endpoint: str, req: RecordedRequest) -> Reply | None:
        route = req.path_params["route"]
        mode = self.mode.get(route, "ok")
        if mode == "forbidden":
            return openai_error(
                403,
                "Your organization must be verified to use the model `gpt-image-2`.",
                **{"x-request-id": f"req_{route}_403"},
            )
        if mode == "down":
            return openai_error(
                500,
                "The server had an error.",
                type_="server_error",
                **{"x-request-id": f"req_{route}_500"},
            )
        if endpoint != "models":
            return openai_error(500, "not used")
        delay = 1.0 if mode == "slow" else 0.0
        return Reply(
            200,
            {"id": req.path_params["model"], "object": "model", "owned_by": "openai"},
            headers={"x-request-id": f"req_{route}_ok"},
            delay=delay,
        )

    def config(self, routes: dict[str, str], failure_threshold: int = 2) -> str:
        text = f"""
[probes]
interval_seconds = 0.2
failure_threshold = {failure_threshold}
success_threshold = 1
repeat_alert_minutes = 60
latency_slo_seconds = 0.5
jitter_seconds = 0
"""
        for rid, probe in routes.items():
            text += f"""
[routes.{rid}]
kind = "openai"
api_key = "sk-health-{rid}"
base_url = "{self.server.url}/{rid}/v1"
board = "openai"
probe = "{probe}"
timeout_seconds = 5
retries = 0
"""
        return text


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    yield p
    p.fake.stop()


@pytest.fixture
def slack() -> Iterator[SlackFake]:
    fake = SlackFake().start()
    yield fake
    fake.stop()


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


@dataclass
class Env:
    runtime: Runtime
    monitor: HealthMonitor
    clock: Clock
    slack: SlackFake

    def alerts(self) -> list[Message]:
        return self.slack.top_level(ALERTS)

    def thread(self, ts: str) -> list[str]:
        return [m.text for m in self.slack.thread(ALERTS, ts) if isinstance(m, Message)]


@pytest.fixture
async def open_env(
    make_settings: SettingsFactory, slack: SlackFake
) -> AsyncIterator[Callable[..., Any]]:
    opened: list[Runtime] = []

    async def make(config: str, database_url: str | None = None, clock: Clock | None = None) -> Env:
        settings = make_settings(
            config,
            slack_bot_token=BOT_TOKEN,
            slack_api_url=slack.api_url,
            database_url=database_url,
            alert_channel=ALERTS,
        )
        runtime = await asyncio.to_thread(Runtime.open, settings, role="bot")
        opened.append(runtime)
        poster = SlackPoster(make_client(BOT_TOKEN, slack.api_url), runtime.redactor)
        monitor = runtime.monitor(SlackAlerts(poster, ALERTS))
        clock = clock or Clock(utcnow())
        monitor.clock = clock
        return Env(runtime, monitor, clock, slack)

    yield make
    for runtime in opened:
        await runtime.aclose()


async def test_one_alert_then_reminders_in_thread_then_one_recovery(provider, open_env):
    env: Env = await open_env(provider.config({"a": "auth", "b": "auth"}))
    provider.mode["a"] = "forbidden"

    await env.monitor.round()
    assert env.alerts() == []  # one failure is below failure_threshold
    await env.monitor.round()
    [alert] = env.alerts()
    for expected in (
        "`a`",
        "failing",
        "auth",
        "req_a_403",
        "Organization verification",
        "account-readiness",
    ):
        assert expected in alert.text, expected
    assert "`b`" not in alert.text
    assert "sk-health" not in alert.text

    for _ in range(3):  # still failing: no new top-level message, no early reminder
        env.clock.advance(5)
        await env.monitor.round()
    assert len(env.alerts()) == 1 and env.thread(alert.ts) == []

    env.clock.advance(60)
    await env.monitor.round()
    await env.monitor.round()
    reminders = env.thread(alert.ts)
    assert (
        len(reminders) == 1 and "Reminder" in reminders[0] and "`a` still failing" in reminders[0]
    )

    provider.mode["a"] = "ok"
    env.clock.advance(1)
    await env.monitor.round()
    await env.monitor.round()
    replies = env.thread(alert.ts)
    assert len(replies) == 2 and "recovered" in replies[1]
    assert len(env.alerts()) == 1
    parent = env.alerts()[0]
    # The alert is rewritten: its status says recovered, its diagnosis stays.
    restated = json.dumps(parent.updates[-1]["blocks"])
    assert "Recovered: was failing for" in restated
    assert "req_a_403" in restated and "Organization verification" in restated
    states = await env.monitor.states()
    assert states == {"a": "healthy", "b": "healthy"}


async def test_several_routes_down_in_one_round_give_one_grouped_alert(provider, open_env):
    env: Env = await open_env(provider.config({"a": "auth", "b": "auth", "c": "auth"}))
    provider.mode.update(a="down", b="down")
    await env.monitor.round()
    await env.monitor.round()
    [alert] = env.alerts()
    assert "2 routes" in alert.text and "`a`" in alert.text and "`b`" in alert.text
    assert "`c`" not in alert.text
    assert "req_a_500" in alert.text and "provider_down" in alert.text


async def test_slow_route_is_degraded(provider, open_env):
    env: Env = await open_env(provider.config({"a": "auth"}))
    provider.mode["a"] = "slow"
    await env.monitor.round()
    await env.monitor.round()
    [alert] = env.alerts()
    assert "degraded" in alert.text and "latency_slo_seconds" in alert.text
    assert (await env.monitor.states())["a"] == "degraded"


async def test_restart_neither_loses_nor_repeats_the_alert(provider, open_env, tmp_path):
    config = provider.config({"a": "auth"})
    first: Env = await open_env(config)
    provider.mode["a"] = "down"
    await first.monitor.round()
    await first.monitor.round()
    assert len(first.alerts()) == 1
    # A new process on the same database.
    second: Env = await open_env(config, clock=Clock(first.clock.now))
    await second.monitor.round()
    await second.monitor.round()
    assert len(second.alerts()) == 1
    provider.mode["a"] = "ok"
    await second.monitor.round()
    [alert] = second.alerts()
    assert any("recovered" in t for t in second.thread(alert.ts))


async def test_alert_is_retried_when_slack_was_unreachable(provider, open_env, slack):
    env: Env = await open_env(provider.config({"a": "auth"}))
    provider.mode["a"] = "down"
    slack.fail("chat.postMessage", "fatal_error", times=1)
    await env.monitor.round()
    await env.monitor.round()  # alert due, Slack refuses it
    assert env.alerts() == []
    await env.monitor.round()  # retried, once
    await env.monitor.round()
    assert len(env.alerts()) == 1


async def test_flapping_route_keeps_one_thread(provider, open_env):
    env: Env = await open_env(provider.config({"a": "auth"}))
    provider.mode["a"] = "down"
    await env.monitor.round()
    await env.monitor.round()
    provider.mode["a"] = "ok"
    await env.monitor.round()
    provider.mode["a"] = "down"
    env.clock.advance(2)
    await env.monitor.round()
    await env.monitor.round()
    [alert] = env.alerts()
    replies = env.thread(alert.ts)
    assert any("recovered" in r for r in replies)
    assert any("again" in r for r in replies)


async def test_failed_user_runs_feed_health_passively(provider, open_env):
    env: Env = await open_env(provider.config({"a": "off"}))
    provider.mode["a"] = "down"
    request = build_request({"prompt": "a red kite"})
    for _ in range(2):
        outcome = await env.runtime.runs.run("a", request, RunOrigin(source="cli"))
        assert outcome.run.status == "failed"
    checks = await env.monitor.probe()
    assert checks == []  # probe = "off": no scheduled probe
    await env.monitor.evaluate()
    [alert] = env.alerts()
    assert "`a`" in alert.text and "provider_down" in alert.text


async def test_only_one_prober_is_active_on_postgres(postgres_url: str):
    engines = [make_engine(postgres_url), make_engine(postgres_url)]
    first, second = Leadership(engines[0]), Leadership(engines[1])
    try:
        assert first.is_leader() is True
        assert second.is_leader() is False
        assert first.is_leader() is True  # stays leader round after round
        first.release()  # the process stops: the stand-by takes over
        assert second.is_leader() is True
        assert first.is_leader() is False
    finally:
        first.release()
        second.release()
        for engine in engines:
            engine.dispose()


async def test_scheduler_runs_rounds(provider, open_env):
    env: Env = await open_env(provider.config({"a": "auth"}))
    prober = Prober(env.monitor, Leadership(env.runtime.engine))
    probes = "/a/v1/models/gpt-image-2"
    prober.start(first_in=0.05)
    try:
        # Two scheduled rounds, seen as the two probe calls the provider receives.
        await provider.server.received(lambda: len(provider.server.calls(probes)) >= 2)
    finally:
        await prober.stop()
    assert len(provider.server.calls(probes)) >= 2


def test_probe_cli(provider, tmp_path, monkeypatch):
    provider.mode["b"] = "down"
    (tmp_path / "imageroute.toml").write_text(provider.config({"a": "auth", "b": "auth"}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("ASSET_STORE", f"file://{tmp_path}/assets")
    result = CliRunner().invoke(cli_app, ["probe"])
    assert result.exit_code == 1, result.output
    assert "a: auth probe ok" in result.output
    assert "b: auth probe FAILED (provider_down)" in result.output
    assert "sk-health" not in result.output
    only = CliRunner().invoke(cli_app, ["probe", "--route", "a"])
    assert only.exit_code == 0 and "b:" not in only.output
    unknown = CliRunner().invoke(cli_app, ["probe", "--route", "zzz"])
    assert unknown.exit_code == 2 and "no route `zzz`" in unknown.output

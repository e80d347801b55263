"""A health alert on-call can act on, end to end: the alert names the owner and mentions its
on-call group, reminders come in its thread until someone acknowledges it, Probe now and Run on
<fallback> work from its buttons (signed HTTP), and after the recovery the diagnosis is still on
the alert, with only its status line changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from storage.tables import utcnow
from tests.bot.conftest import USER, BotHarness, button
from tests.fakes.openai import OpenAIFake, openai_error
from tests.fakes.server import RecordedRequest, Reply
from tests.fakes.slack import Message

ALERTS = "C0ALERTS01"
ONCALL = "S0ONCALL1"
PROMPT = "a product shot of a teal kettle"


class Provider:
    """The strict OpenAI fake at /{route}/v1; a route in `down` answers 500 to everything."""

    def __init__(self) -> None:
        self.fake = OpenAIFake(prefix="/{route}/v1", api_key="sk-oncall").start()
        self.down: set[str] = set()
        self.fake.intercept = self._reply

    def _reply(self, endpoint: str, req: RecordedRequest) -> Reply | None:
        if req.path_params["route"] in self.down:
            return openai_error(
                500,
                "The server had an error.",
                type_="server_error",
                **{"x-request-id": "req_a_500"},
            )
        return None

    def config(self) -> str:
        text = """
[probes]
failure_threshold = 2
success_threshold = 1
repeat_alert_minutes = 60
latency_slo_seconds = 30
"""
        for rid, extra in (
            ("a", f'route_owner = "Images platform team"\noncall = "{ONCALL}"\n'),
            ("b", ""),
        ):
            text += (
                f'\n[routes.{rid}]\nkind = "openai"\napi_key = "sk-oncall"\n'
                f'base_url = "{self.fake.server.url}/{rid}/v1"\nboard = "openai"\n'
                f'probe = "auth"\nretries = 0\ntimeout_seconds = 10\n{extra}'
            )
        return text


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    yield p
    p.fake.stop()


class Clock:
    def __init__(self) -> None:
        self.now: datetime = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


def _alert(h: BotHarness) -> Message:
    [alert] = h.slack.top_level(ALERTS)
    return alert


async def test_alert_reminders_acknowledge_fallback_and_recovery(
    start_harness: Any, provider: Provider
) -> None:
    provider.down.add("a")
    h: BotHarness = await start_harness(provider.config(), alert_channel=ALERTS)
    clock = Clock()
    h.bot.monitor.clock = clock
    alert = await _raised(h)
    await _reminded_then_probed(h, clock, alert)
    await _acknowledged(h, clock, alert)
    await _ran_on_fallback(h, alert)
    await _recovered(h, provider, clock, alert)
    assert h.slack.rejections == []


async def _raised(h: BotHarness) -> Message:
    """A user's run fails on `a` (a passive check), then the probes confirm it: one alert."""
    await h.command("/imagegen", f'route=a prompt="{PROMPT}"')
    await h.settle(30)
    await h.bot.monitor.round()
    alert = _alert(h)
    text = alert.all_text()
    assert "Route `a` is failing" in text
    assert "owned by Images platform team" in text and f"<!subteam^{ONCALL}>" in text
    assert "req_a_500" in text and "provider_down" in text
    assert "Check first:" in text
    assert button(alert, "alert_probe") and button(alert, "alert_ack")
    fallback = button(alert, "alert_fallback")
    assert fallback["text"]["text"] == "Run on b" and "confirm" in fallback
    return alert


async def _reminded_then_probed(h: BotHarness, clock: Clock, alert: Message) -> None:
    # Still down an hour later: one reminder in the thread.
    clock.advance(61)
    await h.bot.monitor.round()
    [reminder] = h.slack.replies(ALERTS, alert.ts)
    assert "Reminder" in reminder.text and "`a` still failing" in reminder.text
    # Probe now: the clicker hears what the probe found.
    await h.interact(h.click(alert, button(alert, "alert_probe")))
    await h.settle()
    [probed] = h.slack.ephemerals()
    assert probed.user == USER and "Probed `a` just now: failed (provider_down)" in probed.text


async def _acknowledged(h: BotHarness, clock: Clock, alert: Message) -> None:
    """Recorded, shown on the alert, and reminders stop."""
    await h.interact(h.click(alert, button(alert, "alert_ack")))
    await h.settle()
    [incident] = h.runtime.health.open_incidents()
    assert incident.acknowledged_by == USER
    acked = json.dumps(alert.blocks)
    assert f"acknowledged by <@{USER}>" in acked and "alert_ack" not in acked
    assert "req_a_500" in acked  # the diagnosis stays
    clock.advance(61)
    await h.bot.monitor.round()
    assert len(h.slack.replies(ALERTS, alert.ts)) == 1  # no second reminder


async def _ran_on_fallback(h: BotHarness, alert: Message) -> None:
    """The request that failed on `a` runs on the fallback, in the alert's thread."""
    await h.interact(h.click(alert, button(alert, "alert_fallback")))
    await h.settle(30)
    scoreboard, result = h.slack.replies(ALERTS, alert.ts)[1:]
    assert (
        f"<@{USER}> ran run #1's request (failed on `a`) on the fallback `b`"
        in scoreboard.all_text()
    )
    assert h.slack.images(result) and PROMPT in result.image_blocks()[0]["alt_text"]
    rerun = h.runtime.runlog.recent(1)[0]
    assert (rerun.route_id, rerun.status, rerun.prompt) == ("b", "succeeded", PROMPT)


async def _recovered(h: BotHarness, provider: Provider, clock: Clock, alert: Message) -> None:
    """A reply in the thread, and the alert keeps its diagnosis; only its status changes."""
    provider.down.discard("a")
    clock.advance(5)
    await h.bot.monitor.round()
    replies = h.slack.replies(ALERTS, alert.ts)
    assert "`a` recovered" in replies[-1].text
    assert len(h.slack.top_level(ALERTS)) == 1  # still one alert
    recovered = json.dumps(alert.blocks)
    assert "Recovered: was failing for" in recovered
    assert "req_a_500" in recovered and "provider_down" in recovered
    assert "owned by Images platform team" in recovered
    assert "alert_probe" not in recovered and "alert_fallback" not in recovered

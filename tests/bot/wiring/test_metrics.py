"""GET /metrics after real runs and probes: signed Slack commands to the HTTP app, a probe round
through the scheduler's own tick, and the text Prometheus scrapes, parsed with
prometheus_client's parser. Routes: the free demo, an OpenAI route priced from usage, one whose
model has no price (unpriced), and one with a revoked key (failing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from bot.core.observers import Observation, RunStarted
from bot.wiring.metrics import Metrics, process_metrics
from bot.wiring.prober import Leadership, Prober
from bot.wiring.runtime import Runtime
from storage.tables import utcnow
from tests.bot.conftest import USER, BotHarness, button, serve_bot
from tests.conftest import SettingsFactory
from tests.fakes.openai import OpenAIFake
from tests.fakes.slack import SlackFake

UNPRICED_MODEL = "image-model-not-on-file"
KEY = "sk-metrics-key-000111"
ALERTS = "C0ALERTS01"
# A demo route that takes a second per image: long enough to look at a run in flight.
SLOW_ROUTE = '[routes.slow]\nkind = "demo"\ndelay_seconds = 1\nbilling_owner = "Demo team"\n'


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(api_key=KEY).start()
    fake.models.add(UNPRICED_MODEL)
    yield fake
    fake.stop()


def config(fake: OpenAIFake) -> str:
    base = f"{fake.server.url}/v1"
    return f"""
[probes]
failure_threshold = 1
jitter_seconds = 0

[routes.demo]
kind = "demo"
billing_owner = "Demo team"

[routes.openai]
kind = "openai"
model = "gpt-image-2"
api_key = "{KEY}"
base_url = "{base}"
billing_owner = "Acme OpenAI org"
daily_spend_usd = 5

[routes.mystery]
kind = "openai"
model = "{UNPRICED_MODEL}"
api_key = "{KEY}"
base_url = "{base}"
billing_owner = "Acme OpenAI org"
probe = "off"

[routes.broken]
kind = "openai"
model = "gpt-image-2"
api_key = "sk-revoked-key-999888"
base_url = "{base}"
billing_owner = "Acme OpenAI org"
"""


@dataclass
class Served:
    harness: BotHarness
    metrics: Metrics
    prober: Prober

    async def scrape(self) -> Samples:
        """Every sample on GET /metrics: (name, sorted labels) -> value."""
        response = await self.harness.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return parse(response.text)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str | bytes) -> Samples:
    """Prometheus' text format, read by prometheus_client's own parser."""
    samples: Samples = {}
    raw = text.decode() if isinstance(text, bytes) else text
    for family in text_string_to_metric_families(raw):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
async def serve_with_metrics(
    slack_fake: SlackFake, bot_settings: SettingsFactory
) -> AsyncIterator[Callable[[str], Any]]:
    running: list[tuple[Served, uvicorn.Server, asyncio.Task[None]]] = []

    async def start(routes: str, **settings: Any) -> Served:
        runtime = await asyncio.to_thread(
            Runtime.open, bot_settings(routes, **settings), role="bot"
        )
        metrics = process_metrics(runtime)
        harness, server, task = await serve_bot(
            bot_settings(routes, **settings), runtime, slack_fake, metrics=metrics
        )
        bot = harness.bot
        prober = Prober(bot.monitor, Leadership(runtime.engine), on_leadership=metrics.leading)
        served = Served(harness, metrics, prober)
        running.append((served, server, task))
        return served

    yield start
    for served, server, task in running:
        await served.harness.bot.tasks.drain(10)
        await served.harness.bot.aclose()
        await served.harness.client.aclose()
        server.should_exit = True
        await task
        await served.harness.runtime.aclose()


def run_started(h: BotHarness) -> asyncio.Event:
    """Set once the harness's bot starts a run (heard after the metrics, which subscribed
    first)."""
    started = asyncio.Event()

    def heard(event: Observation) -> None:
        if isinstance(event, RunStarted):
            started.set()

    h.runtime.observers.subscribe(heard)
    return started


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, (
        f"{name}{labels} not exported; have {sorted(k for k in samples if k[0] == name)}"
    )
    return samples[key]


async def test_metrics_after_runs_and_probes(openai_fake, serve_with_metrics) -> None:
    s: Served = await serve_with_metrics(config(openai_fake))
    h = s.harness
    before = await s.scrape()
    assert value(before, "imageroute_runs_in_flight", route="demo") == 0
    assert value(before, "imageroute_route_daily_cap_usd", route="openai") == 5
    assert value(before, "imageroute_build_info", role="bot", version="0.1.0") == 1

    for text in (
        'route=demo prompt="a red kite"',
        'route=demo,openai prompt="a blue kite"',
        'route=mystery prompt="a lantern"',
        'route=broken prompt="a kettle"',
    ):
        response = await h.command("/imagegen", text)
        assert response.status_code == 200
        assert len(response.headers["x-request-id"]) == 16
    await h.settle()
    assert await s.prober.tick() is True  # a probe round, as the scheduler runs it

    samples = await s.scrape()
    runs = {r.id: r for r in h.runtime.runlog.recent(10)}
    assert len(runs) == 5
    runs_total = "imageroute_runs_total"
    assert value(samples, runs_total, route="demo", status="succeeded", error_class="none") == 2
    assert value(samples, runs_total, route="openai", status="succeeded", error_class="none") == 1
    assert value(samples, runs_total, route="mystery", status="succeeded", error_class="none") == 1
    assert value(samples, runs_total, route="broken", status="failed", error_class="auth") == 1
    for route in ("demo", "openai", "mystery", "broken"):
        assert value(samples, "imageroute_runs_in_flight", route=route) == 0

    # Spend: the logged cost exactly, by route and billing owner; unknown never counted as $0.
    [priced] = [r for r in runs.values() if r.route_id == "openai"]
    assert priced.cost_usd is not None and priced.cost_usd > 0
    spend = "imageroute_spend_usd_total"
    assert value(samples, spend, route="openai", billing_owner="Acme OpenAI org") == pytest.approx(
        priced.cost_usd
    )
    assert value(samples, spend, route="demo", billing_owner="Demo team") == 0
    assert (
        "imageroute_spend_usd_total",
        (("billing_owner", "Acme OpenAI org"), ("route", "mystery")),
    ) not in samples
    unpriced = "imageroute_runs_unpriced_total"
    assert value(samples, unpriced, route="mystery", billing_owner="Acme OpenAI org") == 1

    latency = "imageroute_run_latency_seconds"
    assert value(samples, f"{latency}_count", route="demo") == 2
    assert value(samples, f"{latency}_sum", route="openai") == pytest.approx(priced.latency_s)
    assert (f"{latency}_count", (("route", "broken"),)) not in samples  # no result, no latency

    # Slack waited this long for each of the four acks.
    assert value(samples, "imageroute_slack_ack_seconds_count", kind="command") == 4

    # The probe round: demo and openai healthy, broken failing (revoked key), mystery off.
    probes = "imageroute_probes_total"
    assert value(samples, probes, route="demo", kind="auth", result="ok", error_class="none") == 1
    assert (
        value(samples, probes, route="broken", kind="auth", result="failed", error_class="auth")
        == 1
    )
    assert (
        value(samples, "imageroute_probe_latency_seconds_count", route="openai", kind="auth") == 1
    )
    state = "imageroute_route_state"
    assert value(samples, state, route="broken", state="failing") == 1
    assert value(samples, state, route="broken", state="healthy") == 0
    assert value(samples, state, route="demo", state="healthy") == 1
    assert value(samples, state, route="mystery", state="off") == 1
    assert value(samples, "imageroute_incidents_open", kind="failing") == 1
    assert value(samples, "imageroute_prober_active") == 1

    # A process that loses the prober lock stops reporting route states.
    s.metrics.leading(False)
    after = await s.scrape()
    assert value(after, "imageroute_prober_active") == 0
    assert not [k for k in after if k[0] in (state, "imageroute_incidents_open")]


async def test_a_run_in_flight_is_counted_until_it_ends(serve_with_metrics) -> None:
    s: Served = await serve_with_metrics(SLOW_ROUTE)
    h = s.harness
    started = run_started(h)
    await h.command("/imagegen", 'route=slow prompt="a slow kite"')
    await asyncio.wait_for(started.wait(), 10)  # the metrics heard it first (subscribed first)
    during = await s.scrape()
    assert value(during, "imageroute_runs_in_flight", route="slow") == 1
    await h.settle()
    after = await s.scrape()
    assert value(after, "imageroute_runs_in_flight", route="slow") == 0
    assert (
        value(after, "imageroute_runs_total", route="slow", status="succeeded", error_class="none")
        == 1
    )


async def test_requests_past_the_in_flight_limit_are_counted_as_queued(serve_with_metrics) -> None:
    s: Served = await serve_with_metrics(
        SLOW_ROUTE,
        imageroute_max_in_flight=1,
    )
    h = s.harness
    started = run_started(h)
    await h.command("/imagegen", 'route=slow prompt="the first kite"')
    await asyncio.wait_for(started.wait(), 10)
    await h.command("/imagegen", 'route=slow prompt="the second kite"')
    for _ in range(200):  # the second request reaches the queue once its ack is out
        during = await s.scrape()
        if value(during, "imageroute_requests_queued") == 1:
            break
        await asyncio.sleep(0.01)
    assert value(during, "imageroute_requests_queued") == 1
    assert value(during, "imageroute_requests_running") == 1
    assert value(during, "imageroute_runs_in_flight", route="slow") == 1
    await h.settle()
    after = await s.scrape()
    assert value(after, "imageroute_requests_queued") == 0
    assert value(after, "imageroute_requests_running") == 0
    assert len(h.runtime.runlog.recent(5)) == 2


class Clock:
    """The health monitor's clock, moved by the test (alerts and acks are timed by it)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


async def test_the_first_acknowledgement_of_an_alert_is_timed_once(
    openai_fake, start_harness
) -> None:
    h: BotHarness = await start_harness(config(openai_fake), alert_channel=ALERTS)
    metrics = process_metrics(h.runtime)
    clock = Clock()
    h.bot.monitor.clock = clock
    await h.bot.monitor.round()  # the revoked key fails its probe: one alert
    [alert] = h.slack.top_level(ALERTS)
    assert "`broken`" in alert.all_text()
    ack = button(alert, "alert_ack")

    clock.now += timedelta(seconds=90)
    await h.interact(h.click(alert, ack))
    await h.settle()
    [incident] = h.runtime.health.open_incidents()
    assert incident.acknowledged_by == USER
    # A second click on a copy of the alert that still shows the button: not timed again.
    clock.now += timedelta(seconds=600)
    await h.interact(h.click(alert, ack, user="U0OTHER01"))
    await h.settle()

    samples = parse(metrics.render())
    assert value(samples, "imageroute_incident_ack_seconds_count") == 1
    assert value(samples, "imageroute_incident_ack_seconds_sum") == pytest.approx(90)

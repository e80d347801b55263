"""What Slack shows is true: runs of unknown cost are counted as unpriced on every spend surface
(never $0.00, never "cheapest"), each route shows its model's lifecycle status, and the advisor
names today's model from the live catalog. Signed requests to the real app, a fake Slack and a
strict OpenAI fake serving a model that has no price on file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from storage.tables import HealthCheck
from tests.bot.conftest import CHANNEL, USER
from tests.fakes.openai import OpenAIFake

UNPRICED_MODEL = "image-model-not-on-file"


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake().start()
    fake.models.add(UNPRICED_MODEL)
    yield fake
    fake.stop()


def config(fake: OpenAIFake) -> str:
    base = f"{fake.server.url}/v1"
    return f"""
[routes.demo]
kind = "demo"
billing_owner = "Demo team"
board = "openai"

[routes.mystery]
kind = "openai"
model = "{UNPRICED_MODEL}"
api_key = "sk-truth"
base_url = "{base}"
billing_owner = "Acme OpenAI org"

[routes.legacy]
kind = "openai"
model = "gpt-image-1"
allow_retired_model = true
api_key = "sk-truth"
base_url = "{base}"
billing_owner = "Acme OpenAI org"
"""


def _text(blocks: Any) -> str:
    return json.dumps(blocks)


async def test_unknown_costs_are_counted_as_unpriced_on_every_surface(openai_fake, start_harness):
    h = await start_harness(config(openai_fake))
    await h.command("/imagegen", 'route=mystery prompt="a lantern"')
    await h.command("/imagegen", 'route=mystery prompt="a kettle"')
    await h.settle()
    runs = h.runtime.runlog.recent(5)
    assert [(r.status, r.cost_usd, r.cost_basis) for r in runs] == [
        ("succeeded", None, "unknown")
    ] * 2

    await h.command("/imageroute", "stats")
    await h.settle()
    stats_message = h.slack.responses[-1]["blocks"]  # private until shared
    stats = _text(stats_message)
    table = stats_message[0]["text"]["text"]  # the route stats table (checks come after it)
    [row] = [line for line in table.splitlines() if line.startswith("mystery")]
    assert "2 runs unpriced" in row and "$0.00" not in row and "unknown" in row
    assert "2 runs unpriced this week" in stats

    await h.event({"type": "app_home_opened", "user": USER, "tab": "home"})
    [published] = await h.slack.received(h.slack.published)
    home = _text(published["view"])
    assert "`mystery`: 2 runs unpriced over 2 run(s)" in home
    assert "Acme OpenAI org: 2 runs unpriced" in home
    assert not re.search(r"mystery`: \$0\.00", home)

    h.runtime.health.record(HealthCheck(route_id="mystery", probe_kind="generate", ok=True))
    h.runtime.health.record(
        HealthCheck(route_id="demo", probe_kind="generate", ok=True, cost_usd=0.5)
    )
    await h.command("/imageroute", "health")
    await h.settle()
    health = _text(h.slack.responses[-1]["blocks"])
    assert "Probe spend over 7 days: $0.50 + 1 probe unpriced" in health


async def test_a_free_route_reads_zero_dollars_on_every_surface(openai_fake, start_harness):
    h = await start_harness(config(openai_fake))
    await h.command("/imagegen", 'route=demo prompt="a lantern"')
    await h.settle()
    [run] = h.runtime.runlog.recent(5)
    assert (run.status, run.cost_usd, run.cost_basis) == ("succeeded", 0.0, "free")

    await h.command("/imageroute", "stats")
    await h.settle()
    table = h.slack.responses[-1]["blocks"][0]["text"]["text"]
    [row] = [line for line in table.splitlines() if line.startswith("demo")]
    # The median reads as the run does ("$0 (free)"), the week's spend as "$0".
    assert re.search(r"\$0 \(free\)\s+\$0\s", row), row
    assert "$0.0" not in table

    await h.event({"type": "app_home_opened", "user": USER, "tab": "home"})
    [published] = await h.slack.received(h.slack.published)
    home = _text(published["view"])
    assert "`demo`: $0 over 1 run(s)" in home and "Demo team: $0" in home
    assert "$0 (free): " in home  # the run in "Your recent runs"
    assert "$0.0" not in home

    # The advice on the demo route's board row shows what this workspace measured on it.
    await h.command("/imageroute", "we already use the OpenAI API for our product images")
    await h.settle()
    advice = _text(h.slack.responses[-1]["blocks"])
    assert "demo (demo):" in advice and "median $0 (free)" in advice
    assert "$0.0" not in advice


async def test_cheapest_is_never_awarded_over_an_unknown_cost(openai_fake, start_harness):
    h = await start_harness(config(openai_fake))
    await h.command("/imagegen", 'route=demo,mystery prompt="two lanterns"')
    await h.settle()
    parent = h.slack.top_level(CHANNEL)[0]
    verdict = _text(parent.blocks)
    assert "*Cheapest:*" not in verdict
    assert "*Cost:* only `demo` has a known cost" in verdict
    assert "*Cost unknown* on `mystery` (1 run unpriced), so it may be cheaper" in verdict


async def test_routes_show_each_model_status(openai_fake, start_harness):
    h = await start_harness(config(openai_fake))
    await h.command("/imageroute", "routes")
    await h.settle()
    routes = _text(h.slack.responses[-1]["blocks"])
    assert (
        "model `gpt-image-1` (:warning: retired on 2026-10-23, kept by allow_retired_model; "
        "use gpt-image-2)" in routes
    )
    assert "model `imageroute-demo-1` (no provider lifecycle)" in routes
    assert f"model `{UNPRICED_MODEL}` (no lifecycle on file)" in routes

    await h.event({"type": "app_home_opened", "user": USER, "tab": "home"})
    [published] = await h.slack.received(h.slack.published)
    home = json.dumps(published["view"], ensure_ascii=False)
    assert "`legacy` *unknown* · openai, model :warning: retired on 2026-10-23" in home


async def test_the_google_answer_names_gemini_3_pro_image_and_why(start_harness):
    h = await start_harness()
    await h.command("/imageroute", "we're all in on Google Cloud")
    await h.settle()
    await h.command("/imageroute", "how do I book PTO next week")
    await h.settle()
    google, outside = (_text(r["blocks"]) for r in h.slack.responses)
    assert "Benchmark first: Google Cloud / Vertex AI" in google
    # The name comes from routes/data/lifecycle.toml, the live catalog the bot hands in.
    named = "Gemini 3 Pro Image (`gemini-3-pro-image`)"
    assert f"*Start with* {named} on Vertex AI" in google
    assert (
        "The article named Imagen 4 Ultra; Google shut it down on 2026-08-17 and names "
        f"{named} as its replacement." in google
    )
    assert "Not a route question" in outside and "advice_compare" not in outside
    assert "Benchmark first" not in outside

"""Acceptance checks as a Slack user sees them: /imagegen with quoted text on the demo route
(which draws the prompt's text) and on an OpenAI route whose (fake) API returns an unrelated
picture; the checks line added in place under each result (and kept when a verdict rewrites it), the
comparison summary, stats and the advisor's "in this workspace"."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from tests.bot.checks import calibration as cal
from tests.bot.conftest import CHANNEL, DEMO_CONFIG, BotHarness, button
from tests.fakes.openai import OpenAIFake
from tests.fakes.slack import Message

API_KEY = "sk-test-secret-key-4242"
PROMPT = "A shop poster that says 'SUMMER SALE 50% OFF' in big letters"


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(api_key=API_KEY).start()
    fake.image = cal.png(cal.scene(size=1024))  # a picture with none of the asked text
    yield fake
    fake.stop()


def _config(url: str) -> str:
    return (
        DEMO_CONFIG
        + f"""
[routes.openai]
kind = "openai"
model = "gpt-image-2"
api_key = "{API_KEY}"
base_url = "{url}/v1"
billing_owner = "Acme OpenAI org"
board = "openai"
"""
    )


def _result(h: BotHarness, run_id: int) -> Message:
    """The one message of a run's result: image, context lines, actions."""
    parent = h.slack.top_level(CHANNEL)[-1]
    for item in h.slack.replies(CHANNEL, parent.ts):
        if f"run #{run_id}" in item.all_text() and item.image_blocks():
            return item
    raise AssertionError(f"no result message for run #{run_id}")


def _checks_line(message: Message) -> str:
    lines = [
        e["text"]
        for b in message.blocks or []
        if b["type"] == "context"
        for e in b["elements"]
        if "Checks:" in e["text"]
    ]
    assert len(lines) == 1, message.blocks
    return str(lines[0])


async def test_quoted_text_reads_back_on_the_demo_and_not_on_an_unrelated_picture(
    start_harness, openai_fake: OpenAIFake
):
    h = await start_harness(_config(openai_fake.server.url))
    await h.command("/imagegen", f'route=demo,openai prompt="{PROMPT}" size=1024x1024')
    await h.settle(60)
    runs = {r.route_id: r for r in h.runtime.runlog.recent(2)}
    checks = h.runtime.checks.checklog
    demo_text = {r.name: r for r in checks.for_run(runs["demo"].id or 0)}["text"]
    other_text = {r.name: r for r in checks.for_run(runs["openai"].id or 0)}["text"]
    assert demo_text.status == "passed" and (demo_text.score or 0) >= 0.9
    assert other_text.status == "failed" and other_text.score is not None and other_text.score < 0.3
    assert "SUMMER" in (other_text.reason or "") and "missing" in (other_text.reason or "")

    # Each result's message got its checks line in place, under the image and above the same
    # buttons.
    demo_msg = _result(h, runs["demo"].id or 0)
    other_msg = _result(h, runs["openai"].id or 0)
    assert demo_msg.updates and other_msg.updates
    assert demo_msg.image_blocks() and other_msg.image_blocks()
    demo_line, other_line = _checks_line(demo_msg), _checks_line(other_msg)
    assert demo_line.startswith(":white_check_mark: Checks: text ")
    assert ":x: text" in other_line and "missing SUMMER" in other_line
    assert "rerun" in json.dumps(demo_msg.blocks) and "verdict_pass" in json.dumps(other_msg.blocks)

    # A verdict rewrites the message with its counts; the checks line stays as it was.
    await h.interact(h.click(other_msg, button(other_msg, "verdict_fail")))
    await h.settle()
    other_msg = _result(h, runs["openai"].id or 0)
    assert "0 survives the next step, 1 does not" in json.dumps(other_msg.blocks)
    assert _checks_line(other_msg) == other_line

    # The scoreboard, updated with each route's checks.
    parent = h.slack.top_level(CHANNEL)[-1]
    board = json.dumps(parent.blocks)
    assert "checks: FAILED text" in board

    # /imageroute stats: per route and family.
    await h.command("/imageroute", "stats")
    await h.settle()
    stats = json.dumps(h.slack.responses[-1]["blocks"])
    assert "Acceptance checks" in stats and "ad hoc" in stats and "0/1" in stats and "1/1" in stats

    # The advisor's "in this workspace".
    await h.command("/imageroute", "which route for a text-heavy poster on openai")
    await h.settle()
    advice = json.dumps(h.slack.responses[-1]["blocks"])
    assert "text legible 100% of 1" in advice and "text legible 0% of 1" in advice


async def test_a_verdict_given_while_the_checks_run_stays_when_they_land(start_harness):
    h = await start_harness()
    release = threading.Event()
    # The checks' one worker thread is busy until the verdict is in.
    h.runtime.checks.worker.submit(release.wait, 60)
    try:
        await h.command("/imagegen", f'route=demo prompt="{PROMPT}" size=256x256')
        message = await h.slack.received(lambda: _posted_result(h))
        await h.interact(h.click(message, button(message, "verdict_pass")))
        await h.slack.received(lambda: "1 survives the next step" in message.all_text())
        assert "Checks:" not in message.all_text()
    finally:
        release.set()
    await h.settle(60)
    line = _checks_line(message)  # the checks landed after the verdict, and both are shown
    assert "Checks:" in line and "text" in line and "as asked" in line
    assert (
        "Verdicts on run" in message.all_text() and "1 survives the next step" in message.all_text()
    )


def _posted_result(h: BotHarness) -> Message | None:
    for parent in h.slack.top_level(CHANNEL):
        for item in h.slack.replies(CHANNEL, parent.ts):
            if item.image_blocks() and button(item, "verdict_pass"):
                return item
    return None

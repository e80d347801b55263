"""/imagegen end to end: signed slash command in, parent message + thread with images out."""

from __future__ import annotations

import io
import json
import time

from PIL import Image

from tests.bot.conftest import CHANNEL, USER
from tests.fakes.slack import Message


async def test_imagegen_posts_image_in_thread_with_context(start_harness):
    h = await start_harness()
    t0 = time.perf_counter()
    response = await h.command("/imagegen", 'route=demo prompt="a red bicycle" size=512x512')
    ack_s = time.perf_counter() - t0
    assert response.status_code == 200
    assert ack_s < 3
    await h.settle()

    parents = h.slack.top_level(CHANNEL)
    assert len(parents) == 1
    parent = parents[0]
    assert f"<@{USER}>" in parent.all_text() and "a red bicycle" in parent.all_text()
    # The parent is the scoreboard: edited in place to the route's outcome.
    assert parent.updates and "`demo`" in json.dumps(parent.blocks)
    assert "Done" in json.dumps(parent.blocks) and "$0 (free)" in json.dumps(parent.blocks)

    # One message in the thread: the image, its context line and its actions together.
    [result] = h.slack.thread(CHANNEL, parent.ts)
    assert isinstance(result, Message)
    [upload] = h.slack.images(result)
    assert upload.channel is None  # uploaded privately, shown through the image block
    image = Image.open(io.BytesIO(upload.data))
    assert image.size == (512, 512)
    [block] = result.image_blocks()
    assert "a red bicycle" in block["alt_text"] and "a red bicycle" in (upload.alt or "")
    context = json.dumps([b for b in result.blocks or [] if b["type"] == "context"])
    for expected in (
        "*demo*",
        "imageroute-demo-1",
        "512x512",
        "$0 (free)",
        "response id",
        "Demo team",
    ):
        assert expected in context

    run = h.runtime.runlog.recent(1)[0]
    assert run.status == "succeeded"
    assert run.slack_channel == CHANNEL and run.slack_user == USER
    assert run.slack_thread_ts == parent.ts
    assert run.response_id and run.response_id in context
    assets = h.runtime.runlog.assets(run.id)
    assert len(assets) == 1 and assets[0].width == 512
    ids = [e["action_id"] for e in result.actions()]
    assert {"rerun", "verdict_pass", "verdict_fail", "result_more"} <= set(ids)
    # The acceptance checks ran after the image was posted and were added to that message,
    # which keeps its image.
    assert result.updates and result.image_blocks()
    assert "Checks:" in json.dumps(result.blocks) and "as asked" in json.dumps(result.blocks)
    assert h.slack.rejections == []


async def test_bad_input_gets_one_sentence_and_no_run(start_harness):
    h = await start_harness()
    cases = {
        'route=demo prompt="unterminated': "quote is not closed",
        "route=nope prompt=x": "no route `nope`",
        "route=demo prompt=x n=9": "between 1 and 4",
        "route=demo prompt=x quality=ultra": "not one of",
        "route=demo prompt=x colour=red": "is not an option",
        'route=demo prompt="x" format=jpeg background=transparent': "transparent background",
        "route=demo size=512x512": "prompt",
        "route=demo prompt=x size=huge": "is not a size",
        "route=demo prompt=x size=4096x4096": "4096",
        "route=demo prompt=" + "y" * 4100: "at most 4,000",
    }
    for text, expected in cases.items():
        response = await h.command("/imagegen", text)
        assert response.status_code == 200
        body = response.json()
        assert body["response_type"] == "ephemeral"
        assert expected in body["text"], (text, body["text"])
        assert "Traceback" not in body["text"]
    await h.settle()
    assert h.runtime.runlog.recent(10) == []
    assert h.slack.top_level() == []


async def test_help_for_empty_imagegen(start_harness):
    h = await start_harness()
    response = await h.command("/imagegen", "  ")
    assert "Usage" in response.json()["text"]


async def test_comparison_posts_each_result_then_the_verdict_and_montage_on_the_parent(
    start_harness,
):
    h = await start_harness()
    await h.command("/imagegen", 'route=demo,slowdemo prompt="a teapot"')
    await h.settle()
    parent = h.slack.top_level(CHANNEL)[0]
    thread = h.slack.thread(CHANNEL, parent.ts)
    # One message per route, in the order they finished (slowdemo usually last, but on a
    # loaded machine demo's rendering can outlast slowdemo's 0.3 s head start: the run log says).
    assert all(isinstance(m, Message) for m in thread)
    shown = [h.slack.images(m)[0].filename.split("-")[0] for m in thread if isinstance(m, Message)]
    finished = sorted(h.runtime.runlog.recent(10), key=lambda r: r.finished_at or r.created_at)
    assert shown == [r.route_id for r in finished] and sorted(shown) == ["demo", "slowdemo"]
    # The montage is on the parent, with the verdict: both routes are free, a tie said as one.
    [montage] = h.slack.images(parent)
    assert montage.filename == "comparison.png"
    assert Image.open(io.BytesIO(montage.data)).size == (2 * 384 + 3 * 8, 384 + 56 + 2 * 8)
    verdict = json.dumps(parent.blocks)
    assert "*Fastest:* `demo`" in verdict
    assert "a tie: all 2 priced routes cost $0 (free)" in verdict
    assert "2 of 2 routes returned an image" in verdict
    runs = h.runtime.runlog.recent(10)
    assert len({r.group_id for r in runs}) == 1 and runs[0].group_id


async def test_not_in_channel_answers_via_response_url_without_running(start_harness):
    h = await start_harness()
    h.slack.fail("chat.postMessage", "not_in_channel")
    await h.command("/imagegen", 'route=demo prompt="x"')
    await h.settle()
    assert h.runtime.runlog.recent(5) == []
    await h.slack.received(lambda: h.slack.responses)
    assert "invite" in h.slack.responses[0]["text"]


async def test_slack_rate_limit_is_retried(start_harness):
    h = await start_harness()
    h.slack.fail("chat.postMessage", "ratelimited", status=429, **{"Retry-After": "0"})
    await h.command("/imagegen", 'route=demo prompt="x"')
    await h.settle()
    assert len(h.slack.top_level(CHANNEL)) == 1
    assert h.runtime.runlog.recent(1)[0].status == "succeeded"


async def test_bad_signature_is_rejected(start_harness):
    h = await start_harness()
    body = "command=/imagegen&text=prompt%3Dx"
    headers = h.sign(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    response = await h.client.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    # A correctly signed request whose timestamp is older than five minutes is a replay.
    stale = h.sign(body, timestamp=int(time.time()) - 600)
    response = await h.client.post("/slack/events", content=body, headers=stale)
    assert response.status_code == 401
    assert h.runtime.runlog.recent(1) == []


async def test_healthz_reports_database(start_harness):
    h = await start_harness()
    response = await h.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"

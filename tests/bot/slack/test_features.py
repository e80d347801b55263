"""Slack features end to end: verdicts, double clicks, guardrails, the edit shortcut,
App Home and retried events. Signed requests in, the fake Slack's record out."""

from __future__ import annotations

import io
import json
from typing import Any

from PIL import Image

from storage.tables import Run
from tests.bot.conftest import CHANNEL, DEMO_CONFIG, USER, BotHarness, button
from tests.fakes.slack import Message

OTHER_USER = "U0USER0002"


def _png(size: tuple[int, int] = (64, 48), color: str = "navy") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


async def _one_run(h: BotHarness) -> tuple[Message, Message]:
    """Runs /imagegen on demo; returns the parent and the result's actions message."""
    await h.command("/imagegen", 'route=demo prompt="a teal teapot"')
    await h.settle()
    parent = h.slack.top_level(CHANNEL)[-1]
    thread = h.slack.thread(CHANNEL, parent.ts)
    actions = next(
        m
        for m in thread
        if isinstance(m, Message) and m.blocks and any(b["type"] == "actions" for b in m.blocks)
    )
    return parent, actions


async def test_verdicts_are_recorded_once_per_person_and_show_in_stats(start_harness):
    h = await start_harness()
    _, actions = await _one_run(h)
    run = h.runtime.runlog.recent(1)[0]
    passed = button(actions, "verdict_pass")
    failed = button(actions, "verdict_fail")

    await h.interact(h.click(actions, passed))
    await h.interact(h.click(actions, failed, user=OTHER_USER))
    await h.settle()
    # The first judge changes their mind: still one verdict each.
    await h.interact(h.click(actions, failed))
    await h.settle()

    verdicts = {v.judged_by: v.survives for v in h.runtime.runlog.verdicts(run.id)}
    assert verdicts == {USER: False, OTHER_USER: False}
    # The actions message now carries the counts.
    updated = actions.updates[-1]
    assert "0 survives the next step, 2 does not" in json.dumps(updated)

    # The result message keeps its image, now with the counts under it.
    assert updated["blocks"][0]["type"] == "image"
    await h.command("/imageroute", "stats")
    await h.settle()
    stats = json.dumps(h.slack.responses[-1]["blocks"])
    assert "0 ok / 2 not" in stats


async def test_double_click_on_rerun_starts_one_run(start_harness):
    h = await start_harness()
    parent, actions = await _one_run(h)
    rerun = button(actions, "rerun")
    payload = h.click(actions, rerun)
    first = await h.interact(payload)
    second = await h.interact({**payload, "trigger_id": "trigger.again"})
    assert first.status_code == second.status_code == 200
    await h.settle()
    runs = h.runtime.runlog.recent(10)
    assert len(runs) == 2
    assert runs[0].prompt == runs[1].prompt == "a teal teapot"
    # The re-run lands in the same thread as the original.
    assert runs[0].slack_thread_ts == parent.ts


async def test_try_another_route_runs_the_selected_route(start_harness):
    h = await start_harness()
    _, actions = await _one_run(h)
    menu = button(actions, "try_route")
    option = next(
        o for o in menu["options"] if o["value"].endswith("slowdemo") or "slowdemo" in o["value"]
    )
    await h.interact(h.click(actions, {**menu, "selected_option": option}))
    await h.settle()
    latest = h.runtime.runlog.recent(1)[0]
    assert latest.route_id == "slowdemo" and latest.prompt == "a teal teapot"


SPEND_CONFIG = (
    DEMO_CONFIG
    + """
[routes.paid]
kind = "demo"
billing_owner = "Design team"
daily_spend_usd = 0.50
pricing = { usd_per_image = 0.04 }

[routes.private]
kind = "demo"
allowed_channels = ["C0DESIGN01"]

[routes.grouped]
kind = "demo"
allowed_usergroups = ["S0DESIGN"]

[limits]
user_daily_spend_usd = 2.0
max_routes_per_comparison = 2
"""
)


def _spent(h: BotHarness, route_id: str, user: str, usd: float) -> None:
    runlog = h.runtime.runlog
    run = runlog.start(
        Run(
            route_id=route_id,
            route_kind="demo",
            model_requested="imageroute-demo-1",
            prompt="earlier work",
            slack_user=user,
            source="slack",
        )
    )
    assert run.id is not None
    runlog.finish(run.id, "succeeded", cost_usd=usd, cost_basis="per_image", images=1)


async def test_route_spend_cap_refuses_before_any_call(start_harness):
    h = await start_harness(SPEND_CONFIG)
    _spent(h, "paid", OTHER_USER, 0.48)
    before = len(h.runtime.runlog.recent(100))
    await h.command("/imagegen", 'route=paid prompt="a poster"')
    await h.settle()
    assert len(h.runtime.runlog.recent(100)) == before  # nothing ran, nothing logged
    text = " ".join(m.text for m in h.slack.ephemerals()) + json.dumps(h.slack.responses)
    assert "daily spend cap of $0.50" in text and "resets at 00:00 UTC" in text
    assert "`paid`" in text


async def test_user_spend_cap_refuses_and_other_users_still_run(start_harness):
    h = await start_harness(SPEND_CONFIG)
    _spent(h, "demo", USER, 2.0)
    await h.command("/imagegen", 'route=demo prompt="a poster"')
    await h.command("/imagegen", 'route=demo prompt="a poster"', user=OTHER_USER)
    await h.settle()
    runs = [r for r in h.runtime.runlog.recent(100) if r.prompt == "a poster"]
    assert [r.slack_user for r in runs] == [OTHER_USER]
    text = " ".join(m.text for m in h.slack.ephemerals()) + json.dumps(h.slack.responses)
    assert "your daily spend cap of $2.00" in text


async def test_channel_usergroup_and_comparison_size_limits(start_harness):
    h = await start_harness(SPEND_CONFIG)
    h.slack.usergroups["S0DESIGN"] = [OTHER_USER]
    wrong_channel = await h.command("/imagegen", 'route=private prompt="x"')
    assert "can only be used in <#C0DESIGN01>" in wrong_channel.text
    too_many = await h.command("/imagegen", 'route=demo,slowdemo,paid prompt="x"')
    assert "2" in too_many.text and "route" in too_many.text
    await h.command("/imagegen", 'route=grouped prompt="group only"')
    await h.command("/imagegen", 'route=grouped prompt="group only"', user=OTHER_USER)
    await h.settle()
    runs = [r for r in h.runtime.runlog.recent(100) if r.prompt == "group only"]
    assert [r.slack_user for r in runs] == [OTHER_USER]
    assert any(
        "allowed_usergroups" in m.text for m in h.slack.ephemerals()
    ) or "allowed_usergroups" in json.dumps(h.slack.responses)
    assert all(r.prompt != "x" for r in h.runtime.runlog.recent(100))


def _shortcut_payload(h: BotHarness, files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "message_action",
        "callback_id": "edit_image",
        "trigger_id": f"trigger.{h.next_id()}",
        "user": {"id": USER},
        "team": {"id": "T0TEAM"},
        "channel": {"id": CHANNEL},
        "message_ts": "1699999999.000100",
        "response_url": h.slack.response_url(h.next_id()),
        "message": {"type": "message", "ts": "1699999999.000100", "text": "", "files": files},
    }


def _edit_submission(view: dict[str, Any], route: str, instruction: str) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "user": {"id": USER},
        "team": {"id": "T0TEAM"},
        "view": {
            **view,
            "id": "VEDIT",
            "hash": "h",
            "state": {
                "values": {
                    "route": {"value": {"selected_option": {"value": route}}},
                    "instruction": {"value": {"value": instruction}},
                    "mask": {"value": {"files": []}},
                }
            },
        },
    }


async def test_edit_shortcut_fetches_the_file_with_the_token_and_posts_in_its_thread(
    start_harness,
):
    h = await start_harness()
    shared = h.slack.share_file(_png((80, 60)), name="mockup.png")
    await h.interact(_shortcut_payload(h, [shared]))
    await h.slack.server.received(lambda: h.slack.views)  # opened after the shortcut's ack
    [opened] = [v for v in h.slack.views if v["method"] == "open"]
    view = opened["view"]
    assert view["callback_id"] == "edit_image_modal"

    empty = await h.interact(_edit_submission(view, "demo", ""))
    assert empty.json()["response_action"] == "errors" and "instruction" in empty.json()["errors"]
    ok = await h.interact(_edit_submission(view, "demo", "make the sky orange"))
    assert ok.status_code == 200
    await h.settle()

    # Slack's file API was asked first, then the file fetched with the bot token.
    assert h.slack.calls("files.info")
    [download] = h.slack.server.calls(f"/files-pri/{shared['id']}")
    assert download.headers["authorization"].startswith("Bearer xoxb-")
    run = h.runtime.runlog.recent(1)[0]
    assert run.status == "succeeded" and run.prompt == "make the sky orange"
    assert run.input_assets and len(h.runtime.runlog.assets(run.id, role="input")) == 1
    assert run.slack_thread_ts == "1699999999.000100"
    scoreboard, result = h.slack.replies(CHANNEL, "1699999999.000100")
    assert f"<@{USER}> asked for an edit on `demo`" in scoreboard.all_text()
    assert len(h.slack.images(result)) == 1


async def test_edit_shortcut_refuses_non_images_and_foreign_hosts(start_harness):
    h = await start_harness()
    # A message without an image: told so, no modal.
    pdf = h.slack.share_file(b"%PDF-1.4", mimetype="application/pdf", name="spec.pdf")
    await h.interact(_shortcut_payload(h, [pdf]))
    # The shortcut answers after its ack, outside the bot's task list: wait for what Slack got.
    await h.slack.server.received(h.slack.ephemerals)
    assert not h.slack.views
    assert "no image" in h.slack.ephemerals()[-1].text

    # An image whose download URL points elsewhere: the token is never sent there.
    evil = h.slack.share_file(_png(), url_private_download="https://attacker.example/steal.png")
    await h.interact(_shortcut_payload(h, [evil]))
    await h.slack.server.received(lambda: h.slack.views)
    view = h.slack.views[-1]["view"]
    await h.interact(_edit_submission(view, "demo", "brighter"))
    await h.settle()
    assert "not hosted by Slack" in h.slack.ephemerals()[-1].text
    assert not h.runtime.runlog.recent(10)

    # A file claiming PNG that is not one: refused after download, nothing runs.
    fake_png = h.slack.share_file(b"not really a png at all")
    opened = len(h.slack.views)
    await h.interact(_shortcut_payload(h, [fake_png]))
    await h.slack.server.received(lambda: len(h.slack.views) > opened)
    await h.interact(_edit_submission(h.slack.views[-1]["view"], "demo", "brighter"))
    await h.settle()
    assert "not a PNG, JPEG or WebP" in h.slack.ephemerals()[-1].text
    assert not h.runtime.runlog.recent(10)


async def test_edit_shortcut_refuses_a_vanished_or_oversized_download(start_harness):
    """The download's own checks (routes.download): Slack's HTTP answer, and the 20 MB cap
    counted while streaming whatever files.info claimed."""
    h = await start_harness()
    cases = [
        # Deleted between files.info and the download: Slack's file host answers 404.
        (
            h.slack.share_file(
                _png(), url_private_download=f"{h.slack.server.url}/files-pri/F0GONE"
            ),
            "Slack did not hand over the file (HTTP 404)",
        ),
        # files.info says 1 kB; the file is over 20 MB: cut off while streaming.
        (
            h.slack.share_file(_png() + bytes(21 * 1024 * 1024), size=1024),
            "larger than 20 MB",
        ),
    ]
    for shared, words in cases:
        opened = len(h.slack.views)
        await h.interact(_shortcut_payload(h, [shared]))
        await h.slack.server.received(lambda opened=opened: len(h.slack.views) > opened)
        await h.interact(_edit_submission(h.slack.views[-1]["view"], "demo", "brighter"))
        await h.settle()
        assert words in h.slack.ephemerals()[-1].text
    assert not h.runtime.runlog.recent(10)


async def test_app_home_shows_routes_runs_spend_and_a_retry_is_not_redone(start_harness):
    h = await start_harness()
    await _one_run(h)
    response = await h.event({"type": "app_home_opened", "user": USER, "tab": "home"})
    assert response.status_code == 200
    # The tab is built in the background after the event is acknowledged.
    [published] = await h.slack.received(h.slack.published)
    assert published["user_id"] == USER
    home = json.dumps(published["view"])
    for expected in ("`demo`", "`slowdemo`", "Demo team", "a teal teapot", "Spend this week"):
        assert expected in home
    # Slack re-delivers the same event: acknowledged, not handled twice.
    retry = await h.event(
        {"type": "app_home_opened", "user": USER, "tab": "home"}, **{"X-Slack-Retry-Num": "1"}
    )
    assert retry.status_code == 200
    await h.event({"type": "app_home_opened", "user": OTHER_USER, "tab": "home"})
    await h.slack.received(lambda: len(h.slack.published()) >= 2)
    assert [v["user_id"] for v in h.slack.views if v["method"] == "publish"] == [USER, OTHER_USER]
    assert len([v for v in h.slack.views if v["method"] == "publish"]) == 2


async def test_long_prompt_is_trimmed_for_display_and_kept_whole_in_the_log(start_harness):
    h = await start_harness()
    prompt = "a very detailed scene " + " ".join(f"detail{i}" for i in range(400))
    assert 3000 < len(prompt) <= 4000
    await h.command("/imagegen", f'route=demo prompt="{prompt}"')
    await h.settle()
    parent = h.slack.top_level(CHANNEL)[-1]
    for block in parent.blocks or []:
        text = (block.get("text") or {}).get("text", "")
        assert len(text) <= 3000  # Block Kit section limit
    assert len(parent.text) <= 40000 and "…" in json.dumps(parent.blocks, ensure_ascii=False)
    run = h.runtime.runlog.recent(1)[0]
    assert run.prompt == prompt and run.status == "succeeded"

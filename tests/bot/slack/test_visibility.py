"""Viewer-scoped visibility: App Home and `/imageroute runs|stats` show a viewer their own runs
and the runs of the conversation they ask from, never a private channel's; a button naming
another conversation's run is refused. Asserted on what the fake Slack received."""

from __future__ import annotations

import json
from typing import Any

from tests.bot.conftest import CHANNEL, USER, BotHarness, button

PRIVATE = "G0PRIVATE1"
INSIDER = "U0INSIDER1"
SECRET_PROMPT = "quarterly roadmap mock-up for project nightjar"


async def _runs(h: BotHarness) -> None:
    """A private-channel run by the insider, then a public one by the usual user."""
    await h.command(
        "/imagegen", f'route=demo prompt="{SECRET_PROMPT}"', channel=PRIVATE, user=INSIDER
    )
    await h.settle()
    await h.command("/imagegen", 'route=demo prompt="a public red kite"')
    await h.settle()


async def _lookup(h: BotHarness, text: str, *, channel: str, user: str) -> str:
    """The private answer (through the command's response_url: only `user` sees it)."""
    return json.dumps(await _private_answer(h, text, channel=channel, user=user))


async def _private_answer(
    h: BotHarness, text: str, *, channel: str, user: str
) -> list[dict[str, Any]]:
    before = len(h.slack.responses)
    await h.command("/imageroute", text, channel=channel, user=user)
    await h.settle()
    [answer] = h.slack.responses[before:]
    assert answer["response_type"] == "ephemeral"
    blocks: list[dict[str, Any]] = answer["blocks"]
    return blocks


async def test_runs_and_stats_show_only_what_the_viewer_may_see(start_harness):
    h = await start_harness()
    await _runs(h)
    private_run, public_run = sorted(h.runtime.runlog.recent(5), key=lambda r: r.id or 0)
    assert private_run.slack_channel == PRIVATE

    seen_by_outsider = await _lookup(h, "runs", channel=CHANNEL, user=USER)
    assert (
        f"#{public_run.id} " in seen_by_outsider and f"#{private_run.id} " not in seen_by_outsider
    )
    # The insider sees their own private run from anywhere, and this channel's.
    seen_by_insider = await _lookup(h, "runs", channel=CHANNEL, user=INSIDER)
    assert f"#{public_run.id} " in seen_by_insider and f"#{private_run.id} " in seen_by_insider

    stats = await _lookup(h, "stats", channel=CHANNEL, user=USER)
    assert "demo" in stats
    row = next(line for line in stats.split("\\n") if line.startswith("demo"))
    assert row.split()[1] == "1"  # one run counted, not two

    # Shared in the channel, the insider's answer shows the channel's runs only: their own
    # private run stays out of what everyone there reads.
    answer = await _private_answer(h, "runs", channel=CHANNEL, user=INSIDER)
    await h.interact(h.click_private(button(answer, "share_answer"), user=INSIDER))
    await h.settle()
    shared = h.slack.top_level(CHANNEL)[-1]
    shown = json.dumps(shared.blocks)
    assert shared.text == "Recent runs" and f"<@{INSIDER}>" in shown
    assert f"#{public_run.id} " in shown and f"#{private_run.id} " not in shown, shown

    # App Home: the outsider's own runs only.
    await h.event({"type": "app_home_opened", "user": USER, "tab": "home", "channel": "D0HOME"})
    await h.slack.received(lambda: h.slack.published())
    home = json.dumps(h.slack.published()[-1]["view"])
    assert "public red kite" in home and "nightjar" not in home
    # Nothing the bot sent outside the private channel mentions the private prompt.
    outside = [m for m in h.slack.messages if m.channel != PRIVATE]
    assert not [m for m in outside if "nightjar" in (m.text + json.dumps(m.blocks))]


async def test_a_button_naming_another_conversations_run_is_refused(start_harness):
    h = await start_harness()
    await _runs(h)
    private_run, public_run = sorted(h.runtime.runlog.recent(5), key=lambda r: r.id or 0)
    parent = h.slack.top_level(CHANNEL)[0]
    actions = next(m for m in h.slack.thread(CHANNEL, parent.ts) if getattr(m, "blocks", None))
    for action_id in ("rerun", "verdict_pass"):
        forged = {**button(actions, action_id), "value": str(private_run.id)}
        await h.interact(h.click(actions, forged))
        await h.settle()
    assert len(h.runtime.runlog.recent(10)) == 2  # nothing re-ran the private prompt
    assert h.runtime.runlog.verdicts(private_run.id) == []
    refusals = [m.text for m in h.slack.ephemerals() if m.user == USER]
    assert len(refusals) == 2 and all("another conversation" in t for t in refusals)
    # The genuine button still works.
    await h.interact(h.click(actions, button(actions, "rerun")))
    await h.settle()
    latest = h.runtime.runlog.recent(1)[0]
    assert latest.prompt == "a public red kite" and latest.id != public_run.id

"""/imageroute end to end: advice in Block Kit, subcommands, help for unknown input."""

from __future__ import annotations

import json
from typing import Any

from tests.bot.conftest import CHANNEL, USER


def _text(blocks: Any) -> str:
    return json.dumps(blocks)


async def test_question_gets_advice_with_caveat_and_compare_button(start_harness):
    h = await start_harness()
    response = await h.command(
        "/imageroute", "we're on GCP and need product shots with transparent backgrounds"
    )
    assert response.status_code == 200
    await h.settle()
    [answer] = h.slack.top_level(CHANNEL)
    text = _text(answer.blocks)
    assert "First route to benchmark: `google`" in text
    assert "GCP" in text or "gcp" in text.lower()
    assert "transparen" in text.lower()
    assert "Verify on it" in text
    buttons = [e for b in answer.blocks if b["type"] == "actions" for e in b["elements"]]
    # The workspace has a route on the google-adjacent alternatives? At least the button lists
    # configured routes serving the recommended or alternative rows.
    for button in buttons:
        assert button["action_id"] == "advice_compare"
        assert set(button["value"].split(",")) <= {"demo", "slowdemo"}


async def test_negation_moves_the_answer(start_harness):
    h = await start_harness()
    await h.command("/imageroute", "we are NOT on Google Cloud and we run our own GPUs on-prem")
    await h.settle()
    [answer] = h.slack.top_level(CHANNEL)
    assert "`self-hosted`" in _text(answer.blocks)
    # slowdemo serves the self-hosted row: the workspace section shows it.
    assert "slowdemo" in _text(answer.blocks)


async def test_unknown_subcommand_and_empty_get_help(start_harness):
    h = await start_harness()
    for text in ("", "frobnicate", "help"):
        response = await h.command("/imageroute", text)
        body = response.json()
        assert body["response_type"] == "ephemeral"
        assert "/imageroute <question>" in _text(body["blocks"])
    await h.settle()
    assert h.slack.top_level(CHANNEL) == []


async def test_routes_stats_runs(start_harness):
    h = await start_harness()
    await h.command("/imagegen", 'route=demo prompt="a cat"')
    await h.settle()
    for sub in ("routes", "stats", "runs"):
        # One at a time: each answer is posted when ready, so concurrent ones may swap places.
        await h.command("/imageroute", sub)
        await h.settle()
    messages = h.slack.top_level(CHANNEL)
    routes, stats, runs = (_text(m.blocks) for m in messages[1:])
    assert "`demo`: demo" in routes and "Demo team" in routes
    assert "demo" in stats and "100%" in stats
    assert "#1" in runs and "thread" in runs and "succeeded" in runs


async def test_advice_compare_button_runs_routes(start_harness):
    h = await start_harness()
    await h.command("/imageroute", "on-prem GPUs, nothing leaves our VPC")
    await h.settle()
    [answer] = h.slack.top_level(CHANNEL)
    button = next(e for b in answer.blocks if b["type"] == "actions" for e in b["elements"])
    payload = {
        "type": "block_actions",
        "user": {"id": USER},
        "team": {"id": "T0TEAM"},
        "channel": {"id": CHANNEL},
        "container": {"type": "message", "channel_id": CHANNEL, "message_ts": answer.ts},
        "message": {"ts": answer.ts, "text": ""},
        "trigger_id": "t.1",
        "response_url": h.slack.response_url("adv"),
        "actions": [{**button, "action_ts": "1.1", "block_id": "advice"}],
    }
    response = await h.interact(payload)
    assert response.status_code == 200
    await h.settle()
    # The button opens a modal asking for the prompt, listing the routes it will run on.
    [opened] = [v for v in h.slack.views if v["method"] == "open"]
    modal = opened["view"]
    assert modal["callback_id"] == "compare_modal"
    metadata = json.loads(modal["private_metadata"])
    assert "slowdemo" in metadata["routes"]

    def submission(prompt: str, view_id: str) -> dict[str, Any]:
        return {
            "type": "view_submission",
            "user": {"id": USER},
            "team": {"id": "T0TEAM"},
            "view": {
                **modal,
                "id": view_id,
                "hash": "h1",
                "state": {"values": {"prompt": {"value": {"type": "x", "value": prompt}}}},
            },
        }

    # An empty prompt is refused inside the modal, nothing runs.
    refused = await h.interact(submission("   ", "V1"))
    assert refused.json()["response_action"] == "errors"
    assert "prompt" in refused.json()["errors"]
    accepted = await h.interact(submission("a red kite over dunes", "V2"))
    assert accepted.status_code == 200
    await h.settle()
    parents = h.slack.top_level(CHANNEL)
    assert len(parents) == 2 and "a red kite over dunes" in parents[-1].text
    runs = h.runtime.runlog.recent(10)
    assert {r.route_id for r in runs} == set(metadata["routes"])


async def test_the_question_is_quoted_literally(start_harness):
    h = await start_harness()
    await h.command("/imageroute", "we are on GCP <!channel> and need logos")
    await h.settle()
    [answer] = h.slack.top_level(CHANNEL)
    text = _text(answer.blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text

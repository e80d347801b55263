"""/imageroute end to end: private answers in Block Kit, subcommands, help for unknown input."""

from __future__ import annotations

import json
from typing import Any

from tests.bot.conftest import CHANNEL, USER, BotHarness, button


def _text(blocks: Any) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def _shown(node: Any) -> str:
    """Only what Slack renders: the text of every text object (button values are not shown)."""
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) else []
        return "\n".join(own + [_shown(v) for k, v in node.items() if k != "value"])
    if isinstance(node, list):
        return "\n".join(_shown(v) for v in node)
    return ""


async def _answer(h: BotHarness, text: str) -> list[dict[str, Any]]:
    """The private answer to `/imageroute <text>` (through the command's response_url)."""
    before = len(h.slack.responses)
    await h.command("/imageroute", text)
    await h.settle()
    [answer] = h.slack.responses[before:]
    assert answer["response_type"] == "ephemeral"
    blocks: list[dict[str, Any]] = answer["blocks"]
    return blocks


async def test_question_gets_advice_with_caveat_and_compare_button(start_harness):
    h = await start_harness()
    blocks = await _answer(h, "we're on GCP and need product shots with transparent backgrounds")
    text = _text(blocks)
    assert blocks[0]["text"]["text"] == "Benchmark first: Google Cloud / Vertex AI"
    assert "GCP" in text
    assert "transparen" in text.lower()
    assert "*Check first*" in text
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    compare = [b for b in buttons if b["action_id"] == "advice_compare"]
    # The compare button lists configured routes serving the advised or alternative rows.
    for b in compare:
        assert set(b["value"].split(",")) <= {"demo", "slowdemo"}
    assert h.slack.top_level(CHANNEL) == []


async def test_negation_moves_the_answer(start_harness):
    h = await start_harness()
    blocks = await _answer(h, "we are NOT on Google Cloud and we run our own GPUs on-prem")
    assert blocks[0]["text"]["text"] == "Benchmark first: Self-hosted"
    # slowdemo serves the self-hosted row: the workspace line shows it.
    assert "slowdemo" in _text(blocks)


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
    routes = _text(await _answer(h, "routes"))
    stats = _text(await _answer(h, "stats"))
    runs = _text(await _answer(h, "runs"))
    assert "`demo`: demo" in routes and "Demo team" in routes
    assert "demo" in stats and "100%" in stats
    assert "#1" in runs and "thread" in runs and "succeeded" in runs


async def test_advice_compare_button_runs_routes(start_harness):
    h = await start_harness()
    blocks = await _answer(h, "on-prem GPUs, nothing leaves our VPC")
    compare = button(blocks, "advice_compare")
    assert compare["text"]["text"] == "Compare on slowdemo"
    response = await h.interact(h.click_private(compare))
    assert response.status_code == 200
    await h.settle()
    # The button opens a modal asking for the prompt, listing the routes it will run on.
    [opened] = h.slack.published("open")
    modal = opened["view"]
    assert modal["callback_id"] == "compare_modal"
    assert "`slowdemo`" in _text(modal["blocks"])
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

    # An empty prompt is refused inside the modal, in the form's words; nothing runs.
    refused = await h.interact(submission("   ", "V1"))
    assert refused.json() == {
        "response_action": "errors",
        "errors": {"prompt": "Describe the image you want."},
    }
    accepted = await h.interact(submission("a red kite over dunes", "V2"))
    assert accepted.status_code == 200
    await h.settle()
    [parent] = h.slack.top_level(CHANNEL)
    assert "a red kite over dunes" in parent.all_text()
    assert f"<@{USER}> compared `slowdemo` from route advice" in parent.all_text()
    runs = h.runtime.runlog.recent(10)
    assert {r.route_id for r in runs} == set(metadata["routes"])


async def test_the_question_is_quoted_literally(start_harness):
    h = await start_harness()
    blocks = await _answer(h, "we are on GCP <!channel> and need logos")
    assert "<!channel>" not in _shown(blocks)
    await h.interact(h.click_private(button(blocks, "share_answer")))
    await h.settle()
    [shared] = h.slack.top_level(CHANNEL)
    text = _shown(shared.blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text

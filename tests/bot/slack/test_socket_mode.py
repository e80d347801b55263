"""Socket Mode, the default transport of `imageroute serve`: the same commands, actions, views
and events as HTTP mode, over a loopback WebSocket with a fake apps.connections.open."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.slack.app import SlackBot
from bot.wiring.runtime import Runtime
from bot.wiring.serve import connect_socket_mode, start_bot
from tests.bot.conftest import BOT_TOKEN, CHANNEL, DEMO_CONFIG, USER
from tests.conftest import SettingsFactory
from tests.fakes.slack import Message, SlackFake
from tests.fakes.socket_mode import SocketModeFake


@pytest.fixture
async def socket_bot(
    make_settings: SettingsFactory, slack_fake: SlackFake
) -> AsyncIterator[tuple[SlackBot, SocketModeFake, Runtime]]:
    ws = await SocketModeFake().start()
    slack_fake.socket_url = ws.url
    settings = make_settings(
        DEMO_CONFIG,
        slack_bot_token=BOT_TOKEN,
        slack_app_token="xapp-1-A0APP-test-token",
        slack_api_url=slack_fake.api_url,
    )
    runtime = await asyncio.to_thread(Runtime.open, settings, role="bot")
    bot = await start_bot(settings, runtime)
    handler = await connect_socket_mode(bot, settings)
    await ws.connected()
    yield bot, ws, runtime
    await bot.tasks.drain(10)
    await handler.close_async()
    await bot.aclose()
    await ws.stop()
    await runtime.aclose()


def envelope(kind: str, eid: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "envelope_id": eid,
        "type": kind,
        "accepts_response_payload": kind != "events_api",
        "payload": payload,
        **extra,
    }


def command(text: str, trigger: str) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": "T0TEAM",
        "channel_id": CHANNEL,
        "user_id": USER,
        "command": "/imagegen",
        "text": text,
        "api_app_id": "A0APP",
        "trigger_id": trigger,
        "response_url": "http://127.0.0.1:9/unused",
    }


async def settle(bot: SlackBot) -> None:
    await asyncio.wait_for(bot.tasks.idle(), 20)


async def test_commands_actions_views_and_events_over_socket_mode(
    socket_bot, slack_fake: SlackFake
):
    bot, ws, runtime = socket_bot
    # A bad command: the ack carries the one-sentence answer, nothing runs.
    await ws.send(envelope("slash_commands", "e-bad", command('route=nope prompt="x"', "t1")))
    bad = await ws.ack_for("e-bad")
    assert "no route `nope`" in json.dumps(bad["payload"])

    # A good command: empty ack at once, then the image in a thread.
    await ws.send(
        envelope("slash_commands", "e-ok", command('route=demo prompt="a paper boat"', "t2"))
    )
    ok = await ws.ack_for("e-ok")
    assert not ok.get("payload")
    await settle(bot)
    [parent] = slack_fake.top_level(CHANNEL)
    thread = slack_fake.thread(CHANNEL, parent.ts)
    assert [m for m in thread if isinstance(m, Message) and m.image_blocks()]
    run = runtime.runlog.recent(1)[0]
    assert run.status == "succeeded" and run.slack_thread_ts == parent.ts

    # A verdict button.
    actions = next(m for m in thread if isinstance(m, Message) and m.blocks)
    button = next(
        e
        for b in actions.blocks or []
        for e in b.get("elements", [])
        if e.get("action_id") == "verdict_pass"
    )
    click = {
        "type": "block_actions",
        "user": {"id": USER},
        "team": {"id": "T0TEAM"},
        "channel": {"id": CHANNEL},
        "container": {"type": "message", "message_ts": actions.ts, "channel_id": CHANNEL},
        "message": {"ts": actions.ts, "thread_ts": parent.ts},
        "trigger_id": "t3",
        "actions": [{**button, "action_ts": "1.2", "block_id": "b"}],
    }
    await ws.send(envelope("interactive", "e-click", click))
    await ws.ack_for("e-click")
    await settle(bot)
    assert runtime.runlog.verdicts(run.id)[0].survives is True

    # The edit shortcut opens its modal; an empty instruction comes back as view errors.
    output = runtime.runlog.assets(run.id, "output")[0].path
    shared = slack_fake.share_file(Path(output).read_bytes())
    shortcut = {
        "type": "message_action",
        "callback_id": "edit_image",
        "trigger_id": "t4",
        "user": {"id": USER},
        "team": {"id": "T0TEAM"},
        "channel": {"id": CHANNEL},
        "message_ts": parent.ts,
        "message": {"ts": parent.ts, "files": [shared]},
    }
    await ws.send(envelope("interactive", "e-short", shortcut))
    await ws.ack_for("e-short")
    [opened] = await slack_fake.received(lambda: slack_fake.published("open"))
    modal = opened["view"]
    submission = {
        "type": "view_submission",
        "user": {"id": USER},
        "team": {"id": "T0TEAM"},
        "view": {
            **modal,
            "id": "V1",
            "hash": "h",
            "state": {
                "values": {
                    "route": {"value": {"selected_option": {"value": "demo"}}},
                    "instruction": {"value": {"value": ""}},
                    "mask": {"value": {"files": []}},
                }
            },
        },
    }
    await ws.send(envelope("interactive", "e-view", submission))
    ack = await ws.ack_for("e-view")
    assert (
        ack["payload"]["response_action"] == "errors" and "instruction" in ack["payload"]["errors"]
    )

    # App Home, and the same event re-delivered (retry_attempt) is not handled twice.
    home: dict[str, Any] = {"type": "app_home_opened", "user": USER, "tab": "home"}
    event = {
        "type": "event_callback",
        "team_id": "T0TEAM",
        "api_app_id": "A0APP",
        "event_id": "Ev1",
        "event": home,
    }
    await ws.send(envelope("events_api", "e-home", event))
    await ws.ack_for("e-home")
    await slack_fake.received(slack_fake.published)
    await ws.send(
        envelope("events_api", "e-home-2", event, retry_attempt=1, retry_reason="timeout")
    )
    await ws.ack_for("e-home-2")
    # A later, new event is handled: by then a handled retry would have published too.
    other = {**event, "event_id": "Ev2", "event": {**home, "user": "U0OTHER"}}
    await ws.send(envelope("events_api", "e-home-3", other))
    await ws.ack_for("e-home-3")
    await slack_fake.received(lambda: len(slack_fake.published()) >= 2)
    assert [v["user_id"] for v in slack_fake.published()] == [USER, "U0OTHER"]

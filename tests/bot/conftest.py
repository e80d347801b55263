"""The whole bot over HTTP on loopback, talking to a fake Slack Web API.

Tests send signed requests to POST /slack/events exactly as Slack does, then read what the bot
posted from the fake. Nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from bot.slack.app import SlackBot
from bot.wiring.metrics import Metrics
from bot.wiring.runtime import Runtime
from bot.wiring.serve import build_http_app, start_bot
from bot.wiring.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.slack import Message, SlackFake, signed_headers

SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-0000-bot-token"
CHANNEL = "C0TEST0001"
USER = "U0USER0001"

DEMO_CONFIG = """
[routes.demo]
kind = "demo"
billing_owner = "Demo team"
route_owner = "built-in demo"
board = "openai"

[routes.slowdemo]
kind = "demo"
delay_seconds = 0.3
billing_owner = "Demo team"
board = "self-hosted"
"""


@pytest.fixture
def slack_fake() -> Iterator[SlackFake]:
    fake = SlackFake().start()
    yield fake
    fake.stop()


@dataclass
class BotHarness:
    url: str
    bot: SlackBot
    runtime: Runtime
    slack: SlackFake
    client: httpx.AsyncClient
    _seq: list[int] = field(default_factory=lambda: [0])

    def sign(self, body: str, timestamp: int | None = None) -> dict[str, str]:
        """Headers Slack sends with `body`, signed as slack_sdk's verifier expects."""
        return signed_headers(body, SIGNING_SECRET, timestamp=timestamp)

    def next_id(self) -> str:
        self._seq[0] += 1
        return f"{int(time.time() * 1000)}.{self._seq[0]}"

    async def command(
        self,
        name: str,
        text: str,
        *,
        channel: str = CHANNEL,
        user: str = USER,
        trigger_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        form = {
            "token": "legacy",
            "team_id": "T0TEAM",
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": "tester",
            "command": name,
            "text": text,
            "api_app_id": "A0APP",
            "response_url": self.slack.response_url(self.next_id()),
            "trigger_id": trigger_id or f"trigger.{self.next_id()}",
        }
        body = urlencode(form)
        return await self.client.post(
            "/slack/events", content=body, headers={**self.sign(body), **(headers or {})}
        )

    async def interact(self, payload: dict[str, Any]) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.client.post("/slack/events", content=body, headers=self.sign(body))

    def click(
        self,
        message: Message,
        action: dict[str, Any],
        user: str = USER,
        option: str | None = None,
    ) -> dict[str, Any]:
        """The block_actions payload Slack sends when `user` uses `action` on `message` (with a
        menu's `option` value picked). An ephemeral message's payload carries no `message`."""
        picked = {}
        if option is not None:
            [chosen] = [o for o in action.get("options", []) if o["value"] == option]
            picked = {"selected_option": chosen}
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user},
            "team": {"id": "T0TEAM"},
            "channel": {"id": message.channel},
            "container": {
                "type": "message",
                "channel_id": message.channel,
                "message_ts": message.ts,
                "is_ephemeral": message.kind == "ephemeral",
            },
            "trigger_id": f"trigger.{self.next_id()}",
            "response_url": self.slack.response_url(self.next_id()),
            "actions": [{**action, **picked, "action_ts": self.next_id(), "block_id": "result"}],
        }
        if message.kind != "ephemeral":
            payload["message"] = {
                "ts": message.ts,
                "thread_ts": message.thread_ts,
                "blocks": message.blocks,
            }
        return payload

    def click_private(
        self, action: dict[str, Any], user: str = USER, channel: str = CHANNEL
    ) -> dict[str, Any]:
        """The payload of a click on a private answer (a response_url reply only its user sees):
        Slack sends no `message` for those, only that the container is ephemeral."""
        return {
            "type": "block_actions",
            "user": {"id": user},
            "team": {"id": "T0TEAM"},
            "channel": {"id": channel},
            "container": {"type": "message", "channel_id": channel, "is_ephemeral": True},
            "trigger_id": f"trigger.{self.next_id()}",
            "response_url": self.slack.response_url(self.next_id()),
            "actions": [{**action, "action_ts": self.next_id(), "block_id": "answer"}],
        }

    async def event(self, event: dict[str, Any], **headers: str) -> httpx.Response:
        envelope = {
            "token": "legacy",
            "team_id": "T0TEAM",
            "api_app_id": "A0APP",
            "type": "event_callback",
            "event_id": f"Ev{self.next_id()}",
            "event_time": int(time.time()),
            "event": event,
        }
        body = json.dumps(envelope)
        sig = self.sign(body)
        sig["Content-Type"] = "application/json"
        return await self.client.post("/slack/events", content=body, headers={**sig, **headers})

    async def settle(self, timeout: float = 20.0) -> None:
        """Wait until every background task of the bot has finished."""
        try:
            await asyncio.wait_for(self.bot.tasks.idle(), timeout)
        except TimeoutError:
            raise AssertionError("bot background tasks did not finish") from None


def button(message: Message | list[dict[str, Any]], action_id: str) -> dict[str, Any]:
    """The interactive element with this action id in a message's (or an answer's) blocks."""
    blocks = message if isinstance(message, list) else message.blocks or []
    for block in blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return dict(element)
    raise AssertionError(f"no {action_id} button in {blocks}")


@pytest.fixture
def bot_settings(make_settings: SettingsFactory, slack_fake: SlackFake) -> SettingsFactory:
    """Settings of a bot talking to the fake Slack (HTTP mode: a signing secret is set)."""

    def make(
        config: str = DEMO_CONFIG, database_url: str | None = None, **overrides: Any
    ) -> Settings:
        return make_settings(
            config,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack_fake.api_url,
            database_url=database_url,
            **overrides,
        )

    return make


async def serve_bot(
    settings: Settings,
    runtime: Runtime,
    slack: SlackFake,
    *,
    timeout: float = 10,
    metrics: Metrics | None = None,
) -> tuple[BotHarness, uvicorn.Server, asyncio.Task[None]]:
    """The bot over `runtime`, served over HTTP on a free loopback port in this event loop
    (the tests' harness and the benchmarks'); stop it with `server.should_exit` and the task."""
    bot = await start_bot(settings, runtime)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(build_http_app(bot, runtime, metrics), log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.005)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    client = httpx.AsyncClient(base_url=url, timeout=timeout)
    return BotHarness(url, bot, runtime, slack, client), server, task


@pytest.fixture
async def start_harness(
    slack_fake: SlackFake, bot_settings: SettingsFactory
) -> AsyncIterator[Callable[..., Any]]:
    """Call `await start_harness(config=...)` to get a running bot; stopped after the test."""
    running: list[tuple[BotHarness, uvicorn.Server, asyncio.Task[None]]] = []

    async def start(
        config: str = DEMO_CONFIG, database_url: str | None = None, **overrides: Any
    ) -> BotHarness:
        settings = bot_settings(config, database_url, **overrides)
        runtime = await asyncio.to_thread(Runtime.open, settings, role="bot")
        harness, server, task = await serve_bot(settings, runtime, slack_fake)
        running.append((harness, server, task))
        return harness

    yield start
    for harness, server, task in running:
        await harness.bot.tasks.drain(10)
        await harness.bot.aclose()
        await harness.client.aclose()
        server.should_exit = True
        await task
        await harness.runtime.aclose()

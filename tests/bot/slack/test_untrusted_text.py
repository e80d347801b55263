"""Untrusted text on its way out: prompts, questions and provider messages are shown literally
(never as live Slack markup), and a secret a provider echoes back reaches no table, no Slack
payload and no CLI output. Asserted on what the fake Slack received and on every table."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.core.markup import escape
from bot.core.requests import build_request
from routes.errors import InvalidRequest
from tests.bot.conftest import CHANNEL, USER, BotHarness
from tests.fakes.openai import OpenAIFake
from tests.fakes.server import RecordedRequest, Reply

GATEWAY_KEY = "gwkey-0123456789abcdef-secret"
HEADER_SECRET = "hdr-fedcba9876543210-secret"
SECRETS = (GATEWAY_KEY, HEADER_SECRET)

# Everything Slack would turn into a ping, a mention or a disguised link.
INJECTION = (
    "<!channel> <!here> @everyone <@U0BOSS> <!subteam^S0ALL> <https://evil.example|click me>"
)
LIVE_MARKUP = ("<!channel>", "<!here>", "<@U0BOSS>", "<!subteam^", "<https://evil", "@everyone")


def test_escape_leaves_no_live_markup() -> None:
    shown = escape(INJECTION + " & more")
    for live in LIVE_MARKUP:
        assert live not in shown
    assert "&lt;!channel&gt;" in shown and "&amp; more" in shown
    assert "@\u2060everyone" in shown  # reads the same, pings nobody


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\ud800"])
def test_characters_storage_cannot_hold_are_refused_at_parsing(char: str) -> None:
    with pytest.raises(InvalidRequest, match="cannot be stored"):
        build_request({"prompt": f"a red{char} kite"})
    assert build_request({"prompt": "tabs\tand\nlines"}).prompt == "tabs\tand\nlines"


def _slack_payloads(h: BotHarness) -> str:
    """Every request body the bot sent to Slack, and every response_url post."""
    bodies = [r.body.decode("utf-8", "replace") for r in h.slack.server.requests]
    return "\n".join(bodies) + json.dumps(h.slack.responses)


def _outgoing_text(h: BotHarness) -> str:
    """What the bot posted, as Slack would read it (JSON strings decoded)."""
    parts: list[str] = []
    for m in h.slack.messages:
        parts.append(m.text)
        parts.append(json.dumps(m.blocks or [], ensure_ascii=False))
        parts.extend(json.dumps(u, ensure_ascii=False) for u in m.updates)
        if m.file is not None:
            parts.append(f"{m.file.comment} {m.file.title} {m.file.filename}")
    parts.extend(json.dumps(v, ensure_ascii=False) for v in h.slack.views)
    parts.append(json.dumps(h.slack.responses, ensure_ascii=False))
    return "\n".join(parts)


def _table_dump(engine: sa.Engine) -> str:
    rows = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                rows.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(rows)


@pytest.fixture
def gateway() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(flavor="gateway", api_key=GATEWAY_KEY).start()
    yield fake
    fake.stop()


def _gateway_config(url: str) -> str:
    return f"""
[probes]
failure_threshold = 1

[routes.gw]
kind = "gateway"
model = "openai/gpt-image-2"
api_key = "{GATEWAY_KEY}"
base_url = "{url}"
headers = {{ "X-Gateway-Secret" = "{HEADER_SECRET}" }}
underlying_model = "gpt-image-2"
retries = 0
probe = "generate"
"""


def _echo_everything(_endpoint: str, req: RecordedRequest) -> Reply:
    """A gateway that repeats the request in its error: credentials, header and prompt."""
    prompt = (req.json() or {}).get("prompt", "") if req.body else ""
    message = (
        f"upstream refused: Authorization: {req.headers.get('authorization')} "
        f"x-gateway-secret={req.headers.get('x-gateway-secret')} prompt={prompt}"
    )
    return Reply(400, {"error": {"message": message, "type": "invalid_request_error"}})


async def test_echoed_secrets_and_markup_reach_no_table_payload_or_cli_output(
    start_harness, gateway: OpenAIFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    gateway.intercept = _echo_everything
    h = await start_harness(_gateway_config(gateway.url))
    await h.command("/imagegen", f'route=gw prompt="a kite {INJECTION}"')
    await h.settle()
    # A probe round (the scheduled prober's) records the echo as a health check and incident.
    await h.bot.monitor.round()
    await h.command("/imageroute", "health")
    await h.command("/imageroute", f"which route for posters? {INJECTION}")
    await h.event({"type": "app_home_opened", "user": USER, "tab": "home", "channel": "D0HOME"})
    await h.settle()
    await h.slack.received(lambda: h.slack.published())

    run = h.runtime.runlog.recent(1)[0]
    assert run.status == "failed" and "upstream refused" in (run.error_message or "")
    assert gateway.calls("generations"), "the provider was called"
    # Each secret went over the wire to the provider, so the echo was real.
    sent = gateway.calls("generations")[0].headers
    assert GATEWAY_KEY in sent["authorization"] and sent["x-gateway-secret"] == HEADER_SECRET

    payloads = _slack_payloads(h)
    stored = _table_dump(h.runtime.engine)
    for secret in SECRETS:
        assert secret not in payloads
        assert secret not in stored
    assert "[redacted]" in stored and "[redacted]" in payloads

    shown = _outgoing_text(h)
    assert "upstream refused" in shown and "click me" in shown
    for live in LIVE_MARKUP:
        assert live not in shown, live

    # The CLI prints the probe and the exported log without the secrets either.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMAGEROUTE_CONFIG", str(tmp_path / "imageroute.toml"))
    monkeypatch.setenv("DATABASE_URL", h.runtime.settings.database_url)
    monkeypatch.setenv("ASSET_STORE", h.runtime.settings.asset_store)
    # (in a thread: each command runs its own event loop)
    probe = await asyncio.to_thread(CliRunner().invoke, cli_app, ["probe"])
    assert "FAILED" in probe.output and "upstream refused" in probe.output
    exported = await asyncio.to_thread(CliRunner().invoke, cli_app, ["export"])
    listed = await asyncio.to_thread(CliRunner().invoke, cli_app, ["runs"])
    for output in (probe.output, exported.output, listed.output):
        for secret in SECRETS:
            assert secret not in output


async def test_app_home_shows_prompts_as_text(start_harness):
    h = await start_harness()
    # App Home shows a prompt's first 60 characters: the disguised link comes first.
    await h.command("/imagegen", 'route=demo prompt="<https://evil.example|click me> <!channel>"')
    await h.settle()
    await h.event({"type": "app_home_opened", "user": USER, "tab": "home", "channel": "D0HOME"})
    await h.slack.received(lambda: h.slack.published())
    view = json.dumps(h.slack.published()[-1]["view"], ensure_ascii=False)
    assert "click me" in view
    for live in LIVE_MARKUP:
        assert live not in view
    parent = h.slack.top_level(CHANNEL)[0]
    for live in LIVE_MARKUP:
        assert live not in parent.text + json.dumps(parent.blocks)

"""Provider failures as a Slack user sees them: /imagegen on an openai route whose (fake) API
answers 401, 403 organization verification, 429 then success, 500, or too slowly. Each gives one
sentence in the thread with the error class and request id, and a failed run record; the key
never shows up anywhere."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.bot.conftest import CHANNEL, BotHarness
from tests.fakes.openai import OpenAIFake
from tests.fakes.server import Reply
from tests.fakes.slack import Message, Upload

API_KEY = "sk-test-secret-key-4242"


def _png() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "orange").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _ok() -> Reply:
    return Reply(
        200,
        {
            "created": 1,
            "data": [{"b64_json": _png()}],
            "usage": {
                "input_tokens": 20,
                "output_tokens": 272,
                "total_tokens": 292,
                "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
            },
        },
        headers={"x-request-id": "req_ok_1"},
    )


def _error(status: int, message: str, code: str | None, **headers: str) -> Reply:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return Reply(status, body, headers={"x-request-id": f"req_{status}", **headers})


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(api_key=API_KEY).start()
    yield fake
    fake.stop()


def _config(url: str, timeout: float = 10.0) -> str:
    # Only the timeout case needs a short timeout; the others must not time out on a busy machine.
    return f"""
[routes.openai]
kind = "openai"
model = "gpt-image-2"
api_key = "{API_KEY}"
base_url = "{url}/v1"
billing_owner = "Acme OpenAI org"
timeout_seconds = {timeout}
retries = 1
"""


async def _imagegen(h: BotHarness) -> tuple[str, list[Message | Upload]]:
    await h.command("/imagegen", 'route=openai prompt="a lighthouse at dusk" quality=low')
    await h.settle(30)
    parent = h.slack.top_level(CHANNEL)[-1]
    return parent.ts, h.slack.thread(CHANNEL, parent.ts)


def _texts(thread: list[Message | Upload]) -> str:
    return "\n".join(m.all_text() for m in thread if isinstance(m, Message))


@pytest.mark.parametrize(
    ("reply", "error_class", "expected"),
    [
        (
            _error(401, "Incorrect API key provided: sk-test-***4242.", "invalid_api_key"),
            "auth",
            "req_401",
        ),
        (
            _error(
                403,
                "Your organization must be verified to use the model `gpt-image-2`.",
                None,
            ),
            "auth",
            "verif",
        ),
        (_error(500, "The server had an error.", None), "provider_down", "req_500"),
        (Reply(200, {"data": []}, delay=3.0), "timeout", "timeout"),
    ],
    ids=["401", "403-org-verification", "500", "timeout"],
)
async def test_provider_failure_is_one_sentence_in_the_thread(
    start_harness, openai_fake: OpenAIFake, reply: Reply, error_class: str, expected: str
):
    openai_fake.queue("generations", reply, reply)
    h = await start_harness(
        _config(openai_fake.server.url, 0.5 if error_class == "timeout" else 10.0)
    )
    _, thread = await _imagegen(h)
    [message] = thread
    assert isinstance(message, Message)
    text = _texts(thread)
    assert f"failed ({error_class.replace('_', ' ')})" in text
    assert expected.lower() in text.lower()
    # One sentence and a next step; the provider's request id said once.
    blocks = json.dumps(message.blocks)
    assert "Re-run" in blocks or "another route" in blocks
    if "req_" in expected:
        assert blocks.count(expected) == 1
    assert API_KEY not in text and API_KEY not in json.dumps(h.slack.responses)
    run = h.runtime.runlog.recent(1)[0]
    assert run.status == "failed" and run.error_class == error_class
    assert API_KEY not in (run.error_message or "")
    assert not message.image_blocks()
    # No retry on auth errors; retries on 5xx and timeouts, each attempt recorded.
    calls = openai_fake.calls("generations")
    assert len(calls) == (1 if error_class == "auth" else 2)
    attempts = h.runtime.runlog.attempts(run.id)
    assert [(a.number, a.ok) for a in attempts] == [(i + 1, False) for i in range(len(calls))], [
        (a.error_class, a.status_code, a.message) for a in attempts
    ]
    assert calls[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_rate_limit_then_success_posts_the_image(start_harness, openai_fake: OpenAIFake):
    openai_fake.queue(
        "generations",
        _error(429, "Rate limit reached.", "rate_limit_exceeded", **{"retry-after": "0.2"}),
        _ok(),
    )
    h = await start_harness(_config(openai_fake.server.url))
    _, thread = await _imagegen(h)
    [message] = thread
    assert isinstance(message, Message) and len(h.slack.images(message)) == 1
    assert "req_ok_1" in message.all_text()
    run = h.runtime.runlog.recent(1)[0]
    assert run.status == "succeeded" and run.response_id == "req_ok_1"
    attempts = h.runtime.runlog.attempts(run.id)
    assert [a.ok for a in attempts] == [False, True]
    assert attempts[0].error_class == "rate_limit" and attempts[1].waited_s >= 0.2
    sent = openai_fake.calls("generations")[-1].json()
    assert sent["model"] == "gpt-image-2" and sent["quality"] == "low"
    # 20 text tokens at $5/M + 272 image tokens at $30/M, from the returned usage and the
    # gpt-image-2 rows on file.
    assert run.cost_usd == pytest.approx(20 * 5e-6 + 272 * 30e-6)
    assert run.cost_basis == "tokens"

"""openai edits, openai-responses and gateway routes through the real openai SDK against a
loopback fake; the tests read the wire request the fake received."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from routes.config import parse_config
from routes.errors import AuthError, RateLimitError, RouteError
from routes.executor import RouteExecutor
from routes.model import ImageRequest, InputImage
from routes.registry import build_route
from tests.fakes.openai import responses_body
from tests.fakes.server import FakeServer, Reply


def png(color: str = "red", size: tuple[int, int] = (16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", size, color).save(buf, format="PNG")
    return buf.getvalue()


B64 = base64.b64encode(png()).decode()


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer("openai").start()
    yield server
    server.stop()


def route(fake: FakeServer, body: str) -> Any:
    config = parse_config(body.replace("URL", fake.url), "test.toml", env={"KEY": "sk-wire-1"})
    return build_route(next(iter(config.routes.values())))


async def test_openai_edit_sends_images_and_mask_as_multipart(fake: FakeServer) -> None:
    fake.on(
        "POST",
        "/v1/images/edits",
        Reply(
            200,
            {
                "created": 1,
                "data": [{"b64_json": B64}],
                "size": "1024x1024",
                "quality": "high",
                "usage": {
                    "input_tokens": 300,
                    "output_tokens": 1000,
                    "input_tokens_details": {"text_tokens": 20, "image_tokens": 280},
                },
            },
            headers={"x-request-id": "req_edit"},
        ),
    )
    r = route(
        fake,
        '[routes.o]\nkind = "openai"\napi_key = "${KEY}"\nbase_url = "URL/v1"\n'
        'pricing = { basis = "tokens", text_input_per_mtok = 5.0, '
        "image_input_per_mtok = 8.0, image_output_per_mtok = 30.0 }\n",
    )
    request = ImageRequest(
        prompt="put the mug on a marble table",
        quality="high",
        input_images=(
            InputImage(png("blue"), name="mug.png"),
            InputImage(png("white"), name="table.png"),
        ),
        mask=InputImage(png("black"), name="mask.png"),
    )
    result = await RouteExecutor(r).generate(request)
    [call] = fake.calls("/v1/images/edits")
    form = call.multipart()
    assert form["model"] == "gpt-image-2" and form["prompt"] == "put the mug on a marble table"
    assert form["quality"] == "high"
    images = form["image[]"] if "image[]" in form else form["image"]
    assert [f[0] for f in images] == ["mug.png", "table.png"]
    assert form["mask"][0] == "mask.png" and form["mask"][1] == png("black")
    assert call.headers["authorization"] == "Bearer sk-wire-1"
    assert result.response_id == "req_edit"
    # 20 text-in at $5/M + 280 image-in at $8/M + 1000 image-out at $30/M
    assert result.cost.usd == pytest.approx(20 * 5e-6 + 280 * 8e-6 + 1000 * 30e-6)
    await r.aclose()


def _responses_body(**call: Any) -> dict[str, Any]:
    settings = {
        "revised_prompt": "A bright studio photo of a ceramic mug, soft shadows",
        "size": "1024x1536",
        "quality": "medium",
        "background": "opaque",
        "output_format": "png",
    }
    return responses_body(
        B64,
        response_id="resp_123",
        model="gpt-5-2025-08-07",
        text="Here is the hero image.",
        usage={
            "input_tokens": 50,
            "output_tokens": 40,
            "total_tokens": 90,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
        **{**settings, **call},
    )


async def test_responses_route_uses_the_image_generation_tool(fake: FakeServer) -> None:
    fake.on(
        "POST", "/v1/responses", Reply(200, _responses_body(), headers={"x-request-id": "req_r"})
    )
    r = route(
        fake,
        '[routes.a]\nkind = "openai-responses"\napi_key = "${KEY}"\n'
        'base_url = "URL/v1"\nmodel = "gpt-5.4"\nimage_model = "gpt-image-2"\n',
    )
    request = ImageRequest(
        prompt="Plan a campaign for our mug, then draw the hero image",
        size="1024x1536",
        quality="medium",
        input_images=(InputImage(png("blue"), name="mug.png"),),
    )
    result = await r.generate(request)
    [call] = fake.calls("/v1/responses")
    sent = call.json()
    assert sent["model"] == "gpt-5.4"
    assert sent["tool_choice"] == {"type": "image_generation"}
    [tool] = sent["tools"]
    assert tool == {
        "type": "image_generation",
        "model": "gpt-image-2",
        "size": "1024x1536",
        "quality": "medium",
    }
    content = sent["input"][0]["content"]
    assert content[0] == {"type": "input_text", "text": request.prompt}
    assert content[1]["image_url"].startswith("data:image/png;base64,")
    assert result.response_id == "resp_123"
    assert result.model == "gpt-5-2025-08-07"
    assert result.revised_prompt.startswith("A bright studio photo")  # type: ignore[union-attr]
    assert result.metadata["tool_settings"] == {
        "size": "1024x1536",
        "quality": "medium",
        "background": "opaque",
        "output_format": "png",
    }
    assert result.metadata["assistant_text"] == "Here is the hero image."
    assert result.underlying_model == "gpt-image-2"
    assert result.cost.usd is None and result.cost.basis == "unknown"  # not on file: not guessed
    assert result.images[0].data == png()
    await r.aclose()


async def test_responses_route_without_an_image_is_an_error(fake: FakeServer) -> None:
    body = _responses_body()
    body["output"] = body["output"][:1]
    fake.on("POST", "/v1/responses", Reply(200, body))
    r = route(
        fake, '[routes.a]\nkind = "openai-responses"\napi_key = "${KEY}"\nbase_url = "URL/v1"\n'
    )
    with pytest.raises(Exception, match="no image"):
        await r.generate(ImageRequest(prompt="draw"))
    await r.aclose()


GATEWAY = """
[routes.gw]
kind = "gateway"
model = "openai/gpt-image-2"
api_key = "${KEY}"
base_url = "URL/v1"
headers = { "X-Team" = "design", "X-Gateway-Secret" = "gw-secret-77" }
underlying_model = "gpt-image-2 (configured)"
"""


async def test_gateway_sends_extra_headers_and_logs_the_underlying_model(fake: FakeServer) -> None:
    fake.on(
        "POST",
        "/v1/images/generations",
        Reply(
            200,
            {"created": 1, "data": [{"b64_json": B64}]},
            headers={"x-model": "gpt-image-2-2026-04-21", "x-request-id": "gw_1"},
        ),
    )
    r = route(fake, GATEWAY)
    result = await r.generate(ImageRequest(prompt="a lamp", size="1024x1024"))
    [call] = fake.calls("/v1/images/generations")
    assert call.headers["x-team"] == "design" and call.headers["x-gateway-secret"] == "gw-secret-77"
    assert call.json()["model"] == "openai/gpt-image-2"
    assert result.underlying_model == "gpt-image-2-2026-04-21"
    assert result.cost.basis == "unknown"  # no gateway price configured
    assert "gw-secret-77" in r.config.secrets()  # redacted wherever text is shown
    await r.aclose()


async def test_gateway_falls_back_to_configured_underlying_model_and_price(
    fake: FakeServer,
) -> None:
    fake.on(
        "POST",
        "/v1/images/generations",
        Reply(200, {"created": 1, "data": [{"b64_json": B64}, {"b64_json": B64}]}),
    )
    r = route(fake, GATEWAY + 'pricing = { basis = "per_image", usd_per_image = 0.05 }\n')
    result = await RouteExecutor(r).generate(ImageRequest(prompt="a lamp", n=2))
    assert result.underlying_model == "gpt-image-2 (configured)"
    assert result.cost.usd == pytest.approx(0.10) and result.cost.basis == "list_price"
    await r.aclose()


async def test_gateway_errors_are_mapped_and_retried(fake: FakeServer) -> None:
    replies = iter(
        [
            Reply(429, {"error": {"message": "slow down"}}, headers={"retry-after": "3"}),
            Reply(200, {"created": 1, "data": [{"b64_json": B64}]}),
        ]
    )
    fake.on("POST", "/v1/images/generations", lambda _req: next(replies))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    executor = RouteExecutor(route(fake, GATEWAY), sleep=sleep)
    result = await executor.generate(ImageRequest(prompt="a lamp"))
    assert waits == [3.0]  # Retry-After honoured
    assert [a.ok for a in result.attempts] == [False, True]
    assert result.attempts[0].error_class == RateLimitError.error_class

    fake.on("POST", "/v1/images/generations", Reply(401, {"error": {"message": "bad key"}}))
    with pytest.raises(AuthError) as info:
        await executor.generate(ImageRequest(prompt="a lamp"))
    assert len(info.value.attempts) == 1  # never retried
    await executor.route.aclose()


async def test_500_twice_then_success_and_a_malformed_body(fake: FakeServer) -> None:
    replies = iter(
        [
            Reply(500, {"error": {"message": "boom"}}, headers={"x-request-id": "r500a"}),
            Reply(502, "<html>bad gateway</html>"),
            Reply(200, {"created": 1, "data": [{"b64_json": B64}]}, headers={"x-request-id": "ok"}),
        ]
    )
    fake.on("POST", "/v1/images/generations", lambda _req: next(replies))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    text = '[routes.o]\nkind = "openai"\napi_key = "${KEY}"\nbase_url = "URL/v1"\nretries = 2\n'
    executor = RouteExecutor(route(fake, text), sleep=sleep)
    result = await executor.generate(ImageRequest(prompt="a lamp"))
    assert [a.ok for a in result.attempts] == [False, False, True]
    assert result.attempts[0].request_id == "r500a" and result.response_id == "ok"
    assert len(waits) == 2 and 0 < waits[0] <= waits[1] * 2  # exponential backoff with jitter

    fake.on(
        "POST",
        "/v1/images/generations",
        Reply(200, "this is not json", content_type="application/json"),
    )
    with pytest.raises(RouteError) as info:
        await executor.generate(ImageRequest(prompt="a lamp"))
    assert info.value.error_class == "provider_down"
    assert len(info.value.attempts) == 1  # an unreadable answer is not retried blindly
    await executor.route.aclose()

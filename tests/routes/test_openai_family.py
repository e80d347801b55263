"""openai, openai-responses and gateway routes through the real openai SDK and the executor,
against the strict OpenAI fake; the tests read the wire request the fake received."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from routes.base import BaseRoute
from routes.config import parse_config
from routes.errors import AuthError, RateLimitError, RouteError
from routes.model import ImageRequest, InputImage
from routes.registry import build_route
from tests.fakes.openai import OpenAIFake, responses_body
from tests.fakes.pictures import holed_mask
from tests.fakes.server import Reply
from tests.routes.conftest import Backoff, Executor


def png(color: str = "red", size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", size, color).save(buf, format="PNG")
    return buf.getvalue()


def route(fake: OpenAIFake, body: str, env: dict[str, str] | None = None) -> Any:
    text = body.replace("URL", fake.url)
    config = parse_config(text, "test.toml", env={"KEY": "sk-wire-1", **(env or {})})
    built = build_route(next(iter(config.routes.values())))
    assert isinstance(built, BaseRoute)
    return built


OPENAI = '[routes.o]\nkind = "openai"\napi_key = "${KEY}"\nbase_url = "URL"\n'


async def test_openai_edit_sends_images_and_mask_as_multipart(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    b64 = base64.b64encode(png()).decode()
    openai_fake.queue(
        "edits",
        Reply(
            200,
            {
                "created": 1,
                "data": [{"b64_json": b64}],
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
        openai_fake,
        OPENAI + 'pricing = { basis = "tokens", text_input_per_mtok = 5.0, '
        "image_input_per_mtok = 8.0, image_output_per_mtok = 30.0 }\n",
    )
    request = ImageRequest(
        prompt="put the mug on a marble table",
        quality="high",
        input_images=(
            InputImage(png("blue"), name="mug.png"),
            InputImage(png("white"), name="table.png"),
        ),
        mask=InputImage(holed_mask(), name="mask.png"),
    )
    result = await executor(r).generate(request)
    assert not openai_fake.rejections
    [call] = openai_fake.calls("edits")
    form = call.multipart()
    assert form["model"] == "gpt-image-2" and form["prompt"] == "put the mug on a marble table"
    assert form["quality"] == "high"
    images = form["image[]"] if "image[]" in form else form["image"]
    assert [f[0] for f in images] == ["mug.png", "table.png"]
    assert form["mask"][0] == "mask.png" and form["mask"][1] == holed_mask()
    assert call.headers["authorization"] == "Bearer sk-wire-1"
    assert result.response_id == "req_edit"
    # 20 text-in at $5/M + 280 image-in at $8/M + 1000 image-out at $30/M
    assert result.cost.usd == pytest.approx(20 * 5e-6 + 280 * 8e-6 + 1000 * 30e-6)


async def test_an_edit_never_sends_moderation(openai_fake: OpenAIFake, executor: Executor) -> None:
    """images.edit takes no `moderation` (the SDK raised a TypeError before sending): an edit
    with the default moderation goes through without it; generations keep it."""
    r = route(openai_fake, OPENAI)
    routed = executor(r)
    edit = ImageRequest(
        prompt="make it blue", moderation="auto", input_images=(InputImage(png("red")),)
    )
    result = await routed.generate(edit)
    assert result.images and not openai_fake.rejections
    [call] = openai_fake.calls("edits")
    assert "moderation" not in call.multipart()

    await routed.generate(ImageRequest(prompt="a lamp", moderation="low"))
    [generation] = openai_fake.calls("generations")
    assert generation.json()["moderation"] == "low"


async def test_an_unset_organization_sends_no_header(
    openai_fake: OpenAIFake, monkeypatch: pytest.MonkeyPatch, executor: Executor
) -> None:
    # The example config says organization = "${OPENAI_ORG_ID:-}": unset, it expands to "".
    # The SDK would also fill it from the environment; neither may reach the wire.
    monkeypatch.setenv("OPENAI_ORG_ID", "org-from-somewhere-else")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-from-somewhere-else")
    r = route(openai_fake, OPENAI + 'organization = "${ORG:-}"\n')
    result = await executor(r).generate(ImageRequest(prompt="a lamp"))
    assert result.images and not openai_fake.rejections
    [call] = openai_fake.calls("generations")
    assert "openai-organization" not in call.headers
    assert "openai-project" not in call.headers

    openai_fake.organization = "org-acme"
    configured = route(openai_fake, OPENAI + 'organization = "${ORG:-}"\n', {"ORG": "org-acme"})
    await executor(configured).generate(ImageRequest(prompt="a lamp"))
    assert openai_fake.calls("generations")[-1].headers["openai-organization"] == "org-acme"


async def test_a_retired_model_answers_404_model_not_found(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    """The lifecycle data refuses gpt-image-1 at load; a route that insists reaches OpenAI's
    404 model_not_found, reported as a shut-down model, never retried."""
    r = route(openai_fake, OPENAI + 'model = "gpt-image-1"\nallow_retired_model = true\n')
    with pytest.raises(RouteError) as info:
        await executor(r).generate(ImageRequest(prompt="a lamp"))
    assert info.value.status_code == 404 and info.value.error_class == "model_retired"
    assert "gpt-image-2" in info.value.sentence() and len(info.value.attempts) == 1


def _responses_body(**call: Any) -> dict[str, Any]:
    settings = {
        "revised_prompt": "A bright studio photo of a ceramic mug, soft shadows",
        "size": "1024x1536",
        "quality": "medium",
        "background": "opaque",
        "output_format": "png",
    }
    return responses_body(
        base64.b64encode(png()).decode(),
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


RESPONSES = (
    '[routes.a]\nkind = "openai-responses"\napi_key = "${KEY}"\n'
    'base_url = "URL"\nmodel = "gpt-5.4"\nimage_model = "gpt-image-2"\n'
)


async def test_responses_route_uses_the_image_generation_tool(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    openai_fake.queue("responses", Reply(200, _responses_body(), headers={"x-request-id": "req_r"}))
    r = route(openai_fake, RESPONSES)
    request = ImageRequest(
        prompt="Plan a campaign for our mug, then draw the hero image",
        size="1024x1536",
        quality="medium",
        input_images=(InputImage(png("blue"), name="mug.png"),),
    )
    result = await executor(r).generate(request)
    assert not openai_fake.rejections
    [call] = openai_fake.calls("responses")
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
    assert content[1]["detail"] == "auto"
    assert result.response_id == "resp_123"
    assert result.model == "gpt-5-2025-08-07"
    assert result.revised_prompt is not None
    assert result.revised_prompt.startswith("A bright studio photo")
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


async def test_responses_route_sends_the_mask_as_input_image_mask(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    r = route(openai_fake, RESPONSES)
    assert r.capabilities().mask
    request = ImageRequest(
        prompt="replace the masked area with a window",
        input_images=(InputImage(png("blue")),),
        mask=InputImage(holed_mask()),
    )
    await executor(r).generate(request)
    assert not openai_fake.rejections
    [tool] = openai_fake.calls("responses")[0].json()["tools"]
    url = tool["input_image_mask"]["image_url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == holed_mask()


async def test_responses_route_without_an_image_is_an_error(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    body = _responses_body()
    body["output"] = body["output"][:1]
    openai_fake.queue("responses", Reply(200, body))
    r = route(openai_fake, RESPONSES)
    with pytest.raises(RouteError, match="no image"):
        await executor(r).generate(ImageRequest(prompt="draw"))


GATEWAY = """
[routes.gw]
kind = "gateway"
model = "openai/gpt-image-2"
api_key = "${KEY}"
base_url = "URL"
headers = { "X-Team" = "design", "X-Gateway-Secret" = "gw-secret-77" }
underlying_model = "gpt-image-2 (configured)"
"""


@pytest.fixture
def gateway() -> Any:
    fake = OpenAIFake(flavor="gateway", api_key="sk-wire-1").start()
    yield fake
    fake.stop()


async def test_gateway_sends_extra_headers_and_logs_the_underlying_model(
    gateway: OpenAIFake,
    executor: Executor,
) -> None:
    gateway.queue(
        "generations",
        Reply(
            200,
            {"created": 1, "data": [{"b64_json": base64.b64encode(png()).decode()}]},
            headers={"x-model": "gpt-image-2-2026-04-21", "x-request-id": "gw_1"},
        ),
    )
    r = route(gateway, GATEWAY)
    result = await executor(r).generate(ImageRequest(prompt="a lamp", size="1024x1024"))
    [call] = gateway.calls("generations")
    assert call.headers["x-team"] == "design" and call.headers["x-gateway-secret"] == "gw-secret-77"
    assert call.json()["model"] == "openai/gpt-image-2"
    assert result.underlying_model == "gpt-image-2-2026-04-21"
    assert result.cost.basis == "unknown"  # no gateway price configured
    assert "gw-secret-77" in r.config.secrets()  # redacted wherever text is shown


async def test_gateway_url_results_are_downloaded_without_the_key(executor: Executor) -> None:
    """A gateway answering `data[].url` on another host: the image is fetched with no key and
    no gateway header, checked to be an image, and kept like a base64 answer."""
    fake = OpenAIFake(flavor="gateway", api_key="sk-wire-1", url_results=True).start()
    try:
        r = route(fake, GATEWAY)
        result = await executor(r).generate(ImageRequest(prompt="a lamp", n=2))
        assert fake.delivery is not None
        downloads = fake.delivery.calls()
        assert len(downloads) == 2 and len(result.images) == 2
        for download in downloads:
            assert "authorization" not in download.headers
            assert "x-gateway-secret" not in download.headers
        assert result.images[0].data == fake.image and result.images[0].mime == "image/png"
    finally:
        fake.stop()


async def test_gateway_url_on_its_own_host_gets_the_key_and_odd_urls_are_refused(
    gateway: OpenAIFake,
    executor: Executor,
) -> None:
    gateway.server.on("GET", "/files/{name}", Reply(200, png("green"), content_type="image/png"))
    own = f"{gateway.server.url}/files/a.png"
    gateway.queue("generations", Reply(200, {"created": 1, "data": [{"url": own}]}))
    r = route(gateway, GATEWAY)
    routed = executor(r)
    result = await routed.generate(ImageRequest(prompt="a lamp"))
    [download] = gateway.server.calls("/files/a.png")
    assert download.headers["authorization"] == "Bearer sk-wire-1"
    assert download.headers["x-gateway-secret"] == "gw-secret-77"
    assert result.images[0].data == png("green")

    # Plain http to another host, and a "picture" that is not one: refused, never retried
    # (the generation that made the URL was already billed).
    for url, words in (
        ("http://images.example.invalid/a.png", "plain http"),
        (f"{gateway.server.url}/files/not-an-image.txt", "not a PNG"),
    ):
        gateway.server.on("GET", "/files/not-an-image.txt", Reply(200, "hello"))
        gateway.queue("generations", Reply(200, {"created": 1, "data": [{"url": url}]}))
        with pytest.raises(RouteError, match=words) as info:
            await routed.generate(ImageRequest(prompt="a lamp"))
        assert len(info.value.attempts) == 1


async def test_gateway_falls_back_to_configured_underlying_model_and_price(
    gateway: OpenAIFake,
    executor: Executor,
) -> None:
    r = route(gateway, GATEWAY + 'pricing = { basis = "per_image", usd_per_image = 0.05 }\n')
    result = await executor(r).generate(ImageRequest(prompt="a lamp", n=2))
    assert result.underlying_model == "gpt-image-2 (configured)"
    assert result.cost.usd == pytest.approx(0.10) and result.cost.basis == "list_price"


async def test_gateway_errors_are_mapped_and_retried(
    gateway: OpenAIFake, executor: Executor, backoff: Backoff
) -> None:
    gateway.queue(
        "generations",
        Reply(429, {"error": {"message": "slow down"}}, headers={"retry-after": "3"}),
    )
    routed = executor(route(gateway, GATEWAY))
    result = await routed.generate(ImageRequest(prompt="a lamp"))
    assert backoff.waits == [3.0]  # Retry-After honoured
    assert [a.ok for a in result.attempts] == [False, True]
    assert result.attempts[0].error_class == RateLimitError.error_class

    gateway.queue("generations", Reply(401, {"error": {"message": "bad key"}}))
    with pytest.raises(AuthError) as info:
        await routed.generate(ImageRequest(prompt="a lamp"))
    assert len(info.value.attempts) == 1  # never retried


async def test_500_twice_then_success_and_a_malformed_body(
    openai_fake: OpenAIFake, executor: Executor, backoff: Backoff
) -> None:
    openai_fake.queue(
        "generations",
        Reply(500, {"error": {"message": "boom"}}, headers={"x-request-id": "r500a"}),
        Reply(502, "<html>bad gateway</html>"),
        Reply(
            200,
            {"created": 1, "data": [{"b64_json": base64.b64encode(png()).decode()}]},
            headers={"x-request-id": "ok"},
        ),
    )
    routed = executor(route(openai_fake, OPENAI + "retries = 2\n"))
    result = await routed.generate(ImageRequest(prompt="a lamp"))
    assert [a.ok for a in result.attempts] == [False, False, True]
    assert result.attempts[0].request_id == "r500a" and result.response_id == "ok"
    waits = backoff.waits
    assert len(waits) == 2 and 0 < waits[0] <= waits[1] * 2  # exponential backoff with jitter

    openai_fake.queue(
        "generations", Reply(200, "this is not json", content_type="application/json")
    )
    with pytest.raises(RouteError) as info:
        await routed.generate(ImageRequest(prompt="a lamp"))
    assert info.value.error_class == "provider_down"
    assert len(info.value.attempts) == 1  # an unreadable answer is not retried blindly

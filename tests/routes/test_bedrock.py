"""Amazon Bedrock through boto3 against a loopback fake of bedrock-runtime's invoke endpoint."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from routes.config import ConfigError, parse_config
from routes.errors import AuthError, BadRequestError, ModerationError, RateLimitError
from routes.executor import RouteExecutor
from routes.model import ImageRequest, InputImage
from routes.registry import build_route
from tests.fakes.server import FakeServer, Reply


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(buf, format="PNG")
    return buf.getvalue()


B64 = base64.b64encode(png()).decode()


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "AKIAFAKE",
        "AWS_SECRET_ACCESS_KEY": "fake-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    server = FakeServer("bedrock").start()
    yield server
    server.stop()


def make(server: FakeServer, model: str, extra: str = "") -> Any:
    text = (
        f'[routes.b]\nkind = "bedrock"\nmodel = "{model}"\nregion = "us-east-1"\n'
        f'endpoint_url = "{server.url}"\nallow_retired_model = true\n{extra}'
    )
    return build_route(parse_config(text, "t.toml").routes["b"])


def ok(body: dict[str, Any]) -> Reply:
    return Reply(200, body, headers={"x-amzn-RequestId": "req-bedrock-1"})


def aws_error(status: int, code: str, message: str) -> Reply:
    return Reply(
        status,
        {"message": message},
        headers={"x-amzn-ErrorType": f"{code}:http://internal", "x-amzn-RequestId": "req-err"},
    )


async def test_nova_canvas_text_to_image(bedrock: FakeServer) -> None:
    bedrock.on("POST", "/model/{model}/invoke", ok({"images": [B64, B64]}))
    route = make(bedrock, "amazon.nova-canvas-v1:0")
    result = await RouteExecutor(route).generate(
        ImageRequest(
            prompt="a desk lamp",
            size="1280x720",
            n=2,
            seed=11,
            quality="premium",
            negative_prompt="blur",
        )
    )
    [call] = bedrock.calls()
    assert call.path == "/model/amazon.nova-canvas-v1:0/invoke"
    assert call.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKE/")
    assert call.json() == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a desk lamp", "negativeText": "blur"},
        "imageGenerationConfig": {
            "numberOfImages": 2,
            "width": 1280,
            "height": 720,
            "seed": 11,
            "quality": "premium",
        },
    }
    assert len(result.images) == 2 and result.response_id == "req-bedrock-1"
    # Premium up to 1024x1024 pixels (1280x720 is 921,600): 2 x $0.06 list price.
    assert result.cost.usd == pytest.approx(0.12) and result.cost.basis == "list_price"
    assert "premium up to 1024x1024" in result.cost.detail
    await route.aclose()


async def test_stability_body_and_filtered_output(bedrock: FakeServer) -> None:
    bedrock.on(
        "POST",
        "/model/{model}/invoke",
        ok({"images": [B64], "seeds": [5], "finish_reasons": [None]}),
    )
    route = make(bedrock, "stability.sd3-5-large-v1:0")
    result = await route.generate(
        ImageRequest(
            prompt="poster",
            size="16:9",
            output_format="jpeg",
            seed=5,
            input_images=(InputImage(png()),),
        )
    )
    body = bedrock.calls()[0].json()
    assert (
        body["prompt"] == "poster"
        and body["aspect_ratio"] == "16:9"
        and body["output_format"] == "jpeg"
    )
    assert body["mode"] == "image-to-image" and base64.b64decode(body["image"]) == png()
    assert result.metadata["seeds"] == [5]

    bedrock.on(
        "POST",
        "/model/{model}/invoke",
        ok({"images": [], "finish_reasons": ["Filter reason: output image"]}),
    )
    with pytest.raises(ModerationError, match="output image"):
        await route.generate(ImageRequest(prompt="poster"))
    await route.aclose()


@pytest.mark.parametrize(
    ("reply", "error", "calls"),
    [
        (aws_error(429, "ThrottlingException", "Too many requests"), RateLimitError, 2),
        (
            aws_error(
                403,
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            ),
            AuthError,
            1,
        ),
        (
            aws_error(400, "ValidationException", "The prompt was blocked by our content filters."),
            ModerationError,
            1,
        ),
        (
            aws_error(400, "ValidationException", "width must be a multiple of 16"),
            BadRequestError,
            1,
        ),
    ],
)
async def test_errors_are_mapped(
    bedrock: FakeServer, reply: Reply, error: type, calls: int
) -> None:
    bedrock.on("POST", "/model/{model}/invoke", reply)

    async def no_sleep(_s: float) -> None:
        return None

    executor = RouteExecutor(
        make(bedrock, "amazon.nova-canvas-v1:0", "retries = 1\n"), sleep=no_sleep
    )
    with pytest.raises(error) as info:
        await executor.generate(ImageRequest(prompt="x"))
    assert len(bedrock.calls()) == calls  # boto3's own retries are off: one call per attempt
    assert info.value.request_id == "req-err"
    if error is AuthError:
        assert "Bedrock console" in info.value.sentence()
    await executor.route.aclose()


def test_unknown_model_family_is_refused_at_start(bedrock: FakeServer) -> None:
    with pytest.raises(ConfigError, match=r"route 'b': .*request format"):
        make(bedrock, "meta.some-image-model")

"""Amazon Bedrock through boto3 against a loopback fake of bedrock-runtime's invoke endpoint."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from routes.capabilities import find_unsupported
from routes.config import ConfigError, parse_config
from routes.errors import (
    AuthError,
    BadRequestError,
    ModelRetiredError,
    ModerationError,
    ProviderDownError,
    QuotaError,
    RateLimitError,
    RouteError,
)
from routes.model import ImageRequest, InputImage
from routes.registry import build_route
from tests.fakes.bedrock import BedrockFake, aws_error
from tests.fakes.server import Reply
from tests.routes.conftest import Executor


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(buf, format="PNG")
    return buf.getvalue()


def make(fake: BedrockFake, model: str, extra: str = "") -> Any:
    text = (
        f'[routes.b]\nkind = "bedrock"\nmodel = "{model}"\nregion = "us-east-1"\n'
        f'endpoint_url = "{fake.url}"\nallow_retired_model = true\n{extra}'
    )
    return build_route(parse_config(text, "t.toml").routes["b"])


async def test_nova_canvas_text_to_image(bedrock: BedrockFake, executor: Executor) -> None:
    route = make(bedrock, "amazon.nova-canvas-v1:0")
    result = await executor(route).generate(
        ImageRequest(
            prompt="a desk lamp",
            size="1280x720",
            n=2,
            seed=11,
            quality="premium",
            negative_prompt="blur",
        )
    )
    assert not bedrock.rejections
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


async def test_nova_filter_on_200_keeps_what_survived(
    bedrock: BedrockFake, executor: Executor
) -> None:
    route = make(bedrock, "amazon.nova-canvas-v1:0")
    bedrock.filter = "some"
    result = await executor(route).generate(ImageRequest(prompt="a lamp", n=3))
    assert len(result.images) == 2 and "Some of the generated" in result.metadata["filtered"]
    bedrock.filter = "all"
    with pytest.raises(ModerationError, match="All of the generated images"):
        await executor(route).generate(ImageRequest(prompt="a lamp"))


async def test_stability_image_to_image_sends_no_aspect_ratio(
    bedrock: BedrockFake, executor: Executor
) -> None:
    """AWS documents aspect_ratio for text-to-image only; image-to-image keeps the input's."""
    route = make(bedrock, "stability.sd3-5-large-v1:0")
    routed = executor(route)
    result = await routed.generate(
        ImageRequest(
            prompt="poster", output_format="jpeg", seed=5, input_images=(InputImage(png()),)
        )
    )
    assert not bedrock.rejections
    body = bedrock.calls()[0].json()
    assert "aspect_ratio" not in body
    assert body["mode"] == "image-to-image" and base64.b64decode(body["image"]) == png()
    assert (
        body["prompt"] == "poster" and body["output_format"] == "jpeg" and body["strength"] == 0.7
    )
    assert result.metadata["seeds"] == [5] and result.metadata["task"] == "image-to-image"

    await routed.generate(ImageRequest(prompt="poster", size="16:9"))
    assert bedrock.calls()[-1].json()["aspect_ratio"] == "16:9"
    # A size on an edit cannot be honoured: refused before any call.
    edit = ImageRequest(prompt="poster", size="16:9", input_images=(InputImage(png()),))
    assert [p.feature for p in find_unsupported(edit, route.capabilities())] == ["edit_size"]


async def test_stability_finish_reasons(bedrock: BedrockFake, executor: Executor) -> None:
    route = make(bedrock, "stability.sd3-5-large-v1:0", "retries = 1\n")
    routed = executor(route)
    bedrock.filter = "all"
    with pytest.raises(ModerationError, match="output image") as blocked:
        await routed.generate(ImageRequest(prompt="poster"))
    assert len(blocked.value.attempts) == 1
    # "Inference error" is the model failing, not the safety filter.
    bedrock.filter = "inference_error"
    with pytest.raises(ProviderDownError, match="Inference error") as failed:
        await routed.generate(ImageRequest(prompt="poster"))
    assert failed.value.error_class == "provider_down"


@pytest.mark.parametrize(
    ("reply", "error", "calls"),
    [
        (aws_error("ThrottlingException", "Too many requests"), RateLimitError, 2),
        (
            aws_error(
                "ServiceQuotaExceededException",
                "Your request exceeds the service quota for your account.",
            ),
            QuotaError,
            1,
        ),
        (
            aws_error(
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            ),
            AuthError,
            1,
        ),
        (
            aws_error(
                "ValidationException", "This request has been blocked by our content filters."
            ),
            ModerationError,
            1,
        ),
        (
            aws_error("ValidationException", "width must be a multiple of 16"),
            BadRequestError,
            1,
        ),
    ],
)
async def test_errors_are_mapped(
    bedrock: BedrockFake, reply: Reply, error: type[RouteError], calls: int, executor: Executor
) -> None:
    bedrock.queue(reply, reply)
    routed = executor(make(bedrock, "amazon.nova-canvas-v1:0", "retries = 1\n"))
    with pytest.raises(error) as info:
        await routed.generate(ImageRequest(prompt="x"))
    assert len(bedrock.calls()) == calls  # boto3's own retries are off: one call per attempt
    assert info.value.request_id == "req-err"
    if error is AuthError:
        assert "Bedrock console" in info.value.sentence()
    if error is QuotaError:
        assert "quota" in info.value.sentence().lower()


async def test_a_model_past_its_end_of_life(bedrock: BedrockFake, executor: Executor) -> None:
    """Bedrock's end-of-life answer, read with the lifecycle data: the model is shut down."""
    bedrock.retired.add("amazon.nova-canvas-v1:0")
    route = make(bedrock, "amazon.nova-canvas-v1:0")
    with pytest.raises(ModelRetiredError, match="shut down") as info:
        await executor(route).generate(ImageRequest(prompt="x"))
    assert len(info.value.attempts) == 1


def test_unknown_model_family_is_refused_at_start(bedrock: BedrockFake) -> None:
    with pytest.raises(ConfigError, match=r"route 'b': .*request format"):
        make(bedrock, "meta.some-image-model")

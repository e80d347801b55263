"""Real costs through the executor the product uses: every token class at its own rate, the
Responses route's text model and image tool, FLUX.2 per megapixel, Nova Canvas and Titan tiers,
estimates before a call, and unknown never priced as $0. Every provider is its strict fake."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from routes.base import Route
from routes.config import ConfigError, parse_config
from routes.model import ImageRequest, InputImage
from routes.registry import build_route
from tests.fakes.bedrock import BedrockFake
from tests.fakes.bfl import BflFake
from tests.fakes.openai import OpenAIFake, b64png, responses_body
from tests.fakes.server import Reply
from tests.routes.conftest import Executor


def build(text: str) -> Route:
    config = parse_config(text, "r.toml", env={})
    return build_route(next(iter(config.routes.values())))


@pytest.fixture
def bfl() -> Iterator[BflFake]:
    fake = BflFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def gateway() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(flavor="gateway").start()
    yield fake
    fake.stop()


# -- OpenAI: tokens by class --------------------------------------------------------------------

GPT_IMAGE_2_USAGE: dict[str, Any] = {
    "input_tokens": 1050,
    "input_tokens_details": {"text_tokens": 50, "image_tokens": 1000},
    "output_tokens": 4200,
    "output_tokens_details": {"text_tokens": 40, "image_tokens": 4160},
    "total_tokens": 5250,
}


def openai_route(fake: OpenAIFake, extra: str = "") -> Route:
    return build(
        f'[routes.o]\nkind = "openai"\napi_key = "sk-wire-1"\nbase_url = "{fake.url}"\n{extra}'
    )


async def test_gpt_image_2_prices_each_token_class_at_its_own_rate(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    openai_fake.usage = GPT_IMAGE_2_USAGE
    result = await executor(openai_route(openai_fake)).generate(
        ImageRequest(prompt="a mug", quality="high")
    )
    assert not openai_fake.rejections
    # text in $5/M, image in $8/M, text out $10/M (not the image-output rate), image out $30/M
    expected = (50 * 5 + 1000 * 8 + 40 * 10 + 4160 * 30) / 1e6
    assert result.cost.usd == pytest.approx(expected)
    assert result.cost.basis == "tokens" and not result.cost.estimated
    assert "40 text output" in result.cost.detail and "4160 image output" in result.cost.detail
    assert "developers.openai.com/api/docs/pricing" in result.cost.detail


async def test_an_answer_without_usage_has_an_unknown_cost_not_zero(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    openai_fake.queue("generations", Reply(200, {"created": 1, "data": [{"b64_json": b64png()}]}))
    result = await executor(openai_route(openai_fake)).generate(ImageRequest(prompt="a mug"))
    assert result.cost.usd is None and result.cost.basis == "unknown"
    assert "no token usage" in result.cost.detail


RESPONSES = (
    '[routes.a]\nkind = "openai-responses"\napi_key = "sk-wire-1"\nbase_url = "{url}"\n'
    'model = "gpt-5.4"\nimage_model = "gpt-image-2"\n'
)
TEXT_USAGE: dict[str, Any] = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 1000},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 200},
    "total_tokens": 1500,
}
TOOL_USAGE: dict[str, Any] = {
    "input_tokens": 80,
    "input_tokens_details": {"text_tokens": 80, "image_tokens": 0},
    "output_tokens": 1056,
    "output_tokens_details": {"text_tokens": 0, "image_tokens": 1056},
}


def responses_answer(*, tool_usage: bool = True) -> Reply:
    body = responses_body(b64png(), model="gpt-5.4", usage=TEXT_USAGE)
    if tool_usage:
        body["tool_usage"] = {"image_gen": TOOL_USAGE}
    return Reply(200, body)


async def test_responses_route_prices_the_text_model_and_the_image_tool(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    openai_fake.queue("responses", responses_answer())
    route = build(RESPONSES.format(url=openai_fake.url))
    result = await executor(route).generate(ImageRequest(prompt="plan, then draw"))
    assert not openai_fake.rejections
    text = (200 * 2.50 + 1000 * 0.25 + 300 * 15.0) / 1e6  # gpt-5.4, cached input apart
    image = (80 * 5.0 + 1056 * 30.0) / 1e6  # gpt-image-2's tool tokens
    assert result.cost.usd == pytest.approx(text + image)
    assert result.cost.basis == "tokens"
    assert "gpt-5.4: 200 text input, 1000 cached text input, 300 text output" in result.cost.detail
    assert "gpt-image-2: 80 text input, 1056 image output" in result.cost.detail


async def test_the_routes_own_pricing_applies_to_the_image_tool_too(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    openai_fake.queue("responses", responses_answer())
    negotiated = (
        "pricing = { basis = 'tokens', text_input_per_mtok = 1.0, cached_text_input_per_mtok = "
        "0.1, text_output_per_mtok = 2.0, image_output_per_mtok = 20.0 }\n"
    )
    route = build(RESPONSES.format(url=openai_fake.url) + negotiated)
    result = await executor(route).generate(ImageRequest(prompt="plan, then draw"))
    text = (200 * 1.0 + 1000 * 0.1 + 300 * 2.0) / 1e6
    image = (80 * 1.0 + 1056 * 20.0) / 1e6
    assert result.cost.usd == pytest.approx(text + image)
    assert "route config" in result.cost.detail


async def test_responses_without_the_tool_usage_is_unknown(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    openai_fake.queue("responses", responses_answer(tool_usage=False))
    route = build(RESPONSES.format(url=openai_fake.url))
    result = await executor(route).generate(ImageRequest(prompt="draw"))
    assert result.cost.usd is None
    assert "tool_usage.image_gen" in result.cost.detail


# -- FLUX.2 per megapixel -----------------------------------------------------------------------


def _flux(bfl: BflFake, model: str) -> Route:
    return build(
        f'[routes.f]\nkind = "bfl"\nmodel = "{model}"\napi_key = "k"\nbase_url = "{bfl.server.url}"\n'
        "poll_interval_seconds = 0.01\n"
    )


async def test_flux_2_bills_the_first_megapixel_then_each_extra(
    bfl: BflFake, executor: Executor
) -> None:
    bfl.statuses = ["Ready"]
    bfl.image_size = (2048, 1024)  # 2 MP
    result = await executor(_flux(bfl, "flux-2-pro")).generate(
        ImageRequest(prompt="a fox", size="2048x1024")
    )
    assert bfl.server.calls("/v1/flux-2-pro")[0].json()["width"] == 2048
    assert result.cost.usd == pytest.approx(0.03 + 0.015)
    assert result.cost.basis == "list_price" and "2.00 MP" in result.cost.detail


async def test_flux_2_edit_adds_the_input_megapixels(bfl: BflFake, executor: Executor) -> None:
    bfl.statuses = ["Ready"]
    bfl.image_size = (1024, 1024)
    buf = io.BytesIO()
    Image.new("RGB", (1024, 1024), "red").save(buf, format="PNG")
    request = ImageRequest(prompt="make it night", input_images=(InputImage(buf.getvalue()),))
    result = await executor(_flux(bfl, "flux-2-pro")).generate(request)
    assert not bfl.rejections
    assert result.cost.usd == pytest.approx(0.03 + 0.015)  # BFL: editing from $0.045


async def test_a_megapixel_rate_not_on_file_leaves_the_cost_unknown(
    bfl: BflFake, executor: Executor
) -> None:
    bfl.statuses = ["Ready"]
    bfl.image_size = (2048, 1024)
    result = await executor(_flux(bfl, "flux-2-flex")).generate(
        ImageRequest(prompt="a fox", size="2048x1024")
    )
    assert result.cost.usd is None and "extra-megapixel rate" in result.cost.detail


# -- Bedrock tiers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "quality", "size", "usd"),
    [
        ("amazon.nova-canvas-v1:0", "standard", "1024x1024", 0.04),
        ("amazon.nova-canvas-v1:0", "premium", "1024x1024", 0.06),
        ("amazon.nova-canvas-v1:0", "standard", "2048x2048", 0.06),
        ("amazon.nova-canvas-v1:0", "premium", "2048x1024", 0.08),
        ("amazon.nova-canvas-v1:0", None, "1024x1024", 0.04),
        ("amazon.titan-image-generator-v2:0", "standard", "512x512", 0.008),
        ("amazon.titan-image-generator-v2:0", "premium", "1024x1024", 0.012),
    ],
)
async def test_nova_canvas_and_titan_bill_by_quality_and_size(
    bedrock: BedrockFake,
    executor: Executor,
    model: str,
    quality: str | None,
    size: str,
    usd: float,
) -> None:
    route = build(
        f'[routes.b]\nkind = "bedrock"\nmodel = "{model}"\nregion = "us-east-1"\n'
        f'endpoint_url = "{bedrock.url}"\nallow_retired_model = true\n'
    )
    result = await executor(route).generate(
        ImageRequest(prompt="a lamp", quality=quality, size=size)
    )
    assert not bedrock.rejections
    assert result.cost.usd == pytest.approx(usd) and result.cost.basis == "list_price"


# -- before the call -----------------------------------------------------------------------------


def _estimate(text: str, request: ImageRequest) -> tuple[float, str] | None:
    estimate = build(text).estimate(request)
    return None if estimate is None else (round(estimate.usd, 6), estimate.basis)


def test_estimates_come_from_the_same_price_rows() -> None:
    openai = '[routes.o]\nkind = "openai"\napi_key = "k"\n'
    assert _estimate(openai, ImageRequest(prompt="p", quality="low")) == (0.006, "token_estimate")
    assert _estimate(openai, ImageRequest(prompt="p", quality="medium", n=2)) == (
        0.106,
        "token_estimate",
    )
    # No quality asked: the highest published figure, scaled by the pixel count.
    assert _estimate(openai, ImageRequest(prompt="p", size="2048x1024")) == (
        0.422,
        "token_estimate",
    )
    flux = '[routes.f]\nkind = "bfl"\nmodel = "flux-2-pro"\napi_key = "k"\n'
    assert _estimate(flux, ImageRequest(prompt="p", size="2048x2048")) == (
        0.075,
        "list_price",
    )
    nova = (
        '[routes.n]\nkind = "bedrock"\nmodel = "amazon.nova-canvas-v1:0"\n'
        "allow_retired_model = true\n"
    )
    assert _estimate(nova, ImageRequest(prompt="p", quality="premium", size="2048x2048")) == (
        0.08,
        "list_price",
    )
    gemini = (
        '[routes.g]\nkind = "gemini-image"\nmodel = "gemini-3-pro-image"\napi_key = "k"\n'
        'image_size = "4K"\n'
    )
    assert _estimate(gemini, ImageRequest(prompt="p")) == (0.24, "token_estimate")
    gpu = (
        '[routes.s]\nkind = "self-hosted"\nflavor = "automatic1111"\nbase_url = "http://x"\n'
        "hourly_usd = 3.6\ntimeout_seconds = 60\n"
    )
    assert _estimate(gpu, ImageRequest(prompt="p")) == (0.06, "hardware_time")
    assert _estimate('[routes.d]\nkind = "demo"\n', ImageRequest(prompt="p")) == (0.0, "free")
    unpriced = '[routes.g]\nkind = "gateway"\nmodel = "x/y"\nbase_url = "http://x"\n'
    assert _estimate(unpriced, ImageRequest(prompt="p")) is None
    assert _estimate(
        unpriced + "estimated_usd_per_image = 0.05\n", ImageRequest(prompt="p", n=2)
    ) == (
        0.10,
        "route_override",
    )


def test_a_capped_route_without_a_price_is_refused_at_load() -> None:
    text = (
        '[routes.g]\nkind = "gateway"\nmodel = "x/y"\nbase_url = "http://x"\ndaily_spend_usd = 5\n'
    )
    with pytest.raises(ConfigError, match="daily_spend_usd but no price on file") as info:
        parse_config(text, "r.toml")
    assert "estimated_usd_per_image" in str(info.value)
    parse_config(text + "estimated_usd_per_image = 0.05\n", "r.toml")  # loads


def test_a_user_cap_needs_every_route_priced() -> None:
    text = (
        '[limits]\nuser_daily_spend_usd = 5\n[routes.d]\nkind = "demo"\n'
        '[routes.s]\nkind = "self-hosted"\nflavor = "automatic1111"\nbase_url = "http://x"\n'
    )
    with pytest.raises(ConfigError, match=r"route 's' has \[limits\] user caps"):
        parse_config(text, "r.toml")


def test_a_typo_in_a_routes_pricing_is_a_config_error() -> None:
    text = '[routes.o]\nkind = "openai"\npricing = { image_output_per_mktok = 30 }\n'
    with pytest.raises(
        ConfigError, match="route 'o': pricing: unknown key 'image_output_per_mktok'"
    ):
        parse_config(text, "r.toml")


async def test_the_estimate_is_the_cost_of_a_run_with_no_price_and_it_says_so(
    gateway: OpenAIFake, executor: Executor
) -> None:
    route = build(
        f'[routes.g]\nkind = "gateway"\nmodel = "x/y"\napi_key = "k"\nbase_url = "{gateway.url}"\n'
        "daily_spend_usd = 5\nestimated_usd_per_image = 0.05\n"
    )
    result = await executor(route).generate(ImageRequest(prompt="p", n=2))
    assert not gateway.rejections and len(result.images) == 2
    assert result.cost.usd == 0.10
    assert result.cost.basis == "estimate" and result.cost.estimated
    assert "estimated_usd_per_image" in result.cost.detail

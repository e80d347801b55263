"""kind = "gemini-image" through the real google-genai SDK against a fake Gemini API and Vertex AI.

Checks the :generateContent body (parts, responseModalities, imageConfig), the three ways to
authenticate, and what the route records: images, text, finish reason, safety blocks, token
usage and the cost worked out from it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from routes.capabilities import find_unsupported
from routes.config import ConfigError
from routes.errors import AuthError, EmptyResultError, ModerationError, RateLimitError
from routes.gemini_image import GeminiImageRoute as GeminiAdapter
from routes.model import ImageRequest, InputImage
from tests.fakes.google import (
    ACCESS_TOKEN,
    API_KEY,
    IMAGE_INPUT_TOKENS,
    IMAGE_OUTPUT_TOKENS,
    GoogleFake,
    b64,
    gemini_body,
    google_error,
    image_bytes,
)
from tests.fakes.server import Reply
from tests.routes.conftest import Backoff, Executor, GoogleRoutes

FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"
GEMINI_API_PATH = f"/v1beta/models/{FLASH}:generateContent"


Make = Callable[..., GeminiAdapter]


@pytest.fixture
def make(google_routes: GoogleRoutes) -> Make:
    """Builds gemini-image routes on the fake (Gemini API with a key unless told otherwise)."""

    def _make(**keys: Any) -> GeminiAdapter:
        route = google_routes("gemini-image", **keys)
        assert isinstance(route, GeminiAdapter)
        return route

    return _make


def sent(google: GoogleFake, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = google.calls("generate")[index].json()
    return body


# -- the request on the wire ------------------------------------------------------------------


async def test_gemini_api_generation(google: GoogleFake, make: Make, executor: Executor) -> None:
    route = make()
    result = await executor(route).generate(
        ImageRequest(prompt="a red kite over dunes", size="16:9")
    )

    (call,) = google.calls("generate")
    assert call.path == GEMINI_API_PATH
    assert call.headers["x-goog-api-key"] == API_KEY
    assert "authorization" not in call.headers
    assert call.json() == {
        "contents": [{"role": "user", "parts": [{"text": "a red kite over dunes"}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9"},
        },
    }

    (image,) = result.images
    assert image.mime == "image/png"
    assert Image.open(io.BytesIO(image.data)).size == (64, 36)
    assert result.requested_model == FLASH
    assert result.model == FLASH  # modelVersion from the answer
    assert result.response_id == "resp-gemini-0001"
    assert result.metadata == {
        "api": "gemini-api",
        "finish_reason": "STOP",
        "aspect_ratio": "16:9",
        "text": "Here is your image.",
    }
    # Each token class at its own rate: 12 text tokens in at $0.30/M, 1290 image tokens out
    # at $30/M, 8 text/thinking tokens out at $2.50/M.
    assert result.cost.basis == "tokens"
    assert result.cost.usd == pytest.approx(
        (12 * 0.30 + IMAGE_OUTPUT_TOKENS * 30.0 + 8 * 2.50) / 1e6, abs=1e-6
    )
    assert "1290 image output" in result.cost.detail
    assert "8 text output" in result.cost.detail
    assert result.usage is not None
    assert result.usage["candidates_token_count"] == IMAGE_OUTPUT_TOKENS + 8


async def test_no_size_sends_no_image_config(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    await executor(make()).generate(ImageRequest(prompt="p"))
    assert "imageConfig" not in sent(google)["generationConfig"]


@pytest.mark.parametrize(
    ("size", "ratio"), [("1024x1024", "1:1"), ("832x1248", "2:3"), ("21:9", "21:9"), ("4:5", "4:5")]
)
async def test_size_is_sent_as_an_aspect_ratio(
    google: GoogleFake, make: Make, size: str, ratio: str, executor: Executor
) -> None:
    await executor(make()).generate(ImageRequest(prompt="p", size=size))
    assert sent(google)["generationConfig"]["imageConfig"] == {"aspectRatio": ratio}


async def test_edit_sends_input_images_as_inline_parts(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    first = image_bytes("1:1")
    second = image_bytes("3:4", "image/jpeg")
    request = ImageRequest(
        prompt="put the cat in the hat",
        input_images=(InputImage(first), InputImage(second, mime="image/jpeg", name="hat.jpg")),
    )
    result = await executor(make()).generate(request)
    parts = sent(google)["contents"][0]["parts"]
    assert parts[0] == {"text": "put the cat in the hat"}
    # The SDK sends the bytes url-safe base64 encoded, which Google accepts.
    inline = [(p["inlineData"]["mimeType"], p["inlineData"]["data"]) for p in parts[1:]]
    assert [(mime, base64.urlsafe_b64decode(data)) for mime, data in inline] == [
        ("image/png", first),
        ("image/jpeg", second),
    ]
    assert result.metadata["input_images"] == 2
    image_in = 2 * IMAGE_INPUT_TOKENS
    assert f"{image_in} image input" in result.cost.detail
    assert result.cost.usd == pytest.approx(
        (12 * 0.30 + image_in * 0.30 + IMAGE_OUTPUT_TOKENS * 30.0 + 8 * 2.50) / 1e6, abs=1e-6
    )


async def test_too_many_inputs_or_a_mask_are_refused_before_any_call(
    google: GoogleFake, make: Make
) -> None:
    inputs = tuple(InputImage(image_bytes()) for _ in range(4))
    request = ImageRequest(prompt="p", input_images=inputs, mask=InputImage(image_bytes()), n=2)
    problems = find_unsupported(request, make().capabilities())
    assert {p.feature for p in problems} == {"many_inputs", "mask", "n:2"}
    assert google.calls("generate") == []


async def test_image_size_goes_in_image_config(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    route = make(model=PRO, image_size="2K")
    result = await executor(route).generate(ImageRequest(prompt="p", size="3:2"))
    assert sent(google)["generationConfig"]["imageConfig"] == {
        "aspectRatio": "3:2",
        "imageSize": "2K",
    }
    assert google.calls("generate")[0].path == f"/v1beta/models/{PRO}:generateContent"
    assert result.metadata["image_size"] == "2K"
    # Gemini 3 Pro Image: $120/M image output tokens, $12/M text and thinking output.
    assert result.cost.usd == pytest.approx(
        (12 * 2.0 + IMAGE_OUTPUT_TOKENS * 120.0 + 8 * 12.0) / 1e6, abs=1e-6
    )


@pytest.mark.parametrize(
    ("keys", "wording"),
    [
        ({"image_size": "2K"}, "image_size=2K is not offered by gemini-2.5-flash-image"),
        ({"project": "p", "api_key": "k"}, "not both"),
        ({"api_key": None}, "missing api_key"),
        ({"vertexai": True, "api_key": None}, "missing credentials"),
    ],
)
async def test_unusable_configs_are_refused_at_start(
    make: Make, keys: dict[str, Any], wording: str
) -> None:
    with pytest.raises(ConfigError, match=wording):
        make(**keys)


async def test_image_size_1k_on_a_one_size_model_is_accepted_and_not_sent(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    await executor(make(image_size="1K")).generate(ImageRequest(prompt="p", size="1:1"))
    assert sent(google)["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1"}


# -- Vertex AI: express mode and project + location ---------------------------------------------


async def test_vertex_express_mode(google: GoogleFake, make: Make, executor: Executor) -> None:
    result = await executor(make(vertexai=True)).generate(ImageRequest(prompt="p"))
    (call,) = google.calls("generate")
    assert call.path == f"/v1beta1/publishers/google/models/{FLASH}:generateContent"
    assert call.headers["x-goog-api-key"] == API_KEY
    assert result.metadata["api"] == "vertex-express"


async def test_vertex_project_mode_with_service_account_credentials(
    google: GoogleFake,
    make: Make,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    executor: Executor,
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(google.service_account_file(tmp_path)))
    result = await executor(make(project="fake-project")).generate(ImageRequest(prompt="p"))
    (call,) = google.calls("generate")
    assert call.path == (
        f"/v1beta1/projects/fake-project/locations/global/publishers/google/models/{FLASH}"
        ":generateContent"
    )
    assert call.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert "x-goog-api-key" not in call.headers
    assert len(google.calls("token")) == 1
    assert result.metadata["api"] == "vertex"
    assert result.metadata["location"] == "global"


async def test_vertexai_false_ignores_project_settings(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    # As in imageroute.example.toml: a project in the environment does not turn the Gemini API
    # route into a Vertex one.
    route = make(vertexai=False, api_key=API_KEY, project="example-project", location="global")
    await executor(route).generate(ImageRequest(prompt="p"))
    assert google.calls("generate")[0].path == GEMINI_API_PATH


# -- what the answer says ---------------------------------------------------------------------


async def test_blocked_prompt_is_a_moderation_error_never_retried(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.queue("generate", Reply(200, gemini_body(prompt_block="PROHIBITED_CONTENT")))
    with pytest.raises(ModerationError, match="PROHIBITED_CONTENT") as caught:
        await executor(make()).generate(ImageRequest(prompt="p"))
    assert caught.value.request_id == "resp-gemini-0001"
    assert len(caught.value.attempts) == 1


async def test_image_withheld_for_safety_records_the_models_words(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    body = gemini_body(images=0, text="I can't create that image.", finish_reason="IMAGE_SAFETY")
    body["candidates"][0]["safetyRatings"] = [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
    ]
    google.queue("generate", Reply(200, body))
    with pytest.raises(ModerationError) as caught:
        await executor(make()).generate(ImageRequest(prompt="p"))
    assert "IMAGE_SAFETY" in caught.value.message
    assert "I can't create that image." in caught.value.message


@pytest.mark.parametrize("finish", ["NO_IMAGE", "STOP"])
async def test_text_only_answer_is_an_empty_result(
    google: GoogleFake, make: Make, finish: str, executor: Executor
) -> None:
    body = gemini_body(images=0, text="Here is a description instead.", finish_reason=finish)
    google.queue("generate", Reply(200, body))
    with pytest.raises(EmptyResultError, match=finish) as caught:
        await executor(make()).generate(ImageRequest(prompt="p"))
    assert "description instead" in caught.value.message
    assert not caught.value.retryable


async def test_safety_ratings_above_negligible_are_recorded(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    body = gemini_body()
    body["candidates"][0]["safetyRatings"] = [
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
        {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "LOW"},
    ]
    google.queue("generate", Reply(200, body))
    result = await executor(make()).generate(ImageRequest(prompt="p"))
    assert result.metadata["safety_flags"] == ["HARM_CATEGORY_SEXUALLY_EXPLICIT: LOW"]


async def test_interim_thought_images_are_not_returned(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    body = gemini_body()
    thought = {"inlineData": {"mimeType": "image/png", "data": b64(image_bytes("9:16"))}}
    body["candidates"][0]["content"]["parts"].insert(0, {**thought, "thought": True})
    google.queue("generate", Reply(200, body))
    result = await executor(make()).generate(ImageRequest(prompt="p"))
    (image,) = result.images
    assert Image.open(io.BytesIO(image.data)).size == (64, 64)
    assert result.metadata["thought_images"] == 1


async def test_no_usage_falls_back_to_the_list_price(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.queue("generate", Reply(200, gemini_body(usage=False)))
    result = await executor(make()).generate(ImageRequest(prompt="p"))
    assert result.cost.basis == "list_price"
    assert result.cost.usd == pytest.approx(0.039)
    assert result.usage is None


async def test_a_model_with_no_price_has_an_unknown_cost(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.models.add("gemini-9-image")
    result = await executor(make(model="gemini-9-image")).generate(ImageRequest(prompt="p"))
    assert result.cost.basis == "unknown"
    assert result.cost.usd is None


async def test_request_id_header_is_kept_beside_the_response_id(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.headers = {"x-goog-request-id": "hdr-77"}
    result = await executor(make()).generate(ImageRequest(prompt="p"))
    assert result.response_id == "resp-gemini-0001"
    assert result.metadata["request_id"] == "hdr-77"


# -- errors and retries -----------------------------------------------------------------------


async def test_429_with_retry_info_then_success(
    google: GoogleFake, make: Make, executor: Executor, backoff: Backoff
) -> None:
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}
    google.queue(
        "generate",
        google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            [retry_info],
        ),
    )
    result = await executor(make()).generate(ImageRequest(prompt="p"))
    assert backoff.waits == [13.0]
    assert [a.error_class for a in result.attempts] == ["rate_limit", None]
    assert len(google.calls("generate")) == 2


async def test_503_twice_then_success(
    google: GoogleFake, make: Make, executor: Executor, backoff: Backoff
) -> None:
    overloaded = google_error(
        503, "UNAVAILABLE", "The model is overloaded. Please try again later."
    )
    google.queue("generate", overloaded, overloaded)
    result = await executor(make(retries=2)).generate(ImageRequest(prompt="p"))
    assert [a.status_code for a in result.attempts] == [503, 503, None]
    assert len(backoff.waits) == 2
    assert len(result.images) == 1


async def test_rate_limit_without_a_hint_uses_backoff(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.queue("generate", *[google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded")] * 3)
    with pytest.raises(RateLimitError) as caught:
        await executor(make(retries=2)).generate(ImageRequest(prompt="p"))
    assert caught.value.retry_after is None
    assert len(caught.value.attempts) == 3


async def test_wrong_api_key_is_an_auth_error(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    route = make(api_key="AIza-not-the-right-key")
    with pytest.raises(AuthError) as caught:
        await executor(route).generate(ImageRequest(prompt="p"))
    assert caught.value.status_code == 400
    assert caught.value.hint == "Check the route's api_key"
    assert "AIza-not-the-right-key" not in caught.value.sentence()
    assert len(google.calls("generate")) == 1


async def test_region_not_supported_is_an_account_readiness_error(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.queue(
        "generate",
        google_error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
    )
    with pytest.raises(AuthError, match="User location"):
        await executor(make()).generate(ImageRequest(prompt="p"))


# -- probes -----------------------------------------------------------------------------------


async def test_auth_probe_reads_the_model(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    probe = await executor(make()).probe("auth")
    assert probe.ok and probe.kind == "auth"
    (call,) = google.calls("get")
    assert call.path == f"/v1beta/models/{FLASH}"
    assert call.headers["x-goog-api-key"] == API_KEY
    assert google.calls("generate") == []


async def test_auth_probe_with_a_bad_key_fails(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    probe = await executor(make(api_key="AIza-bad")).probe("auth")
    assert not probe.ok
    assert probe.error_class == "auth"


async def test_generate_probe_costs_one_image(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    probe = await executor(make()).probe("generate")
    assert probe.ok and probe.kind == "generate"
    assert probe.request_id == "resp-gemini-0001"
    assert probe.cost is not None and probe.cost.basis == "tokens"
    assert len(google.calls("generate")) == 1

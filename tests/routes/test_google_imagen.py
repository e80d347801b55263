"""kind = "google-imagen" through the real google-genai SDK against a fake Vertex AI.

Every test checks what went over the wire (path, auth header, the :predict body) and what the
route made of Google's answer: images, cost and its basis, filtered images, request ids, errors.
"""

from __future__ import annotations

import base64
import io
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from routes.capabilities import find_unsupported
from routes.config import ConfigError
from routes.errors import (
    AuthError,
    BadRequestError,
    EmptyResultError,
    ModerationError,
    ProviderDownError,
    QuotaError,
    RateLimitError,
    RouteError,
    RouteTimeoutError,
)
from routes.google_imagen import GoogleImagenRoute as ImagenAdapter
from routes.model import ImageRequest
from tests.fakes.google import (
    ACCESS_TOKEN,
    API_KEY,
    RAI_REASON,
    GoogleFake,
    google_error,
    imagen_body,
)
from tests.fakes.server import Reply
from tests.routes.conftest import Backoff, Executor, GoogleRoutes

ULTRA = "imagen-4.0-ultra-generate-001"
EXPRESS_PREDICT = f"/v1beta1/publishers/google/models/{ULTRA}:predict"
PROMPT_BLOCKED = (
    "Image generation failed with the following error: The prompt could not be submitted. "
    "This prompt contains sensitive words that violate Google's Responsible AI practices. Try "
    "rephrasing the prompt. If you think this was an error, send feedback. Support codes: 42876398"
)


Make = Callable[..., ImagenAdapter]


@pytest.fixture
def make(google_routes: GoogleRoutes) -> Make:
    """Builds google-imagen routes on the fake (express mode unless told otherwise)."""

    def _make(**keys: Any) -> ImagenAdapter:
        route = google_routes("google-imagen", **keys)
        assert isinstance(route, ImagenAdapter)
        return route

    return _make


def predict_params(google: GoogleFake, index: int = -1) -> dict[str, Any]:
    body = google.calls("predict")[index].json()
    params: dict[str, Any] = body["parameters"]
    return params


def jwt_claims(assertion: str) -> dict[str, Any]:
    payload = assertion.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


# -- the request on the wire ------------------------------------------------------------------


async def test_express_mode_sends_every_imagen_setting(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    route = make(
        model=ULTRA,
        safety_filter_level="block_only_high",
        person_generation="allow_all",
        image_size="2K",
    )
    result = await executor(route).generate(
        ImageRequest(
            prompt="a lighthouse at dusk",
            size="1792x1024",
            n=2,
            seed=42,
            output_format="jpeg",
            output_compression=80,
        )
    )

    (call,) = google.calls("predict")
    assert call.path == EXPRESS_PREDICT
    assert call.headers["x-goog-api-key"] == API_KEY
    assert "authorization" not in call.headers
    assert call.json()["instances"] == [{"prompt": "a lighthouse at dusk"}]
    assert call.json()["parameters"] == {
        "sampleCount": 2,
        "aspectRatio": "16:9",
        "includeRaiReason": True,
        "safetySetting": "BLOCK_ONLY_HIGH",
        "personGeneration": "ALLOW_ALL",
        "sampleImageSize": "2K",
        # A seed only works with the watermark off, so the route turns it off.
        "addWatermark": False,
        "seed": 42,
        "outputOptions": {"mimeType": "image/jpeg", "compressionQuality": 80},
    }

    assert len(result.images) == 2
    for image in result.images:
        assert image.mime == "image/jpeg"
        assert Image.open(io.BytesIO(image.data)).size == (64, 36)
    assert result.requested_model == ULTRA
    assert result.model is None  # :predict does not name a model version
    assert result.cost.basis == "list_price"
    assert result.cost.usd == pytest.approx(0.12)
    assert "2 x $0.06" in result.cost.detail and "2026-11-25" in result.cost.detail
    assert result.metadata == {
        "api": "vertex-express",
        "aspect_ratio": "16:9",
        "requested_images": 2,
        "filtered_images": 0,
        "image_size": "2K",
        "safety_filter_level": "BLOCK_ONLY_HIGH",
        "person_generation": "ALLOW_ALL",
        "add_watermark": False,
        "seed": 42,
        "output_mime_type": "image/jpeg",
        "output_compression_quality": 80,
    }


async def test_defaults_leave_googles_own_settings_alone(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    route = make()
    result = await executor(route).generate(ImageRequest(prompt="a plain grey square"))
    assert route.model == ULTRA
    assert predict_params(google) == {
        "sampleCount": 1,
        "aspectRatio": "1:1",
        "includeRaiReason": True,
    }
    assert result.images[0].mime == "image/png"
    assert result.cost.usd == pytest.approx(0.06)


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        (None, "1:1"),
        ("9:16", "9:16"),
        ("1024x1792", "9:16"),
        ("1280x896", "4:3"),
        ("896x1280", "3:4"),
        ("1408x768", "16:9"),
    ],
)
async def test_size_is_sent_as_an_aspect_ratio(
    google: GoogleFake, make: Make, size: str | None, ratio: str, executor: Executor
) -> None:
    await executor(make()).generate(ImageRequest(prompt="p", size=size))
    assert predict_params(google)["aspectRatio"] == ratio


async def test_a_size_imagen_cannot_make_is_refused_before_any_call(
    google: GoogleFake, make: Make
) -> None:
    route = make()
    problems = find_unsupported(ImageRequest(prompt="p", size="21:9", n=5), route.capabilities())
    assert {p.feature for p in problems} == {"size:21:9", "n:5"}
    assert google.calls("predict") == []


async def test_watermark_configured_off_is_sent(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    await executor(make(add_watermark=False)).generate(ImageRequest(prompt="p"))
    assert predict_params(google)["addWatermark"] is False
    assert "seed" not in predict_params(google)


async def test_watermark_forced_on_refuses_seeds(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    route = make(add_watermark=True)
    assert not route.capabilities().seed
    problems = find_unsupported(ImageRequest(prompt="p", seed=7), route.capabilities())
    assert [p.feature for p in problems] == ["seed"]
    await executor(route).generate(ImageRequest(prompt="p"))
    assert predict_params(google)["addWatermark"] is True


async def test_fast_model_takes_no_image_size(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    route = make(model="imagen-4.0-fast-generate-001", image_size="1K")
    result = await executor(route).generate(ImageRequest(prompt="p"))
    assert "sampleImageSize" not in predict_params(google)
    assert google.calls("predict")[0].path.endswith("imagen-4.0-fast-generate-001:predict")
    assert result.cost.usd == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("keys", "wording"),
    [
        ({"model": "imagen-4.0-fast-generate-001", "image_size": "2K"}, "image_size=2K"),
        ({"project": "p", "api_key": "k"}, "not both"),
        ({"api_key": None}, "missing credentials"),
        ({"location": "us-east4"}, "location needs a project"),
    ],
)
async def test_unusable_configs_are_refused_at_start(
    make: Make, keys: dict[str, Any], wording: str
) -> None:
    with pytest.raises(ConfigError, match=wording):
        make(**keys)


# -- what the answer says ---------------------------------------------------------------------


async def test_partly_filtered_answer_keeps_the_images_and_records_the_reason(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.imagen_filtered = 1
    google.enhanced_prompt = "A photorealistic lighthouse at dusk, warm light"
    result = await executor(make()).generate(ImageRequest(prompt="lighthouse", n=3))
    assert len(result.images) == 2
    assert result.metadata["filtered_images"] == 1
    assert result.metadata["filtered_reasons"] == [RAI_REASON]
    assert result.revised_prompt == "A photorealistic lighthouse at dusk, warm light"
    # Filtered images are not billed.
    assert result.cost.usd == pytest.approx(0.12)


async def test_every_image_filtered_is_a_moderation_error_never_retried(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.imagen_filtered = 2
    google.headers = {"x-request-id": "req-imagen-42"}
    routed = executor(make())
    with pytest.raises(ModerationError) as caught:
        await routed.generate(ImageRequest(prompt="p", n=2))
    error = caught.value
    assert "Support codes: 58061214" in error.message
    assert error.request_id == "req-imagen-42"
    assert len(error.attempts) == 1
    assert len(google.calls("predict")) == 1
    assert "Request id req-imagen-42" in error.sentence()


async def test_an_answer_with_no_image_and_no_reason_is_an_empty_result(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.queue("predict", Reply(200, {}))
    with pytest.raises(EmptyResultError):
        await executor(make()).generate(ImageRequest(prompt="p"))
    assert len(google.calls("predict")) == 1


async def test_request_id_header_reaches_the_result(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.headers = {"x-request-id": "req-abc-123"}
    result = await executor(make()).generate(ImageRequest(prompt="p"))
    assert result.response_id == "req-abc-123"


# -- errors, retries, timeouts ----------------------------------------------------------------


async def test_429_with_retry_after_then_success(
    google: GoogleFake, make: Make, executor: Executor, backoff: Backoff
) -> None:
    google.queue(
        "predict",
        google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model",
            headers={"retry-after": "7"},
        ),
    )
    result = await executor(make(retries=2)).generate(ImageRequest(prompt="p"))
    assert backoff.waits == [7.0]
    assert [a.ok for a in result.attempts] == [False, True]
    assert result.attempts[0].error_class == "rate_limit"
    assert result.attempts[0].status_code == 429
    assert len(google.calls("predict")) == 2


async def test_429_retry_info_in_the_body_sets_the_wait(
    google: GoogleFake, make: Make, executor: Executor, backoff: Backoff
) -> None:
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}
    google.queue("predict", google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", [retry_info]))
    await executor(make()).generate(ImageRequest(prompt="p"))
    assert backoff.waits == [2.0]


async def test_500_twice_then_success(
    google: GoogleFake, make: Make, executor: Executor, backoff: Backoff
) -> None:
    google.queue(
        "predict",
        google_error(500, "INTERNAL", "Internal error encountered."),
        Reply(503, "<html><body>Service Unavailable</body></html>", content_type="text/html"),
    )
    result = await executor(make(retries=2)).generate(ImageRequest(prompt="p"))
    assert [a.error_class for a in result.attempts] == ["provider_down", "provider_down", None]
    assert [a.status_code for a in result.attempts[:2]] == [500, 503]
    assert result.attempts[1].message == "Service Unavailable"
    assert len(backoff.waits) == 2
    assert 0.25 <= backoff.waits[0] <= 0.5 and 0.5 <= backoff.waits[1] <= 1.0
    assert len(google.calls("predict")) == 3


async def test_server_errors_spend_the_retry_budget(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.queue("predict", *[google_error(503, "UNAVAILABLE", "The service is unavailable.")] * 3)
    with pytest.raises(ProviderDownError) as caught:
        await executor(make(retries=1)).generate(ImageRequest(prompt="p"))
    assert len(caught.value.attempts) == 2
    assert len(google.calls("predict")) == 2


async def test_slow_answer_is_a_timeout(google: GoogleFake, make: Make, executor: Executor) -> None:
    google.queue("predict", Reply(200, imagen_body(1), delay=1.0))
    with pytest.raises(RouteTimeoutError) as caught:
        await executor(make(timeout_seconds=0.3, retries=0)).generate(ImageRequest(prompt="p"))
    assert caught.value.retryable
    assert len(caught.value.attempts) == 1


async def test_malformed_body_is_retried_as_provider_down(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.queue("predict", Reply(200, "{not json", content_type="application/json"))
    result = await executor(make(retries=1)).generate(ImageRequest(prompt="p"))
    assert result.attempts[0].error_class == "provider_down"
    assert "could not be read" in (result.attempts[0].message or "")
    assert len(result.images) == 1


async def test_unreachable_host_is_a_retryable_connection_error(
    make: Make, executor: Executor
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    route = make(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(RouteTimeoutError, match="could not reach Vertex AI") as caught:
        await executor(route).generate(ImageRequest(prompt="p"))
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("reply", "error_type", "retryable", "words"),
    [
        (
            google_error(400, "INVALID_ARGUMENT", PROMPT_BLOCKED),
            ModerationError,
            False,
            "sensitive",
        ),
        (
            google_error(
                403,
                "PERMISSION_DENIED",
                "Permission 'aiplatform.endpoints.predict' denied on resource "
                "'//aiplatform.googleapis.com/projects/p/locations/us-central1/publishers/google/"
                "models/imagen-4.0-ultra-generate-001' (or it may not exist).",
            ),
            AuthError,
            False,
            "Permission",
        ),
        (
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for metric: generate_requests_per_model, limit: 0",
            ),
            QuotaError,
            False,
            "limit: 0",
        ),
        (
            google_error(400, "INVALID_ARGUMENT", "Image size 4K is not supported."),
            BadRequestError,
            False,
            "not supported",
        ),
        (google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), RateLimitError, True, "Quota"),
        (google_error(504, "DEADLINE_EXCEEDED", "Deadline expired"), ProviderDownError, True, ""),
    ],
)
async def test_google_errors_map_onto_the_taxonomy(
    google: GoogleFake,
    make: Make,
    reply: Reply,
    error_type: type[RouteError],
    retryable: bool,
    words: str,
    executor: Executor,
) -> None:
    google.queue("predict", reply)
    with pytest.raises(error_type) as caught:
        await executor(make(retries=0)).generate(ImageRequest(prompt="p"))
    assert type(caught.value) is error_type
    assert caught.value.retryable is retryable
    assert caught.value.status_code == reply.status
    assert words in caught.value.message


async def test_request_id_from_the_error_body(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    info = {"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": "rpc-req-9"}
    google.queue("predict", google_error(500, "INTERNAL", "Internal error", [info]))
    with pytest.raises(ProviderDownError) as caught:
        await executor(make(retries=0)).generate(ImageRequest(prompt="p"))
    assert caught.value.request_id == "rpc-req-9"


async def test_wrong_api_key_is_an_auth_error_that_never_shows_the_key(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    route = make(api_key="AIza-wrong-key-987654321")
    with pytest.raises(AuthError) as caught:
        await executor(route).generate(ImageRequest(prompt="p"))
    assert "API key not valid" in caught.value.message
    assert "AIza-wrong-key" not in caught.value.sentence()
    assert len(google.calls("predict")) == 1


# -- project + location with application default credentials ---------------------------------


async def test_project_mode_gets_a_token_from_the_service_account_key(
    google: GoogleFake,
    make: Make,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    executor: Executor,
) -> None:
    key_file = google.service_account_file(tmp_path, project="acme-images")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    route = make(project="acme-images")
    first = await executor(route).generate(ImageRequest(prompt="p"))
    await executor(route).generate(ImageRequest(prompt="q"))

    (token_call,) = google.calls("token")  # one token, reused for the second call
    form = token_call.form()
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt_claims(form["assertion"])
    assert claims["iss"] == "imageroute@acme-images.iam.gserviceaccount.com"
    # google-auth always signs for Google's token audience, whatever token_uri says.
    assert claims["aud"] == "https://oauth2.googleapis.com/token"
    assert "https://www.googleapis.com/auth/cloud-platform" in claims["scope"]

    calls = google.calls("predict")
    assert [c.path for c in calls] == [
        f"/v1beta1/projects/acme-images/locations/us-central1/publishers/google/models/{ULTRA}"
        ":predict"
    ] * 2
    assert all(c.headers["authorization"] == f"Bearer {ACCESS_TOKEN}" for c in calls)
    assert all("x-goog-api-key" not in c.headers for c in calls)
    assert first.metadata["api"] == "vertex"
    assert first.metadata["location"] == "us-central1"


async def test_project_mode_uses_the_configured_location(
    google: GoogleFake,
    make: Make,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    executor: Executor,
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(google.service_account_file(tmp_path)))
    await executor(make(project="fake-project", location="europe-west4")).generate(
        ImageRequest(prompt="p")
    )
    assert google.calls("predict")[0].path.startswith(
        "/v1beta1/projects/fake-project/locations/europe-west4/publishers/google/models/"
    )


async def test_project_mode_without_credentials_is_an_auth_error(
    google: GoogleFake,
    make: Make,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    executor: Executor,
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(AuthError, match="application default credentials") as caught:
        await executor(make(project="fake-project")).generate(ImageRequest(prompt="p"))
    assert "GOOGLE_APPLICATION_CREDENTIALS" in (caught.value.hint or "")
    assert google.calls("predict") == []


async def test_project_mode_token_refused_is_an_auth_error(
    google: GoogleFake,
    make: Make,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    executor: Executor,
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(google.service_account_file(tmp_path)))
    google.queue(
        "token",
        Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
    )
    with pytest.raises(AuthError, match="access token"):
        await executor(make(project="fake-project")).generate(ImageRequest(prompt="p"))
    assert google.calls("predict") == []


# -- probes -----------------------------------------------------------------------------------


async def test_auth_probe_reads_the_model_and_bills_nothing(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    google.headers = {"x-request-id": "req-probe-1"}
    probe = await executor(make()).probe("auth")
    assert probe.ok and probe.kind == "auth"
    assert probe.request_id == "req-probe-1"
    assert probe.cost is None
    (call,) = google.calls("get")
    assert call.path == f"/v1beta1/publishers/google/models/{ULTRA}"
    assert call.headers["x-goog-api-key"] == API_KEY
    assert google.calls("predict") == []


async def test_auth_probe_reports_an_unknown_model(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    probe = await executor(make(model="imagen-9.0-generate-001")).probe("auth")
    assert not probe.ok
    assert probe.error_class == "bad_request"
    assert "was not found" in (probe.message or "")


async def test_generate_probe_makes_one_image(
    google: GoogleFake, make: Make, executor: Executor
) -> None:
    probe = await executor(make(model="imagen-4.0-fast-generate-001")).probe("generate")
    assert probe.ok and probe.kind == "generate"
    assert predict_params(google)["sampleCount"] == 1
    assert probe.cost is not None and probe.cost.usd == pytest.approx(0.02)

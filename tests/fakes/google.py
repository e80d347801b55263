"""A fake Google on 127.0.0.1: Vertex AI, the Gemini API and an OAuth token endpoint.

It serves the REST paths google-genai 1.x really calls (read from google/genai/models.py and
_api_client.py), so the adapters run through the real SDK:

- Imagen `generate_images` (Vertex only): POST /v1beta1/[projects/{p}/locations/{l}/]
  publishers/google/models/{model}:predict
- Gemini `generate_content`: POST /v1beta/models/{model}:generateContent (Gemini API) and
  POST /v1beta1/[projects/{p}/locations/{l}/]publishers/google/models/{model}:generateContent
- `models.get`: GET /v1beta/models/{model} and GET /v1beta1/publishers/google/models/{model}
- the token endpoint a service-account key file names (`token_uri`): POST /token

Answers are shaped like Google's (camelCase JSON, google.rpc error bodies) and carry real PNG or
JPEG bytes, base64 encoded. Tests queue special answers (errors, filtered images, slow replies)
per endpoint; everything else gets the default healthy answer.

It is strict: a request Google would refuse gets Google's 400 INVALID_ARGUMENT, and the reason
is kept in `rejections`. Where the rules come from:
- Field names: the paths google-genai writes (read at import time from the SDK's own request
  converters, `_GenerateImagesConfig_to_vertex`, `_GenerateContentConfig_to_mldev/_to_vertex`
  and `_ImageConfig_to_vertex` in google/genai/models.py); an unknown field is refused.
- Imagen (Vertex model reference "imagen-api", model pages, read 2026-11-25): one instance with
  a prompt; sampleCount 1..4; aspectRatio 1:1, 3:4, 4:3, 9:16, 16:9; sampleImageSize 1K|2K and
  not on the fast model; a seed only with addWatermark false (the default is true); no
  negativePrompt on Imagen 4; personGeneration, safetySetting and outputOptions enums,
  compressionQuality 0..100 for JPEG only.
- Gemini image (ai.google.dev image-generation, Vertex AspectRatio enum): responseModalities
  from TEXT/IMAGE; imageConfig.aspectRatio from the model's list; imageSize 1K|2K|4K on the 3.x
  models only; inline images PNG, JPEG, WebP, HEIC or HEIF.
- Lifecycle: a shut-down model in `retired` answers 404 NOT_FOUND in Google's wording.
"""

from __future__ import annotations

import base64
import inspect
import io
import json
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from google.genai import models as genai_models
from PIL import Image

from tests.fakes.server import FakeServer, ProviderFake, RecordedRequest, Reply

Endpoint = Literal["predict", "generate", "get", "token"]

# What google-genai and google-auth read from the environment: tests clear these so a
# developer's own Google credentials never reach a test, nor a test reach Google.
SDK_ENV_VARS = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_GENAI_CLIENT_MODE",
    "GOOGLE_VERTEX_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_APPLICATION_CREDENTIALS",
)
API_KEY = "AIza-fake-google-key-0123456789"
ACCESS_TOKEN = "ya29.fake-access-token"
VERTEX = "/v1beta1"
GEMINI = "/v1beta"
PROJECT_PREFIX = "/projects/{project}/locations/{location}"
PUBLISHER = "/publishers/google/models/{model}"

KNOWN_MODELS = frozenset(
    {
        "imagen-4.0-ultra-generate-001",
        "imagen-4.0-generate-001",
        "imagen-4.0-fast-generate-001",
        "gemini-2.5-flash-image",
        "gemini-3-pro-image-preview",
        "gemini-3.1-flash-image-preview",
        "gemini-3-pro-image",
        "gemini-3.1-flash-image",
    }
)


def _sdk_paths(converter: Callable[..., object]) -> list[tuple[str, ...]]:
    """The JSON paths one of google-genai's request converters writes."""
    source = inspect.getsource(converter)
    return [
        tuple(part.strip().strip("'\"") for part in match.group(1).split(","))
        for match in re.finditer(r"setv\(\s*(?:to_object|parent_object),\s*\[([^\]]*)\]", source)
    ]


PREDICT_PARAMETERS = frozenset(
    path[1]
    for path in _sdk_paths(genai_models._GenerateImagesConfig_to_vertex)
    if path[0] == "parameters"
)
OUTPUT_OPTIONS = frozenset(
    path[2]
    for path in _sdk_paths(genai_models._GenerateImagesConfig_to_vertex)
    if path[:2] == ("parameters", "outputOptions")
)
GENERATION_CONFIG = frozenset(
    path[0]
    for converter in (
        genai_models._GenerateContentConfig_to_mldev,
        genai_models._GenerateContentConfig_to_vertex,
    )
    for path in _sdk_paths(converter)
)
IMAGE_CONFIG = frozenset(path[0] for path in _sdk_paths(genai_models._ImageConfig_to_vertex))
IMAGEN_RATIOS = frozenset({"1:1", "3:4", "4:3", "9:16", "16:9"})
GEMINI_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})
GEMINI_31_RATIOS = GEMINI_RATIOS | {"1:4", "4:1", "1:8", "8:1"}
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})


class Invalid(Exception):
    """A request Google answers with 400 INVALID_ARGUMENT."""


def check_predict(model: str, body: Any) -> None:
    """Imagen's :predict body, as Vertex AI validates it."""
    if not isinstance(body, dict) or set(body) - {"instances", "parameters", "labels"}:
        raise Invalid("Invalid JSON payload received. Unknown name in the request body.")
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1:
        raise Invalid("Exactly one instance with a prompt is required.")
    prompt = instances[0].get("prompt") if isinstance(instances[0], dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        raise Invalid("The prompt is empty.")
    _check_predict_parameters(model, body.get("parameters") or {})


def _check_predict_parameters(model: str, params: dict[str, Any]) -> None:
    unknown = set(params) - PREDICT_PARAMETERS - {"outputOptions"}
    if unknown:
        raise Invalid(
            f"Invalid JSON payload received. Unknown name \"{sorted(unknown)[0]}\" at 'parameters'."
        )
    if not 1 <= int(params.get("sampleCount", 1)) <= 4:
        raise Invalid("sampleCount must be between 1 and 4.")
    if params.get("aspectRatio", "1:1") not in IMAGEN_RATIOS:
        raise Invalid(f"Unsupported aspect ratio {params.get('aspectRatio')}.")
    size = params.get("sampleImageSize")
    if size is not None and ("fast" in model or size not in ("1K", "2K")):
        raise Invalid(f"sampleImageSize {params['sampleImageSize']} is not supported for {model}.")
    if "seed" in params and params.get("addWatermark", True):
        raise Invalid("Seed is not supported when watermark is enabled. Set addWatermark to false.")
    if "negativePrompt" in params and model.startswith("imagen-4"):
        raise Invalid("Negative prompt is not supported for this model.")
    enums = {
        "personGeneration": {"dont_allow", "allow_adult", "allow_all"},
        "safetySetting": {
            "block_low_and_above",
            "block_medium_and_above",
            "block_only_high",
            "block_none",
        },
    }
    for key, allowed in enums.items():
        # The SDK sends its enum names (ALLOW_ALL); the API documents lower case: both work.
        if key in params and str(params[key]).lower() not in allowed:
            raise Invalid(f"Invalid value for {key}: {params[key]}.")
    _check_output_options(params.get("outputOptions") or {})


def _check_output_options(options: dict[str, Any]) -> None:
    if set(options) - OUTPUT_OPTIONS or options.get("mimeType", "image/png") not in (
        "image/png",
        "image/jpeg",
    ):
        raise Invalid("Invalid outputOptions.")
    if "compressionQuality" in options and (
        options.get("mimeType") != "image/jpeg"
        or not 0 <= int(options["compressionQuality"]) <= 100
    ):
        raise Invalid("compressionQuality applies to image/jpeg only, between 0 and 100.")


def check_generate(model: str, body: Any) -> None:
    """A :generateContent body for an image model, as the Gemini API and Vertex validate it."""
    known = {
        "contents",
        "generationConfig",
        "safetySettings",
        "systemInstruction",
        "tools",
        "toolConfig",
        "cachedContent",
        "labels",
    }
    if not isinstance(body, dict) or set(body) - known:
        raise Invalid("Invalid JSON payload received. Unknown name in the request body.")
    _check_contents(body.get("contents"))
    _check_generation_config(model, body.get("generationConfig") or {})


def _check_contents(contents: Any) -> None:
    if not isinstance(contents, list) or not contents:
        raise Invalid("contents is not specified")
    for content in contents:
        for part in content.get("parts") or []:
            inline = part.get("inlineData")
            if inline is not None:
                if inline.get("mimeType") not in INLINE_TYPES:
                    raise Invalid(f"Unsupported MIME type: {inline.get('mimeType')}")
                base64.urlsafe_b64decode(str(inline.get("data", "")) + "==")
            elif not isinstance(part.get("text"), str):
                raise Invalid("A part needs text or inlineData.")


def _check_generation_config(model: str, config: dict[str, Any]) -> None:
    unknown = set(config) - GENERATION_CONFIG
    if unknown:
        raise Invalid(
            f"Invalid JSON payload received. Unknown name \"{sorted(unknown)[0]}\" at 'generation_config'."
        )
    modalities = config.get("responseModalities") or ["TEXT"]
    if set(modalities) - {"TEXT", "IMAGE"} or "IMAGE" not in modalities:
        raise Invalid("This model only supports response modalities TEXT and IMAGE, with IMAGE.")
    image = config.get("imageConfig") or {}
    if set(image) - IMAGE_CONFIG:
        raise Invalid("Invalid imageConfig.")
    ratios = GEMINI_31_RATIOS if model.startswith("gemini-3.1") else GEMINI_RATIOS
    if "aspectRatio" in image and image["aspectRatio"] not in ratios:
        raise Invalid(f"Unsupported aspect ratio: {image['aspectRatio']}")
    if "imageSize" in image and (
        image["imageSize"] not in ("1K", "2K", "4K") or not model.startswith("gemini-3")
    ):
        raise Invalid(f"image_size {image['imageSize']} is not supported by {model}.")


# Google's wording for an image its filter removed (include_rai_reason = true).
RAI_REASON = (
    "Your current safety filter threshold filtered out 1 generated images. You will not be "
    "charged for blocked images. Try rephrasing the prompt. If you think this was an error, "
    "send feedback. Support codes: 58061214"
)
# Gemini bills an image up to 1024 px as 1290 output tokens (2.5 Flash Image).
IMAGE_OUTPUT_TOKENS = 1290
IMAGE_INPUT_TOKENS = 258


def image_bytes(aspect_ratio: str = "1:1", mime: str = "image/png") -> bytes:
    """A small real image whose shape follows the aspect ratio (16:9 -> 64x36)."""
    w, h = (int(x) for x in aspect_ratio.split(":"))
    scale = 64 / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 130, 140)).save(buf, "JPEG" if mime == "image/jpeg" else "PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def google_error(
    code: int,
    status: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> Reply:
    """An error answer in Google's google.rpc.Status shape (`headers` such as Retry-After)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return Reply(status=code, body={"error": error}, headers=dict(headers or {}))


def imagen_body(
    count: int = 1,
    *,
    filtered: int = 0,
    reason: str = RAI_REASON,
    aspect_ratio: str = "1:1",
    mime: str = "image/png",
    enhanced_prompt: str | None = None,
) -> dict[str, Any]:
    """A :predict answer: `count` images, the last `filtered` of them replaced by a reason."""
    predictions: list[dict[str, Any]] = []
    for i in range(count):
        if i >= count - filtered:
            predictions.append({"raiFilteredReason": reason})
            continue
        item: dict[str, Any] = {
            "bytesBase64Encoded": b64(image_bytes(aspect_ratio, mime)),
            "mimeType": mime,
        }
        if enhanced_prompt:
            item["prompt"] = enhanced_prompt
        predictions.append(item)
    return {"predictions": predictions} if predictions else {}


def gemini_body(
    *,
    images: int = 1,
    text: str | None = "Here is your image.",
    finish_reason: str = "STOP",
    aspect_ratio: str = "1:1",
    model_version: str = "gemini-2.5-flash-image",
    response_id: str = "resp-gemini-0001",
    prompt_text_tokens: int = 12,
    prompt_image_tokens: int = 0,
    usage: bool = True,
    prompt_block: str | None = None,
) -> dict[str, Any]:
    """A :generateContent answer with `images` inline PNG parts."""
    if prompt_block:
        return {
            "promptFeedback": {"blockReason": prompt_block},
            "modelVersion": model_version,
            "responseId": response_id,
        }
    parts: list[dict[str, Any]] = []
    if text:
        parts.append({"text": text})
    for _ in range(images):
        parts.append(
            {"inlineData": {"mimeType": "image/png", "data": b64(image_bytes(aspect_ratio))}}
        )
    candidate: dict[str, Any] = {"finishReason": finish_reason, "index": 0}
    if parts:
        candidate["content"] = {"role": "model", "parts": parts}
    body: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": model_version,
        "responseId": response_id,
    }
    if usage:
        out_text = 8 if text else 0
        out_image = IMAGE_OUTPUT_TOKENS * images
        prompt_details = [{"modality": "TEXT", "tokenCount": prompt_text_tokens}]
        if prompt_image_tokens:
            prompt_details.append({"modality": "IMAGE", "tokenCount": prompt_image_tokens})
        out_details = [{"modality": "IMAGE", "tokenCount": out_image}]
        if out_text:
            out_details.append({"modality": "TEXT", "tokenCount": out_text})
        body["usageMetadata"] = {
            "promptTokenCount": prompt_text_tokens + prompt_image_tokens,
            "candidatesTokenCount": out_image + out_text,
            "totalTokenCount": prompt_text_tokens + prompt_image_tokens + out_image + out_text,
            "promptTokensDetails": prompt_details,
            "candidatesTokensDetails": out_details,
        }
    return body


class GoogleFake(ProviderFake):
    """Vertex AI + Gemini API + OAuth token endpoint on one loopback server.

    `api_key` is the only key accepted; a bearer token is accepted once the token endpoint has
    issued it. `headers` are added to every healthy answer (e.g. a request-id header a proxy
    adds). Queue special answers with `queue(endpoint, *replies)`.
    """

    def __init__(self, api_key: str = API_KEY) -> None:
        self.server = FakeServer("google")
        self.api_key = api_key
        self._queues: dict[Endpoint, deque[Reply]] = {
            "predict": deque(),
            "generate": deque(),
            "get": deque(),
            "token": deque(),
        }
        self.reset()
        for prefix in ("", PROJECT_PREFIX):
            self.server.on("POST", f"{VERTEX}{prefix}{PUBLISHER}:predict", self._predict)
            self.server.on("POST", f"{VERTEX}{prefix}{PUBLISHER}:generateContent", self._generate)
        self.server.on("POST", f"{GEMINI}/models/{{model}}:generateContent", self._generate)
        self.server.on("GET", f"{VERTEX}{PUBLISHER}", self._get)
        self.server.on("GET", f"{GEMINI}/models/{{model}}", self._get)
        self.server.on("POST", "/token", self._token)

    # -- lifecycle ------------------------------------------------------------------
    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    # -- programming ----------------------------------------------------------------
    def reset(self) -> None:
        """Back to healthy defaults with no recorded requests (one server, many tests)."""
        self.headers: dict[str, str] = {}
        self.models: set[str] = set(KNOWN_MODELS)
        self.retired: set[str] = set()
        self.rejections: list[str] = []
        self.tokens_issued = 0
        self.imagen_filtered = 0
        self.enhanced_prompt: str | None = None
        for queue in self._queues.values():
            queue.clear()
        self.server.clear()

    def queue(self, endpoint: Endpoint, *replies: Reply) -> None:
        """Serve these answers, in order, before the default ones."""
        self._queues[endpoint].extend(replies)

    def calls(self, endpoint: Endpoint) -> list[RecordedRequest]:
        suffix = {"predict": ":predict", "generate": ":generateContent", "token": "/token"}
        if endpoint == "get":
            return [r for r in self.server.calls(method="GET")]
        return [r for r in self.server.calls(method="POST") if r.path.endswith(suffix[endpoint])]

    def service_account_file(self, directory: Path, project: str = "fake-project") -> Path:
        """A service-account key file whose token_uri is this fake: google-auth signs a JWT
        with the (freshly generated) key and exchanges it here for an access token."""
        path = directory / "service-account.json"
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": project,
                    "private_key_id": "fake-key-id",
                    "private_key": _private_key_pem(),
                    "client_email": f"imageroute@{project}.iam.gserviceaccount.com",
                    "client_id": "100000000000000000001",
                    "token_uri": self.token_uri,
                }
            ),
            encoding="utf-8",
        )
        return path

    # -- handlers -------------------------------------------------------------------
    def _denied(self, req: RecordedRequest) -> Reply | None:
        key = req.headers.get("x-goog-api-key")
        bearer = req.headers.get("authorization", "")
        if key is not None:
            if key == self.api_key:
                return None
            # What Google answers a wrong key (Gemini API and Vertex express mode alike).
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            )
        if bearer == f"Bearer {ACCESS_TOKEN}" and self.tokens_issued:
            return None
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
        )

    def _unknown_model(self, req: RecordedRequest) -> Reply | None:
        model = req.path_params.get("model", "").split(":")[0]
        if model in self.retired and req.path.startswith(GEMINI):
            return google_error(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for "
                "generateContent. Call ListModels to see the list of available models and their "
                "supported methods.",
            )
        if model in self.models and model not in self.retired:
            return None
        return google_error(
            404,
            "NOT_FOUND",
            f"Publisher Model `publishers/google/models/{model}` was not found or your project "
            "does not have access to it.",
        )

    def _next(self, endpoint: Endpoint) -> Reply | None:
        queue = self._queues[endpoint]
        return queue.popleft() if queue else None

    def _ok(self, body: dict[str, Any]) -> Reply:
        return Reply(200, body, headers=dict(self.headers))

    def _invalid(self, req: RecordedRequest, check: Callable[[str, Any], None]) -> Reply | None:
        model = req.path_params.get("model", "").split(":")[0]
        try:
            check(model, req.json())
        except (Invalid, ValueError, TypeError) as exc:
            self.rejections.append(f"{model}: {exc}")
            return google_error(400, "INVALID_ARGUMENT", str(exc) or "Invalid argument.")
        return None

    def _predict(self, req: RecordedRequest) -> Reply:
        denied = self._denied(req) or self._unknown_model(req) or self._invalid(req, check_predict)
        if denied:
            return denied
        queued = self._next("predict")
        if queued:
            return queued
        params = req.json().get("parameters", {})
        mime = params.get("outputOptions", {}).get("mimeType", "image/png")
        return self._ok(
            imagen_body(
                int(params.get("sampleCount", 1)),
                filtered=self.imagen_filtered,
                aspect_ratio=params.get("aspectRatio", "1:1"),
                mime=mime,
                enhanced_prompt=self.enhanced_prompt,
            )
        )

    def _generate(self, req: RecordedRequest) -> Reply:
        denied = self._denied(req) or self._unknown_model(req) or self._invalid(req, check_generate)
        if denied:
            return denied
        queued = self._next("generate")
        if queued:
            return queued
        body = req.json()
        image_config = body.get("generationConfig", {}).get("imageConfig", {})
        inputs = sum(
            1 for c in body.get("contents", []) for p in c.get("parts", []) if "inlineData" in p
        )
        model = req.path_params["model"].split(":")[0]
        return self._ok(
            gemini_body(
                aspect_ratio=image_config.get("aspectRatio", "1:1"),
                model_version=model,
                prompt_image_tokens=IMAGE_INPUT_TOKENS * inputs,
            )
        )

    def _get(self, req: RecordedRequest) -> Reply:
        denied = self._denied(req) or self._unknown_model(req)
        if denied:
            return denied
        queued = self._next("get")
        if queued:
            return queued
        model = req.path_params["model"]
        if req.path.startswith(VERTEX):
            return self._ok(
                {
                    "name": f"publishers/google/models/{model}",
                    "versionId": "001",
                    "launchStage": "GA",
                    "openSourceCategory": "PROPRIETARY",
                }
            )
        return self._ok(
            {
                "name": f"models/{model}",
                "displayName": model,
                "inputTokenLimit": 32768,
                "outputTokenLimit": 32768,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
        )

    def _token(self, req: RecordedRequest) -> Reply:
        queued = self._next("token")
        if queued:
            return queued
        form = req.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        self.tokens_issued += 1
        return Reply(
            200, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
        )


_PEM: list[str] = []


def _private_key_pem() -> str:
    """An RSA key generated once per test session (generation takes a moment)."""
    if not _PEM:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _PEM.append(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        )
    return _PEM[0]

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
"""

from __future__ import annotations

import base64
import io
import json
from collections import deque
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from tests.fakes.server import FakeServer, RecordedRequest, Reply

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
    **headers: str,
) -> Reply:
    """An error answer in Google's google.rpc.Status shape."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return Reply(status=code, body={"error": error}, headers=dict(headers))


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


class GoogleFake:
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
    def start(self) -> GoogleFake:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    # -- programming ----------------------------------------------------------------
    def reset(self) -> None:
        """Back to healthy defaults with no recorded requests (one server, many tests)."""
        self.headers: dict[str, str] = {}
        self.models: set[str] = set(KNOWN_MODELS)
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
        if model in self.models:
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

    def _predict(self, req: RecordedRequest) -> Reply:
        denied = self._denied(req) or self._unknown_model(req)
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
        denied = self._denied(req) or self._unknown_model(req)
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

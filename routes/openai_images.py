"""kind = "openai": the OpenAI Images API (generations and edits) through the openai SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

from routes.base import BaseRoute
from routes.capabilities import resolve_size
from routes.config import GatewayRoute as GatewayConfig
from routes.config import OpenAIResponsesRoute as ResponsesConfig
from routes.config import OpenAIRoute as OpenAIConfig
from routes.model import ImageRequest, ImageResult, Usage
from routes.openai_common import (
    DEFAULT_BASE_URL,
    call_images_api,
    collect_images,
    image_token_count,
    images_api_params,
    make_client,
    map_openai_error,
    require_images,
    usage_dict,
)
from routes.pacing import Stopwatch, crunch

if TYPE_CHECKING:
    import openai


# Headers OpenAI-compatible gateways use to say which model served a request.
SERVED_MODEL_HEADERS = ("x-model", "x-litellm-model", "x-litellm-model-id", "x-portkey-model")


# The configs of the routes that speak the OpenAI wire format: each builds its own client.
CompatibleConfig = TypeVar("CompatibleConfig", bound=OpenAIConfig | ResponsesConfig | GatewayConfig)


class OpenAICompatibleRoute(BaseRoute, Generic[CompatibleConfig]):
    """Generation via POST /images/generations, edits via POST /images/edits (multipart), the
    auth probe and the error mapping, for every route that speaks the OpenAI wire format."""

    config: CompatibleConfig
    provider_name = "OpenAI"

    def __init__(self, config: CompatibleConfig) -> None:
        super().__init__(config)
        self._client: openai.AsyncOpenAI | None = None

    def build_client(self) -> openai.AsyncOpenAI:
        """The SDK client for this route's host, key and headers."""
        raise NotImplementedError

    @property
    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = self.build_client()
        return self._client

    @property
    def credentials(self) -> dict[str, str]:
        """The headers that authenticate this route, for downloads from its own host only."""
        key = self.config.api_key.get_secret_value() if self.config.api_key else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    @property
    def issuer(self) -> str:
        return self.config.base_url or DEFAULT_BASE_URL

    async def generate(self, request: ImageRequest) -> ImageResult:
        import openai

        size = resolve_size(request.size, self._caps)
        params = images_api_params(request, size.label)
        clock = Stopwatch()
        try:
            raw = await call_images_api(
                self.client, model=self.model, request=request, params=params
            )
            # A few MB of JSON with base64 images: parsed off the event loop, once the
            # requests this process is answering are answered (routes.pacing).
            body = await crunch(raw.parse)
        except openai.OpenAIError as exc:
            raise map_openai_error(exc, provider=self.provider_name) from None
        request_id = raw.headers.get("x-request-id")
        images = await collect_images(
            body.data,
            request.output_format,
            issuer=self.issuer,
            credentials=self.credentials,
            request_id=request_id,
        )
        latency = clock()  # a downloaded image is part of the call
        require_images(images, request_id)
        usage = usage_dict(body.usage)
        extra_fields = body.model_extra or {}
        reported = extra_fields.get("model") or raw.headers.get("openai-model")
        served = next((raw.headers[h] for h in SERVED_MODEL_HEADERS if raw.headers.get(h)), None)
        return ImageResult(
            images=images,
            requested_model=self.model,
            model=str(reported) if reported else None,
            response_id=request_id,
            latency_s=latency,
            metered=Usage(
                images=len(images),
                tokens=tuple(t for t in [image_token_count(self.model, usage)] if t),
                quality=body.quality or request.quality,
            ),
            usage=usage,
            metadata={
                key: value
                for key, value in (
                    ("endpoint", "images/edits" if request.is_edit else "images/generations"),
                    ("size", body.size or size.label),
                    ("quality", body.quality),
                    ("background", body.background),
                    ("output_format", body.output_format),
                    ("served_model", served),
                )
                if value is not None
            },
        )

    async def check_auth(self) -> str | None:
        """GET /models/{model}: free, and proves both the key and access to the model."""
        import openai

        try:
            raw = await self.client.models.with_raw_response.retrieve(self.model)
        except openai.OpenAIError as exc:
            raise map_openai_error(exc, provider=self.provider_name) from None
        request_id: str | None = raw.headers.get("x-request-id")
        return request_id

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class OpenAIImagesRoute(OpenAICompatibleRoute[OpenAIConfig | ResponsesConfig]):
    """kind = "openai": OpenAI's own API, with the account's organization when one is set."""

    def build_client(self) -> openai.AsyncOpenAI:
        key = self.config.api_key.get_secret_value() if self.config.api_key else None
        return make_client(
            api_key=key,
            base_url=self.config.base_url,
            organization=self.config.organization,
            timeout=self.config.timeout_seconds,
        )

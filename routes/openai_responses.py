"""kind = "openai-responses": a text model on the Responses API with the hosted
`image_generation` tool, for assistant-style requests where the model plans, then draws.

The run log keeps the response id, the tool's revised prompt and the image settings the tool
reports. Cost: the text model's tokens are priced only when a row exists for that model; the
image tool is priced from the image model's per-token rate when the response reports the tool's
usage. Anything not on file leaves the cost unknown rather than guessed.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from routes.capabilities import resolve_size
from routes.config import OpenAIResponsesRoute as ResponsesConfig
from routes.errors import ProviderDownError
from routes.media import sniff_mime
from routes.model import Cost, GeneratedImage, ImageRequest, ImageResult
from routes.openai_common import map_openai_error, require_images, usage_dict
from routes.openai_images import OpenAIImagesRoute, images_api_params
from routes.pricing import price_for, token_cost

TOOL_SETTINGS = ("size", "quality", "background", "output_format", "moderation")


def tool_definition(request: ImageRequest, image_model: str, size: str) -> dict[str, Any]:
    """The hosted tool's settings: the Images API fields, minus `n` (one image per call)."""
    params = images_api_params(request, size)
    params.pop("n", None)
    return {"type": "image_generation", "model": image_model, **params}


def request_input(request: ImageRequest) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "input_text", "text": request.prompt}]
    for image in request.input_images:
        data = base64.b64encode(image.data).decode()
        content.append({"type": "input_image", "image_url": f"data:{image.mime};base64,{data}"})
    return [{"role": "user", "content": content}]


class OpenAIResponsesRoute(OpenAIImagesRoute):
    """Same client, auth probe and error mapping as the Images API route; only the call and
    the answer differ."""

    config: ResponsesConfig  # type: ignore[assignment]

    def __init__(self, config: ResponsesConfig) -> None:
        super().__init__(config)  # type: ignore[arg-type]
        self._image_price = price_for("openai", config.image_model)

    async def generate(self, request: ImageRequest) -> ImageResult:
        import openai

        size = resolve_size(request.size, self._caps).label
        tool = tool_definition(request, self.config.image_model, size)
        t0 = time.perf_counter()
        try:
            create: Any = self.client.responses.with_raw_response.create
            raw = await create(
                model=self.model,
                input=request_input(request),
                tools=[tool],
                tool_choice={"type": "image_generation"},
            )
            latency = time.perf_counter() - t0
            body = raw.parse()
        except openai.OpenAIError as exc:
            raise map_openai_error(exc, provider=self.provider_name) from None
        request_id = raw.headers.get("x-request-id")
        dumped: dict[str, Any] = body.model_dump(exclude_none=True)
        calls = [o for o in dumped.get("output", []) if o.get("type") == "image_generation_call"]
        images = tuple(_decode(call) for call in calls if call.get("result"))
        require_images(images, request_id)
        first = calls[0]
        settings = {k: first[k] for k in TOOL_SETTINGS if first.get(k) is not None}
        usage = usage_dict(body.usage)
        text = "".join(
            part.get("text", "")
            for item in dumped.get("output", [])
            if item.get("type") == "message"
            for part in item.get("content", [])
            if part.get("type") == "output_text"
        )
        return ImageResult(
            images=images,
            requested_model=self.model,
            model=dumped.get("model"),
            response_id=dumped.get("id") or request_id,
            latency_s=latency,
            cost=self._cost(usage, dumped.get("tool_usage")),
            usage=usage,
            underlying_model=self.config.image_model,
            revised_prompt=first.get("revised_prompt"),
            metadata={
                "endpoint": "responses",
                "request_id": request_id,
                "image_call_id": first.get("id"),
                "tool_settings": settings,
                "assistant_text": text[:2000] or None,
            },
        )

    def _cost(self, usage: dict[str, Any] | None, tool_usage: Any) -> Cost:
        text = token_cost(self.price, usage)
        image_usage = None
        if isinstance(tool_usage, dict):
            image_usage = tool_usage.get("image_gen") or tool_usage.get("image_generation")
        image = token_cost(self._image_price, image_usage) if image_usage else None
        if text.usd is None or image is None or image.usd is None:
            return Cost.unknown(
                "text model tokens and image tool usage are not both priced on file "
                f"({self.model}: {text.detail})"
            )
        return Cost(
            usd=round(text.usd + image.usd, 6),
            basis="tokens",
            detail=f"text: {text.detail}; image tool: {image.detail}",
        )


def _decode(call: dict[str, Any]) -> GeneratedImage:
    try:
        data = base64.b64decode(call["result"], validate=True)
    except (binascii.Error, ValueError):
        raise ProviderDownError("the image tool sent an image that is not valid base64") from None
    mime = sniff_mime(data) or "image/png"
    return GeneratedImage(data=data, mime=mime)

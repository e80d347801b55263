"""kind = "openai-responses": a text model on the Responses API with the hosted
`image_generation` tool, for assistant-style requests where the model plans, then draws.

The run log keeps the response id, the tool's revised prompt and the image settings the tool
reports. Usage is reported in two parts: the text model's tokens (`usage`) and the image tool's
(`tool_usage.image_gen`), each priced by routes.pricing at its own model's rates (or the route's
own `pricing`, which then applies to both). A missing part leaves the cost unknown.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

from routes.capabilities import resolve_size
from routes.config import OpenAIResponsesRoute as ResponsesConfig
from routes.errors import ProviderDownError
from routes.media import decode_base64, sniff_mime
from routes.model import GeneratedImage, ImageRequest, ImageResult, InputImage, TokenCount, Usage
from routes.openai_common import (
    image_token_count,
    images_api_params,
    map_openai_error,
    require_images,
    text_token_count,
    usage_dict,
)
from routes.openai_images import OpenAIImagesRoute
from routes.pacing import Stopwatch, crunch

TOOL_SETTINGS = ("size", "quality", "background", "output_format", "moderation")


def _data_url(image: InputImage) -> str:
    return f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"


def tool_definition(request: ImageRequest, image_model: str, size: str) -> dict[str, Any]:
    """The hosted tool's settings: the Images API fields, minus `n` (one image per call).

    Unlike the Images edit endpoint the tool takes `moderation` on edits too, and the mask goes
    in the tool as `input_image_mask` (transparent where to edit, applied to the first input
    image), per the SDK's ImageGeneration tool type."""
    params = images_api_params(dataclasses.replace(request, input_images=()), size)
    params.pop("n", None)
    tool: dict[str, Any] = {"type": "image_generation", "model": image_model, **params}
    if request.mask is not None:
        tool["input_image_mask"] = {"image_url": _data_url(request.mask)}
    return tool


def request_input(request: ImageRequest) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "input_text", "text": request.prompt}]
    content += [
        # `detail` is required by the API schema (ResponseInputImageParam); auto is its default.
        {"type": "input_image", "image_url": _data_url(image), "detail": "auto"}
        for image in request.input_images
    ]
    return [{"role": "user", "content": content}]


class OpenAIResponsesRoute(OpenAIImagesRoute):
    """Same client, auth probe and error mapping as the Images API route; only the call and
    the answer differ."""

    config: ResponsesConfig

    def __init__(self, config: ResponsesConfig) -> None:
        super().__init__(config)

    async def generate(self, request: ImageRequest) -> ImageResult:
        import openai

        size = resolve_size(request.size, self._caps).label
        tool = tool_definition(request, self.config.image_model, size)
        turn: dict[str, Any] = {}
        if request.previous_response_id:
            # A later turn: the response it continues holds the earlier turns and images
            # (stored by the API by default), so only the new instruction is sent.
            turn["previous_response_id"] = request.previous_response_id
        clock = Stopwatch()
        try:
            create: Any = self.client.responses.with_raw_response.create
            raw = await create(
                model=self.model,
                input=request_input(request),
                tools=[tool],
                tool_choice={"type": "image_generation"},
                **turn,
            )
            latency = clock()
            # A few MB of JSON with base64 images: parsed off the event loop, once the
            # requests this process is answering are answered (routes.pacing).
            body = await crunch(raw.parse)
        except openai.OpenAIError as exc:
            raise map_openai_error(exc, provider=self.provider_name) from None
        request_id = raw.headers.get("x-request-id")
        dumped: dict[str, Any] = body.model_dump(exclude_none=True)
        calls = [o for o in dumped.get("output", []) if o.get("type") == "image_generation_call"]
        results = [call for call in calls if call.get("result")]
        images = await crunch(lambda: tuple(_decode(call) for call in results))
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
            metered=self._usage(len(images), usage, dumped.get("tool_usage"), settings),
            usage=usage,
            underlying_model=self.config.image_model,
            revised_prompt=first.get("revised_prompt"),
            metadata={
                "endpoint": "responses",
                "request_id": request_id,
                "image_call_id": first.get("id"),
                "tool_settings": settings,
                "assistant_text": text[:2000] or None,
                **turn,
            },
        )

    def _usage(
        self,
        images: int,
        usage: dict[str, Any] | None,
        tool_usage: Any,
        settings: dict[str, Any],
    ) -> Usage:
        """The text model's tokens and the image tool's, each under its own model."""
        parts: list[TokenCount] = []
        missing: list[str] = []
        text = text_token_count(self.model, usage)
        if text is None:
            missing.append(f"the text model's usage ({self.model})")
        else:
            parts.append(text)
        image_usage = None
        if isinstance(tool_usage, dict):
            image_usage = tool_usage.get("image_gen") or tool_usage.get("image_generation")
        tool = image_token_count(self.config.image_model, image_usage)
        if tool is None:
            missing.append(
                f"the image tool's usage (tool_usage.image_gen, {self.config.image_model})"
            )
        else:
            parts.append(tool)
        return Usage(
            images=images,
            tokens=tuple(parts),
            quality=settings.get("quality"),
            unreported=tuple(missing),
        )


def _decode(call: dict[str, Any]) -> GeneratedImage:
    try:
        data = decode_base64(call["result"])
    except (binascii.Error, ValueError):
        raise ProviderDownError("the image tool sent an image that is not valid base64") from None
    mime = sniff_mime(data) or "image/png"
    return GeneratedImage(data=data, mime=mime)

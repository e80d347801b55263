"""kind = "google-imagen": Imagen 4 on Vertex AI through google-genai's generate_images."""

from __future__ import annotations

import dataclasses
from typing import Any

from google.genai import types

from routes.capabilities import ResolvedSize, resolve_size
from routes.config import GoogleImagenRoute as ImagenConfig
from routes.errors import EmptyResultError, ModerationError
from routes.google_common import (
    GOOGLE_CALL_ERRORS,
    GoogleRoute,
    check_auth_keys,
    image_from_bytes,
    image_size_to_send,
    map_google_error,
    request_id_from,
    seen_responses,
)
from routes.model import GeneratedImage, ImageRequest, ImageResult, Usage
from routes.pacing import Stopwatch

_MIME = {"png": "image/png", "jpeg": "image/jpeg"}


class GoogleImagenRoute(GoogleRoute):
    """Text-to-image via POST .../publishers/google/models/{model}:predict (Vertex AI only:
    generate_images needs a Vertex-mode client)."""

    config: ImagenConfig
    default_location = "us-central1"  # serves every Imagen 4 model

    def __init__(self, config: ImagenConfig) -> None:
        super().__init__(config)
        key = config.api_key.get_secret_value() if config.api_key else None
        self.project = config.project or None  # "${GOOGLE_CLOUD_PROJECT:-}" may expand to ""
        check_auth_keys(config.id, api_key=key, project=self.project, location=config.location)
        if config.add_watermark is True and self._caps.seed:
            # Imagen rejects a seed while the watermark is on: refuse seeds before any call.
            self._caps = dataclasses.replace(self._caps, seed=False)
        self.image_size = image_size_to_send(
            config.id, self.model, config.image_size, self._caps.extra.get("image_sizes", ())
        )
        self._client = None

    def images_config(
        self, request: ImageRequest, size: ResolvedSize
    ) -> types.GenerateImagesConfig:
        """The generate_images settings for a request; unset fields keep Google's defaults."""
        cfg = self.config
        fields: dict[str, Any] = {
            "number_of_images": request.n,
            "aspect_ratio": size.aspect_ratio,
            # Filtered images are dropped silently unless the reason is asked for.
            "include_rai_reason": True,
            "safety_filter_level": cfg.safety_filter_level,
            "person_generation": cfg.person_generation,
            "image_size": self.image_size,
            "add_watermark": cfg.add_watermark,
        }
        if request.seed is not None:
            fields["seed"] = request.seed
            # Google's default watermark is on and a seed needs it off (a configured True has
            # already removed the seed capability).
            fields["add_watermark"] = False
        if request.negative_prompt and self._caps.negative_prompt:
            fields["negative_prompt"] = request.negative_prompt
        if request.output_format:
            fields["output_mime_type"] = _MIME.get(request.output_format)
            if request.output_compression is not None and request.output_format == "jpeg":
                fields["output_compression_quality"] = request.output_compression
        return types.GenerateImagesConfig(**{k: v for k, v in fields.items() if v is not None})

    async def generate(self, request: ImageRequest) -> ImageResult:
        size = resolve_size(request.size, self._caps)
        config = self.images_config(request, size)
        client = self.client
        clock = Stopwatch()
        with seen_responses() as seen:
            try:
                response = await client.genai.aio.models.generate_images(
                    model=self.model, prompt=request.prompt, config=config
                )
            except GOOGLE_CALL_ERRORS as exc:
                raise map_google_error(exc, provider=client.provider) from None
        latency = clock()
        request_id = request_id_from(seen)

        images, reasons, revised = _collect(response)
        # Imagen drops a filtered image from the answer (with include_rai_reason it leaves a
        # reason in its place); either way fewer images than asked means filtered ones.
        filtered = max(request.n - len(images), 0)
        if not images:
            if reasons:
                raise ModerationError(
                    "Imagen's safety filter removed every image: " + "; ".join(reasons),
                    request_id=request_id,
                )
            raise EmptyResultError(
                "Imagen answered without an image or a reason (usually its safety filter)",
                request_id=request_id,
            )
        return ImageResult(
            images=tuple(images),
            requested_model=self.model,
            model=None,  # the predict answer does not name the model version
            response_id=request_id,
            latency_s=latency,
            # Filtered images are not billed: the price applies to the images returned.
            metered=Usage(images=len(images)),
            revised_prompt=revised,
            metadata=self._metadata(request, config, filtered, reasons),
        )

    def _metadata(
        self,
        request: ImageRequest,
        config: types.GenerateImagesConfig,
        filtered: int,
        reasons: list[str],
    ) -> dict[str, Any]:
        """What the run log keeps: the settings sent and what the filter removed."""
        metadata: dict[str, Any] = {
            "api": self.client.mode,
            "aspect_ratio": config.aspect_ratio,
            "requested_images": request.n,
            "filtered_images": filtered,
        }
        if self.location:
            metadata["location"] = self.location
        for key in (
            "image_size",
            "safety_filter_level",
            "person_generation",
            "add_watermark",
            "seed",
            "output_mime_type",
            "output_compression_quality",
        ):
            value = getattr(config, key)
            if value is not None:
                metadata[key] = value.value if hasattr(value, "value") else value
        if reasons:
            metadata["filtered_reasons"] = reasons
        return metadata


def _collect(
    response: types.GenerateImagesResponse,
) -> tuple[list[GeneratedImage], list[str], str | None]:
    """(images, distinct filter reasons, enhanced prompt) from a generate_images answer."""
    images: list[GeneratedImage] = []
    reasons: list[str] = []
    revised: str | None = None
    for generated in response.generated_images or []:
        picture = generated.image
        image = image_from_bytes(
            picture.image_bytes if picture else None, picture.mime_type if picture else None
        )
        if image is not None:
            images.append(image)
            revised = revised or generated.enhanced_prompt
        reason = generated.rai_filtered_reason
        if reason and reason not in reasons:
            reasons.append(reason)
    return images, reasons, revised

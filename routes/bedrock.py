"""kind = "bedrock": Amazon Bedrock `invoke_model` (boto3 bedrock-runtime) for Amazon Nova Canvas,
Titan Image and Stability models, each family with its own body and answer format.

Region and credentials come from the usual AWS chain (env, profile, instance role); boto3's own
retries are off so each attempt is counted once by the executor. Safety blocks can arrive as
HTTP 200 (`finish_reasons`, `error`), so answers are checked, not only status codes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any

from routes.base import BaseRoute
from routes.capabilities import resolve_size
from routes.config import BedrockRoute as BedrockConfig
from routes.errors import (
    BadRequestError,
    ModerationError,
    ProviderDownError,
    RouteError,
    RouteTimeoutError,
)
from routes.failures import ProviderFailure, retry_after, route_error
from routes.media import decode_base64, image_pixels, sniff_mime
from routes.model import GeneratedImage, ImageRequest, ImageResult, Usage
from routes.pacing import Stopwatch, crunch


def family(model: str) -> str:
    if model.startswith(("amazon.nova-canvas", "amazon.titan-image")):
        return "amazon"
    if model.startswith("stability."):
        return "stability"
    raise BadRequestError(f"imageroute does not know the request format of Bedrock model {model}")


def request_body(model: str, request: ImageRequest, size_label: str) -> dict[str, Any]:
    if family(model) == "stability":
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "output_format": request.output_format or "png",
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.seed is not None:
            body["seed"] = request.seed
        if request.input_images:
            # image-to-image keeps the input's aspect ratio: AWS documents aspect_ratio as valid
            # for text-to-image only (the capability row refuses a size on edits).
            body["mode"] = "image-to-image"
            body["image"] = base64.b64encode(request.input_images[0].data).decode()
            body["strength"] = 0.7
        elif ":" in size_label:
            body["aspect_ratio"] = size_label
        return body
    width, height = (int(v) for v in size_label.split("x"))
    config: dict[str, Any] = {"numberOfImages": request.n, "width": width, "height": height}
    if request.seed is not None:
        config["seed"] = request.seed
    if request.quality in ("standard", "premium"):
        config["quality"] = request.quality
    if request.input_images:
        params: dict[str, Any] = {
            "text": request.prompt,
            "images": [base64.b64encode(request.input_images[0].data).decode()],
        }
        if request.negative_prompt:
            params["negativeText"] = request.negative_prompt
        return {
            "taskType": "IMAGE_VARIATION",
            "imageVariationParams": params,
            "imageGenerationConfig": config,
        }
    text: dict[str, Any] = {"text": request.prompt}
    if request.negative_prompt:
        text["negativeText"] = request.negative_prompt
    return {"taskType": "TEXT_IMAGE", "textToImageParams": text, "imageGenerationConfig": config}


# Stability's documented finish reasons: the "Filter reason" ones are the safety filter, while
# "Inference error" is the model failing, which is the provider's fault, not the prompt's.
INFERENCE_ERROR = "Inference error"


def parse_answer(
    answer: dict[str, Any], request_id: str | None
) -> tuple[tuple[GeneratedImage, ...], str | None]:
    """The images of an InvokeModel answer, and Nova's note when its filter removed some.

    Safety and failures arrive as HTTP 200: Nova/Titan put a sentence in `error` ("All of the
    generated images have been blocked by our content filters." / "Some of ..."), Stability puts
    one reason per image in `finish_reasons`."""
    reasons = [str(r) for r in answer.get("finish_reasons") or [] if r]
    if any(r == INFERENCE_ERROR for r in reasons):
        raise ProviderDownError(
            "the Stability model failed while generating (finish reason 'Inference error')",
            request_id=request_id,
        )
    if reasons:
        raise ModerationError(f"Bedrock filtered the output: {reasons[0]}", request_id=request_id)
    images = []
    for b64 in answer.get("images") or []:
        try:
            data = decode_base64(b64)
        except (binascii.Error, ValueError):
            raise ProviderDownError("Bedrock sent an image that is not valid base64") from None
        images.append(GeneratedImage(data=data, mime=sniff_mime(data) or "image/png"))
    note = str(answer["error"]) if answer.get("error") else None
    if not images:
        if note:
            raise ModerationError(note, request_id=request_id)
        raise ProviderDownError(
            "Bedrock answered without an image", request_id=request_id, retryable=False
        )
    return tuple(images), note


def map_client_error(exc: Any) -> RouteError:
    """botocore ClientError -> the taxonomy, by the [[bedrock]] table (AWS error code first)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    meta = exc.response.get("ResponseMetadata", {})
    failure = ProviderFailure(
        status=meta.get("HTTPStatusCode"),
        codes=(code,) if code else (),
        message=str(error.get("Message", "")) or code,
        request_id=meta.get("RequestId"),
        retry_after=retry_after(meta.get("HTTPHeaders")),
    )
    # The AWS error code says more than most messages (ThrottlingException: Too many requests).
    return route_error("bedrock", failure, message=f"{code}: {failure.message}" if code else None)


def _pixels(size_label: str) -> int | None:
    if "x" not in size_label:
        return None
    width, height = (int(v) for v in size_label.split("x"))
    return width * height


class BedrockRoute(BaseRoute):
    config: BedrockConfig

    def __init__(self, config: BedrockConfig) -> None:
        super().__init__(config)
        family(self.model)  # an unknown model family is a config error, found at start
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            session = boto3.Session(profile_name=self.config.profile or None)
            self._client = session.client(
                "bedrock-runtime",
                region_name=self.config.region,
                endpoint_url=self.config.endpoint_url or self.config.base_url or None,
                config=Config(
                    retries={"total_max_attempts": 1, "mode": "standard"},
                    read_timeout=self.config.timeout_seconds,
                    connect_timeout=10,
                ),
            )
        return self._client

    def _invoke(self, body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

        try:
            response = self.client.invoke_model(
                modelId=self.model,
                body=json.dumps(body),
                contentType="application/json",
                accept="application/json",
            )
        except ClientError as exc:
            raise map_client_error(exc) from None
        except ReadTimeoutError:
            raise RouteTimeoutError("Bedrock did not answer in time") from None
        except BotoCoreError as exc:
            raise ProviderDownError(f"could not call Bedrock: {type(exc).__name__}") from None
        request_id = response.get("ResponseMetadata", {}).get("RequestId")
        answer = json.loads(response["body"].read())
        return answer, request_id

    async def generate(self, request: ImageRequest) -> ImageResult:
        size = resolve_size(request.size, self._caps).label
        body = request_body(self.model, request, size)
        clock = Stopwatch()
        answer, request_id = await asyncio.to_thread(self._invoke, body)
        latency = clock()
        # Megabytes of base64: decoded off the event loop, after the acks in progress.
        images, filtered = await crunch(parse_answer, answer, request_id)
        return ImageResult(
            images=images,
            requested_model=self.model,
            model=self.model,
            response_id=request_id,
            latency_s=latency,
            # Nova Canvas and Titan bill by quality and size; the others per image.
            metered=Usage(
                images=len(images),
                quality=request.quality,
                pixels=_pixels(size) or image_pixels(images[0].data),
            ),
            metadata={
                key: value
                for key, value in (
                    ("task", body.get("taskType") or body.get("mode", "text-to-image")),
                    ("seeds", answer.get("seeds")),
                    ("filtered", filtered),
                )
                if value is not None
            },
        )

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

"""A strict fake of Amazon Bedrock runtime's InvokeModel for the image models, for boto3 pointed
at it with endpoint_url.

Where its rules come from:
- The operation, its path and every error code with its HTTP status: botocore's service model
  for bedrock-runtime (botocore/data/bedrock-runtime/2023-09-30/service-2.json, read at import
  time), answered the way the restJson protocol carries them (x-amzn-ErrorType header,
  {"message"} body, x-amzn-RequestId). A SigV4 Authorization header is required.
- Amazon Nova Canvas / Titan Image bodies (docs.aws.amazon.com/nova/latest/userguide/
  image-gen-req-resp-structure.html, bedrock model-parameters-titan-image.html): taskType
  TEXT_IMAGE (textToImageParams.text 1..1024 characters, 512 on Titan) or IMAGE_VARIATION
  (imageVariationParams.images 1..5), imageGenerationConfig numberOfImages 1..5, width and
  height multiples of 16 between 320 and 4096, aspect within 1:4..4:1, at most 4,194,304 pixels
  (Nova), quality standard|premium, cfgScale 1.1..10, seed 0..858,993,459 (Nova;
  2,147,483,646 on Titan). Unknown keys are refused like Bedrock's JSON-schema check
  ("extraneous key [x] is not permitted").
- Stability bodies (model-parameters-diffusion-3-5-large.html, ...-stable-ultra-...,
  ...-stable-image-core-...): prompt up to 10,000 characters, negative_prompt, seed
  0..4,294,967,294, output_format jpeg|png|webp; SD3.5 Large also takes mode image-to-image with
  image and strength (0..1), where aspect_ratio is valid for text-to-image only; Ultra and Core
  are text-to-image only.
- Safety and failures on HTTP 200 (Nova error handling page, Stability response docs): Nova
  answers `error` = "All/Some of the generated images have been blocked by our content
  filters."; Stability answers finish_reasons "Filter reason: ..." or "Inference error".
- Lifecycle: a model past its end of life answers ResourceNotFoundException "This model version
  has reached the end of its life."; an unknown id answers ValidationException.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
from collections import deque
from pathlib import Path
from typing import Any, Literal

import botocore
from PIL import Image

from tests.fakes.server import FakeServer, ProviderFake, RecordedRequest, Reply

_MODEL_FILE = Path(botocore.__file__).parent / "data/bedrock-runtime/2023-09-30/service-2.json.gz"
_SERVICE: dict[str, Any] = json.loads(gzip.decompress(_MODEL_FILE.read_bytes()))
INVOKE = _SERVICE["operations"]["InvokeModel"]
ERROR_STATUS: dict[str, int] = {
    e["shape"]: _SERVICE["shapes"][e["shape"]]["error"]["httpStatusCode"] for e in INVOKE["errors"]
}
NOVA = "amazon.nova-canvas-v1:0"
TITAN = "amazon.titan-image-generator-v2:0"
SD35 = "stability.sd3-5-large-v1:0"
ULTRA = "stability.stable-image-ultra-v1:1"
CORE = "stability.stable-image-core-v1:1"
KNOWN = frozenset({NOVA, TITAN, SD35, ULTRA, CORE, "amazon.titan-image-generator-v1"})
STABILITY_RATIOS = frozenset({"16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"})
Filter = Literal["none", "all", "some", "inference_error"]


def aws_error(code: str, message: str, request_id: str = "req-err") -> Reply:
    """An InvokeModel error as the restJson protocol carries it; the status comes from the
    botocore service model."""
    return Reply(
        ERROR_STATUS[code],
        {"message": message},
        headers={
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "x-amzn-RequestId": request_id,
        },
    )


def _png(size: tuple[int, int] = (64, 64)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (0, 128, 128)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


class Invalid(Exception):
    pass


def _keys(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise Invalid(f"#{where}: expected type: JSONObject")
    for key in obj:
        if key not in allowed:
            raise Invalid(f"#{where}: extraneous key [{key}] is not permitted")
    return obj


def _number(obj: dict[str, Any], key: str, low: float, high: float, where: str) -> None:
    if key in obj:
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"#{where}/{key}: expected type: Number")
        if not low <= value <= high:
            raise Invalid(f"#{where}/{key}: {value} is not between {low} and {high}")


def _image(value: Any, where: str) -> None:
    try:
        Image.open(io.BytesIO(base64.b64decode(str(value), validate=True))).verify()
    except (binascii.Error, ValueError, OSError):
        raise Invalid(f"#{where}: the image is not valid base64 PNG or JPEG") from None


class BedrockFake(ProviderFake):
    """bedrock-runtime InvokeModel for Nova Canvas, Titan Image and Stability models."""

    def __init__(self) -> None:
        self.server = FakeServer("bedrock")
        self.retired: set[str] = set()
        self.denied: set[str] = set()
        self.filter: Filter = "none"
        self.rejections: list[str] = []
        self._queue: deque[Reply] = deque()
        self.server.on("POST", "/model/{model}/invoke", self._invoke)

    def queue(self, *replies: Reply) -> None:
        """Answer these, in order, to requests that passed validation."""
        self._queue.extend(replies)

    def calls(self) -> list[RecordedRequest]:
        return self.server.calls(method="POST")

    # -- handler -----------------------------------------------------------------------------
    def _invoke(self, req: RecordedRequest) -> Reply:
        model = req.path_params["model"]
        if not req.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return aws_error("AccessDeniedException", "Missing Authentication Token")
        if model in self.retired:
            return aws_error(
                "ResourceNotFoundException",
                "This model version has reached the end of its life. Please refer to the AWS "
                "documentation for more details.",
            )
        if model not in KNOWN:
            return aws_error("ValidationException", "The provided model identifier is invalid.")
        if model in self.denied:
            return aws_error(
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            )
        try:
            body = json.loads(req.body)
            count = (
                self._check_stability(model, body)
                if model.startswith("stability.")
                else (self._check_amazon(model, body))
            )
        except (ValueError, Invalid) as exc:
            self.rejections.append(f"{model}: {exc}")
            return aws_error(
                "ValidationException",
                f"Malformed input request: {exc}, please reformat your input and try again.",
            )
        if self._queue:
            return self._queue.popleft()
        headers = {"x-amzn-RequestId": f"req-bedrock-{len(self.calls())}"}
        if model.startswith("stability."):
            return Reply(200, self._stability_answer(body), headers=headers)
        return Reply(200, self._amazon_answer(count), headers=headers)

    def _check_amazon(self, model: str, body: Any) -> int:
        nova = model.startswith("amazon.nova")
        text_limit = 1024 if nova else 512
        body = _keys(
            body,
            {"taskType", "textToImageParams", "imageVariationParams", "imageGenerationConfig"},
            "",
        )
        task = body.get("taskType")
        if task == "TEXT_IMAGE":
            params = _keys(
                body.get("textToImageParams"),
                {
                    "text",
                    "negativeText",
                    "conditionImage",
                    "controlMode",
                    "controlStrength",
                    "style",
                },
                "/textToImageParams",
            )
            text = params.get("text")
            if not isinstance(text, str) or not 1 <= len(text) <= text_limit:
                raise Invalid(f"#/textToImageParams/text: expected 1..{text_limit} characters")
        elif task == "IMAGE_VARIATION":
            params = _keys(
                body.get("imageVariationParams"),
                {"images", "text", "negativeText", "similarityStrength"},
                "/imageVariationParams",
            )
            images = params.get("images")
            if not isinstance(images, list) or not 1 <= len(images) <= 5:
                raise Invalid("#/imageVariationParams/images: expected 1..5 images")
            for image in images:
                _image(image, "/imageVariationParams/images")
            _number(params, "similarityStrength", 0.2, 1.0, "/imageVariationParams")
        else:
            raise Invalid(f"#/taskType: {task} is not a valid enum value")
        if "negativeText" in params and not 1 <= len(str(params["negativeText"])) <= text_limit:
            raise Invalid("#/negativeText: expected 1..1024 characters")
        config = _keys(
            body.get("imageGenerationConfig", {}),
            {"numberOfImages", "width", "height", "quality", "cfgScale", "seed"},
            "/imageGenerationConfig",
        )
        _number(config, "numberOfImages", 1, 5, "/imageGenerationConfig")
        _number(config, "cfgScale", 1.1, 10, "/imageGenerationConfig")
        _number(config, "seed", 0, 858_993_459 if nova else 2_147_483_646, "/imageGenerationConfig")
        if config.get("quality", "standard") not in ("standard", "premium"):
            raise Invalid("#/imageGenerationConfig/quality: not a valid enum value")
        w, h = int(config.get("width", 1024)), int(config.get("height", 1024))
        if w % 16 or h % 16 or not (320 <= w <= 4096 and 320 <= h <= 4096):
            raise Invalid(
                "#/imageGenerationConfig: width and height must be multiples of 16 between 320 and 4096"
            )
        if max(w, h) > 4 * min(w, h) or (nova and w * h > 4_194_304):
            raise Invalid(
                "#/imageGenerationConfig: the aspect ratio must be within 1:4..4:1 and at most 4194304 pixels"
            )
        return int(config.get("numberOfImages", 1))

    def _check_stability(self, model: str, body: Any) -> int:
        sd35 = model.startswith("stability.sd3")
        allowed = {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format"}
        if sd35:
            allowed |= {"mode", "image", "strength"}
        body = _keys(body, allowed, "")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or len(prompt) > 10_000:
            raise Invalid("#/prompt: expected up to 10000 characters")
        _number(body, "seed", 0, 4_294_967_294, "")
        if body.get("output_format", "png") not in ("jpeg", "png", "webp"):
            raise Invalid("#/output_format: not a valid enum value")
        mode = body.get("mode", "text-to-image")
        if mode not in ("text-to-image", "image-to-image"):
            raise Invalid("#/mode: not a valid enum value")
        if mode == "image-to-image":
            if "aspect_ratio" in body:
                raise Invalid("#/aspect_ratio: aspect_ratio is only valid for text-to-image")
            if "image" not in body or "strength" not in body:
                raise Invalid("#: image-to-image requires image and strength")
            _image(body["image"], "/image")
            _number(body, "strength", 0, 1, "")
        else:
            if "image" in body or "strength" in body:
                raise Invalid("#: image and strength are only valid for image-to-image")
            if body.get("aspect_ratio", "1:1") not in STABILITY_RATIOS:
                raise Invalid("#/aspect_ratio: not a valid enum value")
        return 1

    # -- answers -----------------------------------------------------------------------------
    def _amazon_answer(self, count: int) -> dict[str, Any]:
        if self.filter == "all":
            return {
                "images": [],
                "error": "All of the generated images have been blocked by our content filters.",
            }
        if self.filter == "some" and count > 1:
            return {
                "images": [_png() for _ in range(count - 1)],
                "error": "Some of the generated images have been blocked by our content filters.",
            }
        return {"images": [_png() for _ in range(count)]}

    def _stability_answer(self, body: dict[str, Any]) -> dict[str, Any]:
        seed = int(body.get("seed", 2130420379))
        if self.filter in ("all", "some"):
            return {
                "seeds": [seed],
                "finish_reasons": ["Filter reason: output image"],
                "images": [],
            }
        if self.filter == "inference_error":
            return {"seeds": [seed], "finish_reasons": ["Inference error"], "images": []}
        return {"seeds": [seed], "finish_reasons": [None], "images": [_png()]}

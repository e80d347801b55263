"""A strict fake of the OpenAI API on 127.0.0.1: Images API (generations, edits), Responses API
with the image_generation tool, and models. Flavors: `openai` (api.openai.com), `gateway` (an
OpenAI-compatible gateway, optionally answering with image URLs) and `local` (an
OpenAI-compatible self-hosted server).

It accepts only what the real endpoint accepts and answers a bad request the way OpenAI does
(HTTP 400, `{"error": {"message", "type", "param", "code"}}`), so a request the provider would
reject fails the test. Where each rule comes from:

- Parameter names and enum values: read at import time from the pinned openai SDK, the keyword
  arguments and Literal types of `AsyncImages.generate` / `AsyncImages.edit`
  (openai/resources/images.py), `AsyncResponses.create`, and the `ImageGeneration`,
  `ImageGenerationInputImageMask` and `ResponseInputImageParam` TypedDicts
  (openai/types/responses/). So images.edit takes no `moderation`, and the tool does.
- Size rules, image and mask rules (docstrings of those SDK methods, OpenAI API reference
  "Images"): gpt-image-2 takes WxH with both sides divisible by 16, aspect within 3:1, edges up
  to 3840 and at most 8,294,400 pixels; at least 655,360 pixels (secondary docs, verify); the
  gpt-image-1 family takes 1024x1024, 1536x1024, 1024x1536 or auto; no transparent background
  on gpt-image-2; transparency needs png or webp; output_compression only for jpeg/webp;
  response_format is for DALL-E only; up to 16 PNG/JPEG/WebP images under 50 MB; the mask is a
  PNG under 4 MB with an alpha channel and the size of the first image; input_fidelity not on
  gpt-image-1-mini; prompt up to 32,000 characters.
- `detail` is required on an input_image part (Required in ResponseInputImageParam).
- `previous_response_id` must name a response this API answered and stored (every one here:
  the API stores responses unless `store` is false); otherwise 400
  "Previous response with id '...' not found." (OpenAI API reference, "Conversation state").
- Headers: a Bearer key; an `OpenAI-Organization` header must name the key's organization (an
  empty one is refused as a mismatch, as the API does for a wrong one).
- Answers: GPT image models return `b64_json` with `usage` and an `x-request-id` header; a
  retired model answers 404 `model_not_found` (gpt-image-1, DALL-E 2 and 3); the
  gateway flavor can answer with `data[].url` on a separate delivery host.
- The `local` flavor accepts the dall-e-2-era subset local servers implement (model, prompt, n,
  size, response_format, user; edits add image and mask) and has /images/edits only when told.
"""

from __future__ import annotations

import base64
import inspect
import io
import re
import typing
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from openai.resources.images import AsyncImages
from openai.resources.responses import AsyncResponses
from openai.types.responses import response_input_image_param, tool_param
from PIL import Image

from tests.fakes.server import FakeServer, RecordedRequest, Reply

Flavor = Literal["openai", "gateway", "local"]
Endpoint = Literal["generations", "edits", "responses", "models"]
_SDK_ONLY = {"self", "extra_headers", "extra_query", "extra_body", "timeout"}


def _params(fn: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(fn).parameters) - _SDK_ONLY


def _literals(annotation: Any) -> frozenset[str]:
    found: set[str] = set()

    def walk(tp: Any) -> None:
        if typing.get_origin(tp) is Literal:
            found.update(a for a in typing.get_args(tp) if isinstance(a, str))
            return
        for arg in typing.get_args(tp):
            walk(arg)

    walk(annotation)
    return frozenset(found)


GENERATE_PARAMS = _params(AsyncImages.generate)
EDIT_PARAMS = _params(AsyncImages.edit)
RESPONSES_PARAMS = _params(AsyncResponses.create)
_GEN_HINTS = typing.get_type_hints(AsyncImages.generate)
_EDIT_HINTS = typing.get_type_hints(AsyncImages.edit)
_TOOL_HINTS = typing.get_type_hints(tool_param.ImageGeneration, include_extras=True)
TOOL_KEYS = frozenset(_TOOL_HINTS)
MASK_KEYS = frozenset(typing.get_type_hints(tool_param.ImageGenerationInputImageMask))
_INPUT_IMAGE_HINTS = typing.get_type_hints(
    response_input_image_param.ResponseInputImageParam, include_extras=True
)
INPUT_IMAGE_KEYS = frozenset(_INPUT_IMAGE_HINTS)
INPUT_IMAGE_REQUIRED = frozenset(
    k for k, v in _INPUT_IMAGE_HINTS.items() if typing.get_origin(v) is typing.Required
)
DETAILS = _literals(_INPUT_IMAGE_HINTS["detail"])
ENUMS: dict[str, frozenset[str]] = {
    name: _literals(_GEN_HINTS[name])
    for name in ("background", "moderation", "output_format", "response_format", "style")
}
ENUMS["input_fidelity"] = _literals(_EDIT_HINTS["input_fidelity"])
GPT_IMAGE_QUALITIES = frozenset({"low", "medium", "high", "auto"})
TOOL_ENUMS = {
    name: _literals(_TOOL_HINTS[name])
    for name in ("action", "background", "moderation", "output_format", "quality")
}
LOCAL_GENERATE = frozenset({"model", "prompt", "n", "size", "response_format", "user"})
LOCAL_EDIT = LOCAL_GENERATE | {"image", "mask"}

GPT_IMAGE_2 = re.compile(r"^gpt-image-2($|-\d{4}-\d{2}-\d{2}$)")
GPT_IMAGE_1_SIZES = frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"})
MIN_PIXELS, MAX_PIXELS, MAX_EDGE = 655_360, 8_294_400, 3840
MAX_IMAGE_BYTES, MAX_MASK_BYTES = 50 * 1024 * 1024, 4 * 1024 * 1024
KNOWN_MODELS = frozenset(
    {
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-1.5",
        "gpt-image-1-mini",
        "chatgpt-image-latest",
        "gpt-image-1",
        "dall-e-2",
        "dall-e-3",
        "gpt-5.4",
        "gpt-5.4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-4.1",
    }
)
# Shut down: gpt-image-1 on 2026-10-23, DALL-E 2 and 3 on 2026-05-12 (OpenAI deprecations page,
# as quoted in docs/providers.md).
RETIRED_MODELS = frozenset({"gpt-image-1", "dall-e-2", "dall-e-3"})


# What the default Responses answers report: the text model's usage, and the image tool's in
# `tool_usage.image_gen` (the shape client issues show, verify; docs/providers.md).
RESPONSES_USAGE: dict[str, Any] = {
    "input_tokens": 60,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 40,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 100,
}
TOOL_USAGE: dict[str, Any] = {
    "input_tokens": 20,
    "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
    "output_tokens": 272,
    "output_tokens_details": {"text_tokens": 0, "image_tokens": 272},
}


def png(color: str | tuple[int, ...] = "orange", size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", size, color).save(buf, format="PNG")
    return buf.getvalue()


def b64png(color: str = "orange", size: tuple[int, int] = (64, 64)) -> str:
    return base64.b64encode(png(color, size)).decode()


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    **headers: str,
) -> Reply:
    """An error answer in OpenAI's shape."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Reply(status, body, headers={"x-request-id": f"req_err_{status}", **headers})


def responses_body(
    image_b64: str,
    *,
    response_id: str = "resp_1",
    model: str = "gpt-5",
    text: str | None = None,
    usage: dict[str, Any] | None = None,
    **call: Any,
) -> dict[str, Any]:
    """A completed response whose output holds one image_generation_call (plus an assistant
    message when `text` is given); `call` adds fields to the tool call (revised_prompt, size...)."""
    output: list[dict[str, Any]] = []
    if text is not None:
        output.append(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    output.append(
        {
            "id": "ig_1",
            "type": "image_generation_call",
            "status": "completed",
            "result": image_b64,
            **call,
        }
    )
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": 1,
        "model": model,
        "status": "completed",
        "tool_choice": {"type": "image_generation"},
        "tools": [],
        "parallel_tool_calls": True,
        "output": output,
    }
    if usage is not None:
        body["usage"] = usage
    return body


class Rejected(Exception):
    """A request the real API would refuse: becomes a 400 in OpenAI's shape."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def image_size_of(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            return opened.size
    except OSError:
        return None


class OpenAIFake:
    """Serves the OpenAI API under `prefix` (tests may mount several routes on one server with
    a "{route}" placeholder in the prefix). `queue` answers, in order, after a request passed
    validation; `intercept` can answer any valid request (health modes); every refused request
    is kept in `rejections` with the reason."""

    def __init__(
        self,
        *,
        flavor: Flavor = "openai",
        prefix: str = "/v1",
        api_key: str | None = None,
        organization: str | None = None,
        url_results: bool = False,
        local_edits: bool = False,
        server: FakeServer | None = None,
    ) -> None:
        self.flavor = flavor
        self.prefix = prefix
        self.api_key = api_key
        self.organization = organization
        self.url_results = url_results
        self.local_edits = local_edits
        self.retired: set[str] = set(RETIRED_MODELS)
        self.models: set[str] = set(KNOWN_MODELS)
        self.rejections: list[str] = []
        self.intercept: Callable[[Endpoint, RecordedRequest], Reply | None] | None = None
        self.image = png()
        # What the default Responses answer says the tool did with the prompt.
        self.revised_prompt: str | None = None
        # Responses get ids `<response_id>_<n>`; every id answered is kept (stored responses,
        # the only ones a later turn may continue with previous_response_id).
        self.response_id = "resp"
        self.stored_responses: list[str] = []
        # The usage the default Images answers report (None: a small made-up one per image).
        self.usage: dict[str, Any] | None = None
        self._queues: dict[Endpoint, deque[Reply]] = {
            "generations": deque(),
            "edits": deque(),
            "responses": deque(),
            "models": deque(),
        }
        self._owns_server = server is None
        self.server = server or FakeServer(f"openai-{flavor}")
        # Where URL results are served: another host than the API (a CDN, a signed bucket).
        self.delivery = FakeServer("image-delivery") if url_results else None
        if self.delivery is not None:
            self.delivery.on("GET", "/img/{name}", self._deliver)
        self.server.on("POST", f"{prefix}/images/generations", self._generations)
        self.server.on("POST", f"{prefix}/images/edits", self._edits)
        self.server.on("POST", f"{prefix}/responses", self._responses)
        self.server.on("GET", f"{prefix}/models/{{model}}", self._model)
        self.server.on("GET", f"{prefix}/models", self._model_list)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> OpenAIFake:
        if self._owns_server:
            self.server.start()
        if self.delivery is not None:
            self.delivery.start()
        return self

    def _deliver(self, _req: RecordedRequest) -> Reply:
        return Reply(200, self.image, content_type="image/png")

    def stop(self) -> None:
        if self._owns_server:
            self.server.stop()
        if self.delivery is not None:
            self.delivery.stop()

    @property
    def url(self) -> str:
        """The base_url to configure (the prefix with its placeholders left to the caller)."""
        return self.server.url + self.prefix

    # -- programming ----------------------------------------------------------------------
    def queue(self, endpoint: Endpoint, *replies: Reply) -> None:
        self._queues[endpoint].extend(replies)

    def calls(self, endpoint: Endpoint) -> list[RecordedRequest]:
        suffix = {
            "generations": "/images/generations",
            "edits": "/images/edits",
            "responses": "/responses",
            "models": "/models",
        }[endpoint]
        return [r for r in self.server.calls() if suffix in r.path]

    # -- checks shared by every endpoint ------------------------------------------------------
    def _gate(self, endpoint: Endpoint, req: RecordedRequest, check: Callable[[], None]) -> Reply:
        auth = req.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not key or (self.api_key is not None and key != self.api_key):
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        if self.flavor == "openai" and "openai-organization" in req.headers:
            org = req.headers["openai-organization"]
            if not org or org != self.organization:
                return openai_error(
                    401,
                    "OpenAI-Organization header should match organization for API key",
                    code="mismatched_organization",
                )
        try:
            check()
        except Rejected as exc:
            self.rejections.append(f"{endpoint}: {exc}")
            return openai_error(400, str(exc), param=exc.param, code=exc.code)
        if self.intercept is not None:
            answer = self.intercept(endpoint, req)
            if answer is not None:
                return answer
        queue = self._queues[endpoint]
        return queue.popleft() if queue else self._ok(endpoint, req)

    def _model_rules(self, model: Any) -> str:
        """The family whose rules apply: gpt-image-2, gpt-image-1, dall-e, or open (gateway or
        local server models the fake knows nothing about)."""
        if not isinstance(model, str) or not model:
            raise Rejected(
                "you must provide a model parameter", "model", "missing_required_parameter"
            )
        name = model.split("/")[-1] if self.flavor == "gateway" else model
        if self.flavor == "openai" and (name in self.retired or name not in self.models):
            raise _NotFound(model)
        if self.flavor == "local":
            return "open"
        if GPT_IMAGE_2.match(name):
            return "gpt-image-2"
        if name.startswith(("gpt-image-1", "chatgpt-image")):
            return "gpt-image-1"
        if name.startswith("dall-e"):
            return name
        return "open"

    # -- images ----------------------------------------------------------------------------
    def _generations(self, req: RecordedRequest) -> Reply:
        def check() -> None:
            try:
                body = req.json()
            except ValueError:
                raise Rejected("We could not parse the JSON body of your request.") from None
            if not isinstance(body, dict):
                raise Rejected("The request body must be a JSON object.")
            allowed = LOCAL_GENERATE if self.flavor == "local" else GENERATE_PARAMS
            self._known_keys(body, allowed)
            family = self._model_rules(body.get("model"))
            self._image_params(body, family, edit=False)

        return self._guard("generations", req, check)

    def _edits(self, req: RecordedRequest) -> Reply:
        if self.flavor == "local" and not self.local_edits:
            return Reply(404, {"detail": "Not Found"})

        def check() -> None:
            try:
                form = req.multipart()
            except ValueError:
                raise Rejected("The edits endpoint takes multipart/form-data.") from None
            fields = {"image" if k == "image[]" else k: v for k, v in form.items()}
            allowed = LOCAL_EDIT if self.flavor == "local" else EDIT_PARAMS
            self._known_keys(fields, allowed)
            family = self._model_rules(fields.get("model"))
            images = fields.get("image")
            files = images if isinstance(images, list) else [images] if images else []
            if not files:
                raise Rejected(
                    "Missing required parameter: 'image'.", "image", "missing_required_parameter"
                )
            if len(files) > 16:
                raise Rejected("You can provide up to 16 images.", "image")
            for item in files:
                if not isinstance(item, tuple):
                    raise Rejected("'image' must be a file.", "image")
                kind = _sniff(item[1])
                if kind not in ("png", "jpeg", "webp") or len(item[1]) > MAX_IMAGE_BYTES:
                    raise Rejected(
                        "Invalid image file: each image must be a png, webp, or jpg file less than 50MB.",
                        "image",
                        "invalid_image_format",
                    )
            if "mask" in fields:
                self._mask(fields["mask"], files[0][1])
            if "input_fidelity" in fields and str(fields.get("model", "")).endswith("mini"):
                raise Rejected(
                    "input_fidelity is not supported for gpt-image-1-mini.", "input_fidelity"
                )
            self._image_params(fields, family, edit=True)

        return self._guard("edits", req, check)

    def _guard(self, endpoint: Endpoint, req: RecordedRequest, check: Callable[[], None]) -> Reply:
        try:
            return self._gate(endpoint, req, check)
        except _NotFound as exc:
            self.rejections.append(f"{endpoint}: model {exc} not found")
            return openai_error(
                404,
                f"The model `{exc}` does not exist or you do not have access to it.",
                code="model_not_found",
            )

    def _known_keys(self, body: dict[str, Any], allowed: frozenset[str]) -> None:
        for key in body:
            if key not in allowed:
                raise Rejected(f"Unknown parameter: '{key}'.", key, "unknown_parameter")

    def _image_params(self, body: dict[str, Any], family: str, *, edit: bool) -> None:
        self._prompt_and_n(body)
        for name, allowed in ENUMS.items():
            if name in body and body[name] not in allowed:
                raise Rejected(
                    f"Invalid value for '{name}': {body[name]!r}.", name, "invalid_value"
                )
        if family in ("gpt-image-1", "gpt-image-2"):
            self._gpt_image_only(body)
        self._output(body, family)
        self._size(str(body.get("size", "auto")), family)

    def _prompt_and_n(self, body: dict[str, Any]) -> None:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise Rejected("Missing required parameter: 'prompt'.", "prompt")
        if len(prompt) > 32000:
            raise Rejected("The prompt is longer than 32000 characters.", "prompt")
        n = _int(body.get("n", 1), "n")
        if not 1 <= n <= 10:
            raise Rejected(f"Invalid 'n': {n}. Must be between 1 and 10.", "n")

    def _gpt_image_only(self, body: dict[str, Any]) -> None:
        """What GPT image models refuse that DALL-E took."""
        if "response_format" in body:
            raise Rejected(
                "Unknown parameter: 'response_format'. GPT image models always return base64.",
                "response_format",
                "unknown_parameter",
            )
        if "style" in body:
            raise Rejected("Unknown parameter: 'style'.", "style", "unknown_parameter")
        quality = body.get("quality", "auto")
        if quality not in GPT_IMAGE_QUALITIES:
            raise Rejected(f"Invalid value for 'quality': {quality!r}.", "quality", "invalid_value")

    def _output(self, body: dict[str, Any], family: str) -> None:
        background = body.get("background")
        fmt = body.get("output_format", "png")
        if background == "transparent":
            if family == "gpt-image-2":
                raise Rejected(
                    "Transparent background is not supported for this model.", "background"
                )
            if fmt not in ("png", "webp"):
                raise Rejected("Transparent background requires png or webp output.", "background")
        if "output_compression" in body:
            level = _int(body["output_compression"], "output_compression")
            if fmt not in ("jpeg", "webp") or not 0 <= level <= 100:
                raise Rejected(
                    "output_compression is only supported for jpeg and webp, between 0 and 100.",
                    "output_compression",
                )

    def _size(self, size: str, family: str) -> None:
        if family == "gpt-image-1" and size not in GPT_IMAGE_1_SIZES:
            raise Rejected(
                f"Invalid value: '{size}'. Supported values are: '1024x1024', '1024x1536', "
                "'1536x1024', and 'auto'.",
                "size",
                "invalid_value",
            )
        if family != "gpt-image-2" or size == "auto":
            return
        match = re.fullmatch(r"(\d+)x(\d+)", size)
        if not match:
            raise Rejected(f"Invalid size '{size}': use WIDTHxHEIGHT or auto.", "size")
        w, h = int(match.group(1)), int(match.group(2))
        problems = []
        if w % 16 or h % 16:
            problems.append("width and height must both be divisible by 16")
        if max(w, h) > 3 * min(w, h):
            problems.append("the aspect ratio must be between 1:3 and 3:1")
        if max(w, h) > MAX_EDGE or w * h > MAX_PIXELS:
            problems.append("the maximum resolution is 3840x2160")
        if w * h < MIN_PIXELS:
            problems.append(f"the image must have at least {MIN_PIXELS} pixels")
        if problems:
            raise Rejected(f"Invalid size '{size}': " + "; ".join(problems) + ".", "size")

    def _mask(self, mask: Any, first_image: bytes) -> None:
        if not isinstance(mask, tuple):
            raise Rejected("'mask' must be a file.", "mask")
        data = mask[1]
        if _sniff(data) != "png" or len(data) > MAX_MASK_BYTES:
            raise Rejected("Invalid mask: it must be a valid PNG file, less than 4MB.", "mask")
        with Image.open(io.BytesIO(data)) as opened:
            has_alpha = opened.mode in ("RGBA", "LA") or "transparency" in opened.info
            size = opened.size
        if not has_alpha:
            raise Rejected("Invalid mask: the mask must have an alpha channel.", "mask")
        if size != image_size_of(first_image):
            raise Rejected("Invalid mask: it must have the same dimensions as the image.", "mask")

    # -- responses ---------------------------------------------------------------------------
    def _responses(self, req: RecordedRequest) -> Reply:
        def check() -> None:
            body = req.json()
            if not isinstance(body, dict):
                raise Rejected("The request body must be a JSON object.")
            self._known_keys(body, RESPONSES_PARAMS)
            if not body.get("model"):
                raise Rejected("Missing required parameter: 'model'.", "model")
            self._model_rules(body["model"])
            for number, tool in enumerate(body.get("tools") or []):
                if tool.get("type") == "image_generation":
                    self._tool(tool, f"tools[{number}]")
            for message in body.get("input") or []:
                for part in message.get("content") or [] if isinstance(message, dict) else []:
                    if part.get("type") == "input_image":
                        self._input_image(part)
            previous = body.get("previous_response_id")
            if previous is not None and previous not in self.stored_responses:
                raise Rejected(
                    f"Previous response with id '{previous}' not found.",
                    "previous_response_id",
                    "previous_response_not_found",
                )

        reply = self._guard("responses", req, check)
        answered = reply.status == 200 and isinstance(reply.body, dict) and reply.body.get("id")
        if answered and isinstance(reply.body, dict) and req.json().get("store") is not False:
            self.stored_responses.append(str(reply.body["id"]))
        return reply

    def _tool(self, tool: dict[str, Any], where: str) -> None:
        for key in tool:
            if key not in TOOL_KEYS:
                raise Rejected(
                    f"Unknown parameter: '{where}.{key}'.", f"{where}.{key}", "unknown_parameter"
                )
        for name, allowed in TOOL_ENUMS.items():
            if name in tool and tool[name] not in allowed:
                raise Rejected(
                    f"Invalid value for '{where}.{name}': {tool[name]!r}.", f"{where}.{name}"
                )
        family = self._model_rules(tool.get("model", "gpt-image-1"))
        if tool.get("background") == "transparent" and family == "gpt-image-2":
            raise Rejected(
                "Transparent background is not supported for this model.", f"{where}.background"
            )
        self._size(str(tool.get("size", "auto")), family)
        mask = tool.get("input_image_mask")
        if mask is not None:
            if not isinstance(mask, dict) or not mask or set(mask) - MASK_KEYS:
                raise Rejected(
                    f"Invalid '{where}.input_image_mask': give image_url or file_id.",
                    f"{where}.input_image_mask",
                )
            if "image_url" in mask:
                data = _data_url(mask["image_url"], f"{where}.input_image_mask.image_url")
                if _sniff(data) != "png":
                    raise Rejected("The mask must be a PNG image.", f"{where}.input_image_mask")

    def _input_image(self, part: dict[str, Any]) -> None:
        for key in part:
            if key not in INPUT_IMAGE_KEYS:
                raise Rejected(
                    f"Unknown parameter: 'input[].content[].{key}'.", key, "unknown_parameter"
                )
        for key in INPUT_IMAGE_REQUIRED:
            if key not in part:
                raise Rejected(
                    f"Missing required parameter: 'input[].content[].{key}'.",
                    key,
                    "missing_required_parameter",
                )
        if part.get("detail") not in DETAILS:
            raise Rejected(f"Invalid value for 'detail': {part.get('detail')!r}.", "detail")
        if not part.get("image_url") and not part.get("file_id"):
            raise Rejected("An input_image needs image_url or file_id.", "image_url")
        if part.get("image_url", "").startswith("data:"):
            _data_url(part["image_url"], "image_url")

    # -- models ----------------------------------------------------------------------------
    def _model(self, req: RecordedRequest) -> Reply:
        model = req.path_params["model"]

        def check() -> None:
            if self.flavor == "openai":
                self._model_rules(model)

        return self._guard("models", req, check)

    def _model_list(self, req: RecordedRequest) -> Reply:
        return self._guard("models", req, lambda: None)

    # -- healthy answers -----------------------------------------------------------------------
    def _ok(self, endpoint: Endpoint, req: RecordedRequest) -> Reply:
        headers = {"x-request-id": f"req_{endpoint}_{len(self.server.requests)}"}
        if endpoint == "models":
            model = req.path_params.get("model")
            if model is None:
                listed = [
                    {"id": m, "object": "model", "created": 1, "owned_by": "openai"}
                    for m in sorted(self.models)
                ]
                return Reply(200, {"object": "list", "data": listed}, headers=headers)
            return Reply(
                200,
                {"id": model, "object": "model", "created": 1, "owned_by": "openai"},
                headers=headers,
            )
        if endpoint == "responses":
            call: dict[str, Any] = {}
            if self.revised_prompt:
                call["revised_prompt"] = self.revised_prompt
            number = len(self.stored_responses) + 1
            answer = responses_body(
                base64.b64encode(self.image).decode(),
                response_id=f"{self.response_id}_{number}",
                usage=RESPONSES_USAGE,
                **call,
            )
            answer["tool_usage"] = {"image_gen": TOOL_USAGE}
            return Reply(200, answer, headers=headers)
        fields = req.multipart() if endpoint == "edits" else req.json()
        n = _int(fields.get("n", 1), "n")
        url = self.url_results or fields.get("response_format") == "url"
        data: list[dict[str, Any]] = []
        for i in range(n):
            if url:
                host = self.delivery.url if self.delivery is not None else self.server.url
                data.append({"url": f"{host}/img/{endpoint}-{i}.png"})
            else:
                data.append({"b64_json": base64.b64encode(self.image).decode()})
        body: dict[str, Any] = {"created": 1, "data": data}
        if self.flavor != "local":
            body.update(
                {
                    "background": fields.get("background", "opaque"),
                    "output_format": fields.get("output_format", "png"),
                    "quality": fields.get("quality", "medium"),
                    "size": fields.get("size", "1024x1024"),
                    "usage": self.usage
                    or {
                        "input_tokens": 20,
                        "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
                        "output_tokens": 272 * n,
                        "total_tokens": 20 + 272 * n,
                    },
                }
            )
        return Reply(200, body, headers=headers)


class _NotFound(Exception):
    pass


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Rejected(f"Invalid type for '{name}': expected an integer.", name) from None


def _sniff(data: bytes) -> str | None:
    """The image format as Pillow reads it (png, jpeg, webp, gif...), None if it is no image."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            return str(opened.format).lower()
    except OSError:
        return None


def _data_url(value: Any, param: str) -> bytes:
    match = re.fullmatch(r"data:image/[a-z]+;base64,([A-Za-z0-9+/=]+)", str(value))
    if not match:
        raise Rejected(f"Invalid '{param}': expected a base64 data URL.", param)
    return base64.b64decode(match.group(1))

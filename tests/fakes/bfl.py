"""A strict fake of the Black Forest Labs FLUX API: submit, region polling URL, signed delivery
URL on another host, credits.

Where its rules come from (docs.bfl.ai API reference and https://api.bfl.ai/openapi.json, read
2026-11-25; integration guidelines for statuses and limits):
- POST /v1/{model} with the key in `x-key`; per-model request fields: flux-pro-1.1 and flux-dev
  take width/height (256..1440, multiples of 16: the capability row's rule, marked verify since
  older BFL pages say 32), FLUX.2 pro/max/flex take width/height up to 2048 and input_image,
  input_image_2..8 (verify), flux-pro-1.1-ultra and flux-kontext-* take aspect_ratio between
  21:9 and 9:21, kontext takes input_image (base64 or URL); seed is an integer, safety_tolerance
  0..6, output_format jpeg|png. Unknown fields and bad values answer 422 with FastAPI's
  {"detail": [{"loc", "msg", "type"}]}. A retired endpoint answers 404 {"detail": "Not Found"}.
- The answer is {id, polling_url}; the polling URL is region-specific (here under /us1) and
  needs the key too. Statuses: Pending, Ready (result.sample = a signed URL on a delivery host
  that takes no key and expires), Error, Request Moderated, Content Moderated, Task not found.
- 402 when credits are used up, 429 past 24 active tasks per key.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from PIL import Image

from tests.fakes.server import FakeServer, RecordedRequest, Reply

_COMMON = {
    "prompt",
    "seed",
    "safety_tolerance",
    "output_format",
    "webhook_url",
    "webhook_secret",
    "prompt_upsampling",
}
MODEL_FIELDS: dict[str, set[str]] = {
    "flux-pro-1.1": _COMMON | {"width", "height", "image_prompt"},
    "flux-dev": _COMMON | {"width", "height", "image_prompt", "steps", "guidance"},
    "flux-pro-1.1-ultra": _COMMON
    | {"aspect_ratio", "raw", "image_prompt", "image_prompt_strength"},
    "flux-kontext-pro": _COMMON | {"aspect_ratio", "input_image"},
    "flux-kontext-max": _COMMON | {"aspect_ratio", "input_image"},
}
# FLUX.2: width/height up to 2048 and up to 8 reference images (input_image, input_image_2..8).
_FLUX2 = _COMMON | {"width", "height", "input_image"} | {f"input_image_{i}" for i in range(2, 9)}
MODEL_FIELDS.update({m: _FLUX2 for m in ("flux-2-pro", "flux-2-max", "flux-2-flex")})
MAX_SIDE = {m: 2048 for m in ("flux-2-pro", "flux-2-max", "flux-2-flex")}
_RATIO = re.compile(r"^(\d+):(\d+)$")


def jpeg(size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "purple").save(buf, format="JPEG")
    return buf.getvalue()


class BflFake:
    """The API host (submit, poll, credits) and a separate delivery host for result files.

    `statuses` scripts the poll answers; `rendering` keeps every task Pending for as long as
    it says True (a slow render whose end the test decides, e.g. once an attempt timed out);
    `submit_reply` answers every valid submit instead
    of accepting it, `queue_submits` answers only the next ones (a refused submit, then the
    usual acceptance); `image_size` is what the delivered image measures (FLUX.2 bills per MP)."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key  # None: any non-empty key
        self.server = FakeServer("bfl")
        self.delivery = FakeServer("bfl-delivery")
        self.statuses: list[str] = ["Pending", "Pending", "Ready"]
        self.retired: set[str] = set()
        self.expired = False
        self.rejections: list[str] = []
        self.submit_reply: Reply | None = None
        self._submit_queue: deque[Reply] = deque()
        self.image_size = (32, 24)
        self.rendering: Callable[[], bool] | None = None
        self.submitted_at: dict[str, float] = {}
        self.accepted = 0  # tasks accepted (and billed) so far; the ids are task-1, task-2...
        self.server.on("POST", "/v1/{model}", self._submit)
        self.server.on("GET", "/us1/v1/get_result", self._poll)
        self.server.on("GET", "/v1/credits", self._credits)
        self.delivery.on("GET", "/results/{task}/sample.jpeg", self._deliver)

    def start(self) -> BflFake:
        self.server.start()
        self.delivery.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.delivery.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def queue_submits(self, *replies: Reply) -> None:
        """Answer the next valid submits with these, in order (nothing is accepted or billed
        for them), then accept submits as usual."""
        self._submit_queue.extend(replies)

    def submits(self, model: str) -> list[RecordedRequest]:
        return self.server.calls(f"/v1/{model}", method="POST")

    def _unauthorized(self, req: RecordedRequest) -> Reply | None:
        key = req.headers.get("x-key")
        if key and (self.api_key is None or key == self.api_key):
            return None
        return Reply(403, {"detail": "Not authenticated"})

    def _reject(self, field: str, msg: str) -> Reply:
        self.rejections.append(f"{field}: {msg}")
        return Reply(422, {"detail": [{"loc": ["body", field], "msg": msg, "type": "value_error"}]})

    def _submit(self, req: RecordedRequest) -> Reply:
        model = req.path_params["model"]
        denied = self._unauthorized(req)
        if denied:
            return denied
        fields = MODEL_FIELDS.get(model)
        if model in self.retired or fields is None:
            return Reply(404, {"detail": "Not Found"})
        try:
            body = req.json()
        except ValueError:
            return self._reject("body", "JSON decode error")
        if not isinstance(body, dict):
            return self._reject("body", "Input should be a valid dictionary")
        checks: list[Callable[[dict[str, Any]], str | None]] = [
            lambda b: next(
                (f"{k}: Extra inputs are not permitted" for k in b if k not in fields), None
            ),
            lambda b: (
                None
                if isinstance(b.get("prompt", ""), str)
                else "prompt: Input should be a valid string"
            ),
            lambda b: (
                None
                if isinstance(b.get("seed", 0), int)
                else "seed: Input should be a valid integer"
            ),
            lambda b: (
                None
                if b.get("output_format", "jpeg") in ("jpeg", "png")
                else "output_format: Input should be 'jpeg' or 'png'"
            ),
            lambda b: (
                None
                if b.get("safety_tolerance", 2) in range(7)
                else "safety_tolerance: Input should be between 0 and 6"
            ),
            lambda b: _size(b, MAX_SIDE.get(model, 1440)),
            _aspect_ratio,
            _input_image,
        ]
        for check in checks:
            problem = check(body)
            if problem:
                field, _, msg = problem.partition(": ")
                return self._reject(field, msg)
        if self.submit_reply is not None:
            return self.submit_reply
        if self._submit_queue:
            return self._submit_queue.popleft()
        self.accepted += 1
        task = f"task-{self.accepted}"
        self.submitted_at[task] = time.monotonic()
        return Reply(
            200, {"id": task, "polling_url": f"{self.server.url}/us1/v1/get_result?id={task}"}
        )

    def _poll(self, req: RecordedRequest) -> Reply:
        denied = self._unauthorized(req)
        if denied:
            return denied
        task = (req.query.get("id") or [""])[0]
        if task in self.submitted_at and self.rendering is not None and self.rendering():
            return Reply(200, {"id": task, "status": "Pending", "result": None})
        status = self.statuses.pop(0) if self.statuses else "Ready"
        if status == "ServerError":
            return Reply(502, "bad gateway")
        body: dict[str, Any] = {"id": task, "status": status, "result": None, "progress": None}
        if status == "Ready":
            sample = (
                f"{self.delivery.url}/results/{task}/sample.jpeg?se=2026-11-26T10%3A10Z&sig=abc"
            )
            body["result"] = {"sample": sample, "prompt": "", "seed": 42, "duration": 3.1}
        if status == "Error":
            body["details"] = {"error": "Internal generation failure"}
        return Reply(200, body)

    def _deliver(self, req: RecordedRequest) -> Reply:
        if self.expired:
            return Reply(
                403,
                "<Error><Code>AuthenticationFailed</Code>Signed expiry time has expired</Error>",
                content_type="application/xml",
            )
        return Reply(200, jpeg(self.image_size), content_type="image/jpeg")

    def _credits(self, req: RecordedRequest) -> Reply:
        return self._unauthorized(req) or Reply(200, {"credits": 12.5})


def _size(body: dict[str, Any], max_side: int) -> str | None:
    for key in ("width", "height"):
        if key in body:
            value = body[key]
            if not isinstance(value, int) or not 256 <= value <= max_side or value % 16:
                return f"{key}: Input should be a multiple of 16 between 256 and {max_side}"
    return None


def _aspect_ratio(body: dict[str, Any]) -> str | None:
    if "aspect_ratio" not in body:
        return None
    match = _RATIO.match(str(body["aspect_ratio"]))
    if not match or not 9 / 21 <= int(match.group(1)) / int(match.group(2)) <= 21 / 9:
        return "aspect_ratio: Aspect ratio must be between 21:9 and 9:21"
    return None


def _input_image(body: dict[str, Any]) -> str | None:
    value = body.get("input_image")
    if value is None or str(value).startswith("https://"):
        return None
    try:
        Image.open(io.BytesIO(base64.b64decode(str(value), validate=True))).verify()
    except (binascii.Error, ValueError, OSError):
        return "input_image: Input should be a base64 image or an https URL"
    return None

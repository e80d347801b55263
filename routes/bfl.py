"""kind = "bfl": Black Forest Labs FLUX over httpx: submit, poll the returned polling URL,
download the result at once (its signed URL expires after about ten minutes).

Every submit is billed, so once a task is accepted nothing resubmits it. The accepted task goes
into the executor's TaskLedger (and from there into the run log) before polling starts; a
timeout while polling is retried by the executor as a resumed poll of the same task, and a
submit whose answer never arrived is not sent again (it may have been accepted). Other errors
after the submit are final.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import urlparse

import httpx

from routes.base import BaseRoute
from routes.capabilities import resolve_size
from routes.config import BflRoute as BflConfig
from routes.download import download_image
from routes.errors import (
    ModerationError,
    ProviderDownError,
    RouteError,
    RouteTimeoutError,
)
from routes.failures import ProviderFailure, clean_message, retry_after, route_error
from routes.media import image_pixels
from routes.model import GeneratedImage, ImageRequest, ImageResult, Usage
from routes.pacing import Stopwatch, answer_arriving
from routes.pricing import MEGAPIXEL
from routes.tasks import SubmittedTask, TaskLedger

# BFL keeps a task's result (and its signed URL) for about ten minutes after submit.
RESULT_TTL_SECONDS = 600.0
POLL_CAP_SECONDS = 4.0
PROVIDER = "Black Forest Labs"


def submit_body(request: ImageRequest, model: str, size_label: str) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": request.prompt}
    if ":" in size_label:
        body["aspect_ratio"] = size_label
    elif "x" in size_label:
        width, height = size_label.split("x")
        body["width"], body["height"] = int(width), int(height)
    if request.seed is not None:
        body["seed"] = request.seed
    if request.output_format:
        body["output_format"] = request.output_format
    if request.input_images:
        body["input_image"] = base64.b64encode(request.input_images[0].data).decode()
    return body


class BflRoute(BaseRoute):
    config: BflConfig

    def __init__(self, config: BflConfig) -> None:
        super().__init__(config)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            key = self.config.api_key.get_secret_value() if self.config.api_key else ""
            self._client = httpx.AsyncClient(
                base_url=self.config.base_url.rstrip("/"),
                headers={"x-key": key, "accept": "application/json"},
                timeout=httpx.Timeout(self.config.timeout_seconds, connect=10.0),
                event_hooks={"response": [answer_arriving]},  # routes.pacing
            )
        return self._client

    async def generate(self, request: ImageRequest) -> ImageResult:
        return await self.attempt(request, TaskLedger())

    async def attempt(self, request: ImageRequest, tasks: TaskLedger) -> ImageResult:
        size = resolve_size(request.size, self._caps).label
        t0 = time.perf_counter()  # the polling deadline
        clock = Stopwatch()
        task = tasks.task
        if task is None:
            task = await self._submit(submit_body(request, self.model, size), tasks)
        try:
            if task.expired():
                raise ProviderDownError(
                    f"{PROVIDER} no longer keeps the result of task {task.task_id} (results "
                    "expire about ten minutes after submit)",
                    retryable=False,
                )
            polling_url = task.polling_url or self._result_url(task.task_id)
            result = await self._poll(
                task.task_id, polling_url, deadline=t0 + self.config.timeout_seconds
            )
            image = await self._download(str(result.get("sample") or ""), task.task_id)
        except RouteError as exc:
            # Accepted and billed: only a timeout is worth another attempt, which resumes
            # polling this task; anything else is final.
            exc.retryable = isinstance(exc, RouteTimeoutError)
            exc.request_id = exc.request_id or task.task_id
            raise
        task_id = task.task_id
        latency = clock()
        return ImageResult(
            images=(image,),
            requested_model=self.model,
            model=self.model,
            response_id=task_id,
            latency_s=latency,
            metered=Usage(
                images=1,
                # FLUX.2 bills per megapixel of output and of input images.
                megapixels=tuple(p / MEGAPIXEL for p in [image_pixels(image.data)] if p),
                input_megapixels=tuple(
                    p / MEGAPIXEL
                    for p in (image_pixels(i.data) for i in request.input_images[:1])
                    if p
                ),
            ),
            metadata={
                "task_id": task_id,
                "seed": result.get("seed"),
                "endpoint": f"/v1/{self.model}",
            },
        )

    def _result_url(self, task_id: str) -> str:
        return f"{self.config.base_url.rstrip('/')}/v1/get_result?id={task_id}"

    async def _submit(self, body: dict[str, Any], tasks: TaskLedger) -> SubmittedTask:
        """POST the task once; the accepted task goes into the ledger before any polling."""
        tasks.submitting()
        try:
            response = await self.client.post(f"/v1/{self.model}", json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            tasks.not_accepted()  # never reached BFL: safe to send again
            raise ProviderDownError(f"could not reach {PROVIDER}: {type(exc).__name__}") from None
        except httpx.TimeoutException:
            # Sent, no answer: BFL may have accepted (and billed) it. Not sent again.
            raise RouteTimeoutError(
                "the submit was sent but no answer came back in time", retryable=False
            ) from None
        except httpx.TransportError as exc:
            raise ProviderDownError(
                f"the connection to {PROVIDER} dropped during the submit "
                f"({type(exc).__name__}); it may have been accepted, so it is not sent again",
                retryable=False,
            ) from None
        if response.status_code != 200:
            tasks.not_accepted()
            raise self._http_error(response)
        answer = response.json()
        task_id, polling_url = answer.get("id"), answer.get("polling_url")
        if not task_id:
            raise ProviderDownError(
                f"{PROVIDER} accepted the request but sent no task id", retryable=False
            )
        if not polling_url:
            polling_url = self._result_url(str(task_id))
        if urlparse(str(polling_url)).scheme not in ("https", "http"):
            raise ProviderDownError(
                f"{PROVIDER} sent a polling URL that is not http(s)", retryable=False
            )
        task = SubmittedTask(
            task_id=str(task_id),
            polling_url=str(polling_url),
            submitted_at=time.time(),
            result_ttl_s=RESULT_TTL_SECONDS,
        )
        await tasks.accepted(task)
        return task

    async def _poll(self, task_id: str, url: str, *, deadline: float) -> dict[str, Any]:
        delay = self.config.poll_interval_seconds
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, POLL_CAP_SECONDS)
            if time.perf_counter() > deadline:
                raise RouteTimeoutError(
                    f"task {task_id} not ready within {self.config.timeout_seconds:g} s",
                    request_id=task_id,
                )
            try:
                response = await self.client.get(url)
            except httpx.TransportError:
                continue  # a lost poll is polled again, never resubmitted
            if response.status_code == 429 or response.status_code >= 500:
                continue
            if response.status_code != 200:
                raise self._http_error(response, task_id)
            answer = response.json()
            status = str(answer.get("status", ""))
            if status in ("Pending", "Processing", "Queued", ""):
                continue
            if status == "Ready":
                result: dict[str, Any] = answer.get("result") or {}
                return result
            if status in ("Request Moderated", "Content Moderated"):
                where = "prompt or input" if status.startswith("Request") else "generated image"
                raise ModerationError(
                    f"{PROVIDER} moderated the {where} ({status})", request_id=task_id
                )
            if status == "Task not found":
                raise ProviderDownError(f"{PROVIDER} lost task {task_id}", request_id=task_id)
            detail = answer.get("details") or answer.get("error") or status
            raise ProviderDownError(f"{PROVIDER} failed the task: {detail}", request_id=task_id)

    async def _download(self, url: str, task_id: str) -> GeneratedImage:
        # The signed URL needs no key and lives on a delivery host: ours is never sent there.
        try:
            return await download_image(url, request_id=task_id, what="the FLUX result")
        except ProviderDownError as exc:
            if exc.status_code not in (403, 404, 410):
                raise
            raise ProviderDownError(
                f"{exc.message}; result URLs expire after about ten minutes",
                request_id=task_id,
                status_code=exc.status_code,
            ) from None

    def _http_error(self, response: httpx.Response, task_id: str | None = None) -> RouteError:
        try:
            body = response.json()
            detail = body.get("detail") if isinstance(body, dict) else body
        except ValueError:
            detail = response.text
        failure = ProviderFailure(
            status=response.status_code,
            message=_detail_text(detail),
            request_id=task_id,
            retry_after=retry_after(response.headers),
        )
        return route_error("bfl", failure, message=f"{PROVIDER}: {clean_message(failure.message)}")

    async def check_auth(self) -> str | None:
        """GET /v1/credits: free, proves the key works."""
        try:
            response = await self.client.get("/v1/credits")
        except httpx.TransportError as exc:
            raise ProviderDownError(f"could not reach {PROVIDER}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise self._http_error(response)
        return None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _detail_text(detail: Any) -> str:
    """BFL's `detail`: a sentence, or FastAPI's validation list ([{loc, msg}, ...])."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail or "")

"""kind = "self-hosted": your own GPUs behind AUTOMATIC1111/Forge, ComfyUI, or an
OpenAI-compatible local server (`flavor`).

Every result carries the deployment facts the route board asks to log (hardware, model version,
deployment hash, serving config) from the route config, completed by what the server reports;
cost is the configured hourly hardware rate times the measured latency.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import dataclasses
import json
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from routes.base import BaseRoute
from routes.capabilities import resolve_size
from routes.config import SelfHostedRoute as SelfHostedConfig
from routes.errors import (
    BadRequestError,
    ProviderDownError,
    RouteError,
    RouteTimeoutError,
    error_for_status,
    retry_after_seconds,
)
from routes.model import GeneratedImage, ImageRequest, ImageResult, Usage
from routes.openai_common import decode_images, make_client, map_openai_error, require_images

POLL_CAP_SECONDS = 2.0


def default_workflow() -> dict[str, Any]:
    path = resources.files("routes").joinpath("data/comfyui_default_workflow.json")
    text = path.read_text(encoding="utf-8")
    workflow: dict[str, Any] = json.loads(text)
    return workflow


def fill_workflow(
    workflow: dict[str, Any], request: ImageRequest, width: int, height: int, image_name: str | None
) -> dict[str, Any]:
    """Put the request into an API-format workflow: positive/negative prompts (found through the
    KSampler's inputs), seed, size and batch (EmptyLatentImage), and the input image (LoadImage)."""
    graph = copy.deepcopy(workflow)
    samplers = [n for n in graph.values() if n.get("class_type", "").startswith("KSampler")]
    if not samplers:
        raise BadRequestError("the ComfyUI workflow has no KSampler node")
    sampler = samplers[0]["inputs"]
    for key, text in (("positive", request.prompt), ("negative", request.negative_prompt or "")):
        ref = sampler.get(key)
        if isinstance(ref, list) and str(ref[0]) in graph:
            graph[str(ref[0])]["inputs"]["text"] = text
    if request.seed is not None:
        sampler["seed" if "seed" in sampler else "noise_seed"] = request.seed
    for node in graph.values():
        kind = node.get("class_type", "")
        if kind in ("EmptyLatentImage", "EmptySD3LatentImage"):
            node["inputs"].update(width=width, height=height, batch_size=request.n)
        if kind == "LoadImage" and image_name:
            node["inputs"]["image"] = image_name
    return graph


class SelfHostedRoute(BaseRoute):
    config: SelfHostedConfig

    def __init__(self, config: SelfHostedConfig) -> None:
        super().__init__(config)
        self._client: Any = None
        self._workflow: dict[str, Any] | None = None
        if config.flavor == "comfyui":
            self._workflow = self._load_workflow()
            has_loader = any(n.get("class_type") == "LoadImage" for n in self._workflow.values())
            if not has_loader:  # txt2img workflow: edits are not possible on this route
                self._caps = dataclasses.replace(
                    self._caps, edits=False, mask=False, max_input_images=0
                )

    def _load_workflow(self) -> dict[str, Any]:
        if not self.config.workflow:
            return default_workflow()
        path = Path(self.config.workflow)
        try:
            loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BadRequestError(f"cannot read ComfyUI workflow {path}: {exc}") from None
        return loaded

    @property
    def client(self) -> Any:
        if self._client is None:
            if self.config.flavor == "openai":
                key = self.config.api_key.get_secret_value() if self.config.api_key else None
                self._client = make_client(
                    api_key=key, base_url=self.config.base_url, timeout=self.config.timeout_seconds
                )
            else:
                auth = None
                if self.config.username:
                    password = (
                        self.config.password.get_secret_value() if self.config.password else ""
                    )
                    auth = httpx.BasicAuth(self.config.username, password)
                headers = {}
                if self.config.api_key:
                    headers["authorization"] = f"Bearer {self.config.api_key.get_secret_value()}"
                self._client = httpx.AsyncClient(
                    base_url=self.config.base_url.rstrip("/"),
                    auth=auth,
                    headers=headers,
                    timeout=httpx.Timeout(self.config.timeout_seconds, connect=10.0),
                )
        return self._client

    @property
    def resends_after_timeout(self) -> bool:
        # One GPU serving one job at a time: a repeat after a timeout would queue a second job
        # behind the first, which the server may still be working on.
        return False

    def describe(self) -> dict[str, Any]:
        """The deployment facts the route board asks to log for self-hosted routes."""
        facts = super().describe()
        for key in ("hardware", "model_version", "deployment_hash", "serving_config"):
            value = getattr(self.config, key)
            if value is not None:
                facts[key] = value
        return facts

    # -- generate --------------------------------------------------------------------------
    async def generate(self, request: ImageRequest) -> ImageResult:
        label = resolve_size(request.size, self._caps).label
        width, height = (int(v) for v in label.split("x")) if "x" in label else (1024, 1024)
        t0 = time.perf_counter()
        if self.config.flavor == "automatic1111":
            images, reported = await self._a1111(request, width, height)
        elif self.config.flavor == "comfyui":
            images, reported = await self._comfyui(request, width, height)
        else:
            images, reported = await self._openai(request, label)
        latency = time.perf_counter() - t0
        facts = {
            "hardware": self.config.hardware,
            "model_version": reported.pop("model_version", None) or self.config.model_version,
            "deployment_hash": reported.pop("deployment_hash", None) or self.config.deployment_hash,
            "serving_config": self.config.serving_config
            or f"{self.config.flavor} at {self.config.base_url}",
        }
        return ImageResult(
            images=images,
            requested_model=self.model,
            model=facts["model_version"],
            response_id=reported.pop("response_id", None),
            latency_s=latency,
            metered=Usage(images=len(images), seconds=latency),
            metadata={
                **{k: v for k, v in facts.items() if v},
                **reported,
                "flavor": self.config.flavor,
            },
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response: httpx.Response = await self.client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise RouteTimeoutError(f"the server did not answer {path} in time") from None
        except httpx.TransportError as exc:
            raise ProviderDownError(
                f"could not reach {self.config.base_url} ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            raise error_for_status(
                response.status_code,
                response.text,
                provider="the self-hosted server",
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
            )
        return response

    async def _a1111(
        self, request: ImageRequest, width: int, height: int
    ) -> tuple[tuple[GeneratedImage, ...], dict[str, Any]]:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or "",
            "width": width,
            "height": height,
            "batch_size": request.n,
            "seed": request.seed if request.seed is not None else -1,
        }
        path = "/sdapi/v1/txt2img"
        if request.input_images:
            path = "/sdapi/v1/img2img"
            body["init_images"] = [base64.b64encode(request.input_images[0].data).decode()]
            body["denoising_strength"] = 0.6
            if request.mask is not None:
                body["mask"] = base64.b64encode(request.mask.data).decode()
        answer = (await self._call("POST", path, json=body)).json()
        images = tuple(_b64_image(b64) for b64 in answer.get("images") or [])
        require_images(images, None)
        info: dict[str, Any] = {}
        try:
            info = json.loads(answer.get("info") or "{}")
        except ValueError:
            info = {}
        reported = {
            "model_version": info.get("sd_model_name"),
            "deployment_hash": info.get("sd_model_hash"),
            "seed": info.get("seed"),
        }
        return images, {k: v for k, v in reported.items() if v is not None}

    async def _comfyui(
        self, request: ImageRequest, width: int, height: int
    ) -> tuple[tuple[GeneratedImage, ...], dict[str, Any]]:
        assert self._workflow is not None
        image_name = None
        if request.input_images:
            source = request.input_images[0]
            files = {"image": (source.name, source.data, source.mime)}
            uploaded = (
                await self._call("POST", "/upload/image", files=files, data={"overwrite": "true"})
            ).json()
            image_name = uploaded.get("name")
        graph = fill_workflow(self._workflow, request, width, height, image_name)
        client_id = uuid.uuid4().hex
        try:
            queued = (
                await self._call("POST", "/prompt", json={"prompt": graph, "client_id": client_id})
            ).json()
        except RouteError as exc:
            if exc.status_code == 400:  # node_errors: the workflow does not fit this server
                exc.hint = "Check the workflow file and the models installed on the server"
            raise
        prompt_id = str(queued.get("prompt_id") or "")
        if not prompt_id:
            raise ProviderDownError("ComfyUI queued nothing (no prompt_id)")
        outputs = await self._wait_history(prompt_id)
        images: list[GeneratedImage] = []
        for output in outputs.values():
            for item in output.get("images", []):
                params = {
                    "filename": item.get("filename"),
                    "subfolder": item.get("subfolder", ""),
                    "type": item.get("type", "output"),
                }
                data = (await self._call("GET", "/view", params=params)).content
                images.append(GeneratedImage(data=data, mime="image/png"))
        result = tuple(images)
        require_images(result, prompt_id)
        return result, {"response_id": prompt_id}

    async def _wait_history(self, prompt_id: str) -> dict[str, Any]:
        deadline = time.perf_counter() + self.config.timeout_seconds
        delay = 0.05
        while time.perf_counter() < deadline:
            history = (await self._call("GET", f"/history/{prompt_id}")).json()
            entry = history.get(prompt_id)
            if entry:
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    messages = [
                        m for m in status.get("messages", []) if m and m[0] == "execution_error"
                    ]
                    detail = (
                        messages[0][1].get("exception_message") if messages else "execution error"
                    )
                    raise ProviderDownError(
                        f"ComfyUI failed the workflow: {detail}",
                        request_id=prompt_id,
                        retryable=False,
                    )
                outputs: dict[str, Any] = entry.get("outputs") or {}
                if outputs:
                    return outputs
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_CAP_SECONDS)
        raise RouteTimeoutError(
            f"ComfyUI prompt {prompt_id} not done in time", request_id=prompt_id
        )

    async def _openai(
        self, request: ImageRequest, label: str
    ) -> tuple[tuple[GeneratedImage, ...], dict[str, Any]]:
        import openai

        try:
            raw = await self.client.images.with_raw_response.generate(
                model=self.model,
                prompt=request.prompt,
                n=request.n,
                size=label,
                response_format="b64_json",  # local servers may default to URLs
            )
            body = raw.parse()
        except openai.OpenAIError as exc:
            raise map_openai_error(exc, provider="the local server") from None
        images = decode_images(body.data, request.output_format)
        request_id = raw.headers.get("x-request-id")
        require_images(images, request_id)
        reported = (body.model_extra or {}).get("model")
        return images, {"response_id": request_id, "model_version": reported}

    # -- probe -----------------------------------------------------------------------------
    async def check_auth(self) -> str | None:
        """A free call that proves the server is up and answering."""
        if self.config.flavor == "automatic1111":
            await self._call("GET", "/sdapi/v1/sd-models")
        elif self.config.flavor == "comfyui":
            await self._call("GET", "/system_stats")
        else:
            import openai

            try:
                await self.client.models.list()
            except openai.OpenAIError as exc:
                raise map_openai_error(exc, provider="the local server") from None
        return None

    async def aclose(self) -> None:
        if self._client is not None:
            close = getattr(self._client, "aclose", None) or self._client.close
            await close()
            self._client = None


def _b64_image(b64: str) -> GeneratedImage:
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ProviderDownError("the server sent an image that is not valid base64") from None
    return GeneratedImage(data=data, mime="image/png")

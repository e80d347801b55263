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
import io
import json
import logging
import random
import time
import uuid
from importlib import resources
from pathlib import Path, PurePosixPath
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
)
from routes.failures import ProviderFailure, clean_message, retry_after, route_error
from routes.media import EDIT_ALPHA_BELOW, decode_base64, mask_alpha
from routes.model import GeneratedImage, ImageRequest, ImageResult, InputImage, Usage
from routes.openai_common import (
    call_images_api,
    collect_images,
    make_client,
    map_openai_error,
    require_images,
)
from routes.pacing import Stopwatch, answer_arriving, crunch

log = logging.getLogger(__name__)

POLL_CAP_SECONDS = 2.0
# ComfyUI's KSampler takes any 64-bit seed; the product's seed option is 0..2**32-1, so a random
# one drawn here can be typed back as seed=N to repeat a run.
SEED_RANGE = 2**32


def default_workflow() -> dict[str, Any]:
    path = resources.files("routes").joinpath("data/comfyui_default_workflow.json")
    text = path.read_text(encoding="utf-8")
    workflow: dict[str, Any] = json.loads(text)
    return workflow


def fill_workflow(
    workflow: dict[str, Any],
    request: ImageRequest,
    width: int,
    height: int,
    *,
    seed: int,
    image_name: str | None = None,
    mask_name: str | None = None,
) -> dict[str, Any]:
    """Put the request into an API-format workflow: positive/negative prompts (found through the
    KSampler's inputs), seed, size and batch (EmptyLatentImage), the input image (LoadImage) and
    the mask (LoadImageMask, read from its alpha channel: ComfyUI masks where alpha is low, the
    same "transparent where to edit" convention as ours)."""
    graph = copy.deepcopy(workflow)
    samplers = [n for n in graph.values() if n.get("class_type", "").startswith("KSampler")]
    if not samplers:
        raise BadRequestError("the ComfyUI workflow has no KSampler node")
    sampler = samplers[0]["inputs"]
    for key, text in (("positive", request.prompt), ("negative", request.negative_prompt or "")):
        ref = sampler.get(key)
        if isinstance(ref, list) and str(ref[0]) in graph:
            graph[str(ref[0])]["inputs"]["text"] = text
    sampler["seed" if "seed" in sampler else "noise_seed"] = seed
    for node in graph.values():
        kind = node.get("class_type", "")
        if kind in ("EmptyLatentImage", "EmptySD3LatentImage"):
            node["inputs"].update(width=width, height=height, batch_size=request.n)
        if kind == "LoadImage" and image_name:
            node["inputs"]["image"] = image_name
        if kind == "LoadImageMask" and mask_name:
            node["inputs"].update(image=mask_name, channel="alpha")
    return graph


def a1111_mask(mask: InputImage) -> str:
    """Our mask (transparent where to edit) in AUTOMATIC1111's convention: a black-and-white
    image whose WHITE pixels are repainted (with inpainting_mask_invert = 0). Sent as an opaque
    grey-scale PNG so A1111 reads the colours, not the alpha (modules/processing.py
    create_binary_mask uses the alpha channel of an RGBA mask, opaque = repaint: the inverse of
    ours)."""
    alpha = mask_alpha(mask.data)
    if alpha is None:  # refused before any call (routes.capabilities); kept safe here too
        raise BadRequestError("the mask has no transparency: make the area to edit transparent")
    converted = alpha.point(lambda a: 255 if a < EDIT_ALPHA_BELOW else 0)
    buffer = io.BytesIO()
    converted.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _checkpoint_stem(name: str) -> str:
    """A checkpoint name without folder, extension or A1111's " [hash]" suffix, lower-case."""
    stem = name.split(" [")[0].strip()
    stem = PurePosixPath(stem.replace("\\", "/")).name
    for suffix in (".safetensors", ".ckpt", ".pt", ".gguf", ".bin"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem.lower()


class SelfHostedRoute(BaseRoute):
    config: SelfHostedConfig

    def __init__(self, config: SelfHostedConfig) -> None:
        super().__init__(config)
        self._client: Any = None
        self._workflow: dict[str, Any] | None = None
        declared = config.capabilities or {}
        if config.flavor == "comfyui":
            self._workflow = self._load_workflow()
            kinds = {n.get("class_type") for n in self._workflow.values()}
            if "LoadImage" not in kinds:  # txt2img workflow: edits are not possible on this route
                self._caps = dataclasses.replace(
                    self._caps, edits=False, mask=False, max_input_images=0
                )
            elif "LoadImageMask" not in kinds:  # nowhere to put a mask: refuse it before a call
                self._caps = dataclasses.replace(self._caps, mask=False)
        elif config.flavor == "openai" and not declared.get("edits"):
            # Most OpenAI-compatible local servers implement /images/generations only. Edits go
            # to /images/edits once the operator declares the server has it:
            # capabilities = { edits = true, mask = true }.
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
                    event_hooks={"response": [answer_arriving]},  # routes.pacing
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
        clock = Stopwatch()
        if self.config.flavor == "automatic1111":
            images, reported = await self._a1111(request, width, height)
        elif self.config.flavor == "comfyui":
            images, reported = await self._comfyui(request, width, height)
        else:
            images, reported = await self._openai(request, label)
        latency = clock()
        server_model = reported.pop("server_model", None)
        server_hash = reported.pop("server_model_hash", None)
        # What the operator declared is kept (the route board asks for the model version and
        # the deployment hash); what the server reports is logged beside it and only fills in
        # what was not declared.
        facts = {
            "hardware": self.config.hardware,
            "model_version": self.config.model_version or server_model,
            "deployment_hash": self.config.deployment_hash or server_hash,
            "serving_config": self.config.serving_config
            or f"{self.config.flavor} at {self.config.base_url}",
            "server_model": server_model,
            "server_model_hash": server_hash,
        }
        mismatch = self._mismatch(server_model)
        if mismatch:
            facts["model_version_mismatch"] = mismatch
            log.warning("route %s: %s", self.id, mismatch)
        return ImageResult(
            images=images,
            requested_model=self.model,
            model=server_model or self.config.model_version,
            response_id=reported.pop("response_id", None),
            latency_s=latency,
            metered=Usage(images=len(images), seconds=latency),
            metadata={
                **{k: v for k, v in facts.items() if v},
                **reported,
                "flavor": self.config.flavor,
            },
        )

    def _mismatch(self, server_model: str | None) -> str | None:
        declared = self.config.model_version
        if not declared or not server_model:
            return None
        if _checkpoint_stem(declared) == _checkpoint_stem(server_model):
            return None
        return f"the route declares model_version {declared!r} but the server ran {server_model!r}"

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
            failure = ProviderFailure(
                status=response.status_code,
                message=_error_text(response),
                retry_after=retry_after(response.headers),
            )
            raise route_error("default", failure)
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
                body["mask"] = a1111_mask(request.mask)
                body["inpainting_mask_invert"] = 0  # white = repaint, as converted
        response = await self._call("POST", path, json=body)
        # Megabytes of JSON and base64: off the event loop, after the acks in progress.
        answer = await crunch(response.json)
        encoded = answer.get("images") or []
        images = await crunch(lambda: tuple(_b64_image(b64) for b64 in encoded))
        require_images(images, None)
        info: dict[str, Any] = {}
        try:
            info = json.loads(answer.get("info") or "{}")
        except ValueError:
            info = {}
        reported = {
            "server_model": info.get("sd_model_name"),
            "server_model_hash": info.get("sd_model_hash"),
            "seed": info.get("seed"),
        }
        return images, {k: v for k, v in reported.items() if v is not None}

    async def _upload(self, image: InputImage, name: str) -> str | None:
        files = {"image": (name, image.data, image.mime)}
        form = {"overwrite": "true", "type": "input"}
        uploaded = (await self._call("POST", "/upload/image", files=files, data=form)).json()
        stored = uploaded.get("name")
        return str(stored) if stored else None

    async def _comfyui(
        self, request: ImageRequest, width: int, height: int
    ) -> tuple[tuple[GeneratedImage, ...], dict[str, Any]]:
        assert self._workflow is not None
        # Names of our own, so the mask never overwrites the image (or another run's files).
        token = uuid.uuid4().hex[:12]
        image_name = mask_name = None
        if request.input_images:
            source = request.input_images[0]
            image_name = await self._upload(source, f"imageroute-{token}-{source.name}")
            if request.mask is not None:
                mask_name = await self._upload(request.mask, f"imageroute-{token}-mask.png")
        # The default workflow's seed is a constant: without a fresh one every run of the same
        # prompt returns the same image. The seed used is logged so a run can be repeated.
        seed = request.seed if request.seed is not None else random.randrange(SEED_RANGE)
        graph = fill_workflow(
            self._workflow,
            request,
            width,
            height,
            seed=seed,
            image_name=image_name,
            mask_name=mask_name,
        )
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
        reported: dict[str, Any] = {"response_id": prompt_id, "seed": seed}
        checkpoints = [
            n["inputs"].get("ckpt_name")
            for n in graph.values()
            if n.get("class_type", "").startswith("CheckpointLoader")
        ]
        if checkpoints and checkpoints[0]:
            reported["server_model"] = str(checkpoints[0])
        return result, reported

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

        # Only the parameters every OpenAI-compatible server knows (the dall-e-2-era subset);
        # b64_json is asked for explicitly because local servers often default to URLs.
        params: dict[str, Any] = {"n": request.n, "size": label, "response_format": "b64_json"}
        try:
            raw = await call_images_api(
                self.client, model=self.model, request=request, params=params
            )
            body = await crunch(raw.parse)
        except openai.OpenAIError as exc:
            raise map_openai_error(exc, provider="the local server") from None
        request_id = raw.headers.get("x-request-id")
        key = self.config.api_key.get_secret_value() if self.config.api_key else None
        images = await collect_images(
            body.data,
            request.output_format,
            issuer=self.config.base_url,
            credentials={"Authorization": f"Bearer {key}"} if key else {},
            request_id=request_id,
        )
        require_images(images, request_id)
        reported = (body.model_extra or {}).get("model")
        return images, {"response_id": request_id, "server_model": reported}

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
        data = decode_base64(b64)
    except (binascii.Error, ValueError):
        raise ProviderDownError("the server sent an image that is not valid base64") from None
    return GeneratedImage(data=data, mime="image/png")


def _error_text(response: httpx.Response) -> str:
    """The server's own words: FastAPI's `detail` (A1111), ComfyUI's error and node errors, or
    the body as text."""
    try:
        body = response.json()
    except ValueError:
        return clean_message(response.text)
    if not isinstance(body, dict):
        return clean_message(body)
    parts: list[str] = []
    error = body.get("error")
    if isinstance(error, dict):
        parts.append(str(error.get("message") or error.get("type") or ""))
    elif error:
        parts.append(str(error))
    if body.get("detail"):
        parts.append(str(body["detail"]))
    for node in (body.get("node_errors") or {}).values():
        for item in node.get("errors", []) if isinstance(node, dict) else []:
            parts.append(str(item.get("message", "")) + " " + str(item.get("details", "")))
    return clean_message("; ".join(p.strip() for p in parts if p.strip()) or response.text)

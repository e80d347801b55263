"""Strict fakes of the self-hosted servers: AUTOMATIC1111/Forge (`--api`) and ComfyUI. (The
OpenAI-compatible flavor is tests.fakes.openai.OpenAIFake(flavor="local").)

Each accepts only what the real server accepts and reads images the way it does, so a test can
assert what the server would do with a request, e.g. which pixels a mask makes it repaint.

AUTOMATIC1111 (stable-diffusion-webui 1.10, modules/api/models.py and modules/processing.py):
- /sdapi/v1/txt2img and /img2img bodies are pydantic models generated from the fields of
  StableDiffusionProcessingTxt2Img / Img2Img plus the API's extra keys (sampler_index,
  script_name, send_images, init_images, mask, ...). The real server silently IGNORES an unknown
  key; this fake answers 422 instead, because an ignored key is a silent bug on our side.
- width and height are multiples of 8; init_images is a non-empty list of base64 images.
- The mask is read like A1111 does (processing.create_binary_mask): an RGBA mask with any
  non-opaque pixel is read from its alpha channel (alpha > 128 = repaint), anything else is
  converted to grey-scale (white = repaint); inpainting_mask_invert = 1 flips it. The pixels the
  server would repaint are kept in `repainted` for tests.
- Answers {images, parameters, info} with info a JSON string holding seed, sd_model_name and
  sd_model_hash; optional HTTP Basic auth (--api-auth) answers 401 {"detail": ...}.

ComfyUI (comfyanonymous/ComfyUI server.py, execution.py validate_prompt, nodes.py INPUT_TYPES):
- POST /prompt {"prompt": <API-format graph>, "client_id"}: every node's class_type must be a
  known node, its required inputs present, links must point at existing nodes, enum and number
  inputs in range (KSampler seed 0..2**64-1); LoadImage / LoadImageMask must name a file uploaded
  with POST /upload/image, LoadImageMask's channel is alpha|red|green|blue; a checkpoint must be
  installed. A bad graph answers 400 {"error": {...}, "node_errors": {...}} like execution.py.
- LoadImageMask with channel "alpha" masks where alpha is LOW (mask = 1 - alpha): `masked`
  keeps the pixels the sampler would repaint for tests.
- GET /history/{id} is {} while running, then {id: {outputs, status}}; GET /view serves outputs.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from tests.fakes.server import FakeServer, ProviderFake, RecordedRequest, Reply

# fmt: off
_BASE_FIELDS = {
    "prompt", "negative_prompt", "styles", "seed", "subseed", "subseed_strength",
    "seed_resize_from_h", "seed_resize_from_w", "sampler_name", "scheduler", "batch_size",
    "n_iter", "steps", "cfg_scale", "width", "height", "restore_faces", "tiling",
    "do_not_save_samples", "do_not_save_grid", "eta", "denoising_strength", "s_min_uncond",
    "s_churn", "s_tmax", "s_tmin", "s_noise", "override_settings",
    "override_settings_restore_afterwards", "refiner_checkpoint", "refiner_switch_at",
    "disable_extra_networks", "comments",
    # added by modules/api/models.py for both endpoints
    "sampler_index", "script_name", "script_args", "send_images", "save_images",
    "alwayson_scripts", "force_task_id", "infotext",
}
TXT2IMG_FIELDS = frozenset(
    _BASE_FIELDS
    | {
        "enable_hr", "firstphase_width", "firstphase_height", "hr_scale", "hr_upscaler",
        "hr_second_pass_steps", "hr_resize_x", "hr_resize_y", "hr_checkpoint_name",
        "hr_sampler_name", "hr_scheduler", "hr_prompt", "hr_negative_prompt",
    }
)
IMG2IMG_FIELDS = frozenset(
    _BASE_FIELDS
    | {
        "init_images", "resize_mode", "image_cfg_scale", "mask", "mask_blur_x", "mask_blur_y",
        "mask_blur", "mask_round", "inpainting_fill", "inpaint_full_res",
        "inpaint_full_res_padding", "inpainting_mask_invert", "initial_noise_multiplier",
        "latent_mask", "include_init_images",
    }
)
# fmt: on


def _png(color: tuple[int, int, int] = (90, 140, 90), size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _b64_image(value: Any) -> Image.Image:
    """A base64 image as A1111 decodes it (modules/api/api.py decode_base64_to_image accepts a
    data URL or bare base64)."""
    text = str(value)
    if text.startswith("data:image/"):
        text = text.split(";base64,", 1)[-1]
    try:
        data = base64.b64decode(text, validate=True)
        image = Image.open(io.BytesIO(data))
        image.load()
    except (binascii.Error, ValueError, OSError):
        raise _Invalid("Invalid encoded image") from None
    return image


class _Invalid(Exception):
    pass


def a1111_repaint_area(mask: Image.Image, invert: int) -> set[tuple[int, int]]:
    """The pixels A1111 repaints for a mask (processing.create_binary_mask, then the optional
    ImageOps.invert), as a set of (x, y)."""
    if mask.mode == "RGBA" and mask.getextrema()[-1] != (255, 255):
        binary = mask.split()[-1].convert("L").point(lambda x: 255 if x > 128 else 0)
    else:
        binary = mask.convert("L")
    width, height = binary.size
    values = binary.tobytes()  # one byte per pixel (mode L), row by row
    repaint_white = not invert
    return {
        (x, y)
        for y in range(height)
        for x in range(width)
        if (values[y * width + x] >= 128) == repaint_white
    }


class A1111Fake(ProviderFake):
    """AUTOMATIC1111/Forge started with --api (and --api-auth when `auth` is given)."""

    def __init__(self, *, auth: tuple[str, str] | None = None, prefix: str = "") -> None:
        self.server = FakeServer("automatic1111")
        self.prefix = prefix
        self.auth = auth
        self.checkpoint = "juggernautXL_v9"
        self.checkpoint_hash = "c9e3e68f89"
        self.rejections: list[str] = []
        self.repainted: set[tuple[int, int]] | None = None
        self.failure: Reply | None = None
        # Seconds a render takes before the answer (a slow GPU, a queue ahead of ours).
        self.render_seconds = 0.0
        self.server.on("POST", f"{prefix}/sdapi/v1/txt2img", self._txt2img)
        self.server.on("POST", f"{prefix}/sdapi/v1/img2img", self._img2img)
        self.server.on("GET", f"{prefix}/sdapi/v1/sd-models", self._models)

    def calls(self, endpoint: str) -> list[RecordedRequest]:
        return self.server.calls(f"{self.prefix}/sdapi/v1/{endpoint}")

    def _denied(self, req: RecordedRequest) -> Reply | None:
        if self.auth is None:
            return None
        expected = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
        if req.headers.get("authorization") == expected:
            return None
        return Reply(
            401,
            {"detail": "Incorrect username or password"},
            headers={"WWW-Authenticate": "Basic"},
        )

    def _reject(self, key: str, message: str) -> Reply:
        self.rejections.append(f"{key}: {message}")
        return Reply(
            422, {"detail": [{"loc": ["body", key], "msg": message, "type": "value_error"}]}
        )

    def _check(self, body: Any, allowed: frozenset[str]) -> Reply | None:
        if not isinstance(body, dict):
            return self._reject("body", "the body must be a JSON object")
        for key in body:
            if key not in allowed:
                return self._reject(key, "A1111 would silently ignore this field")
        for key in ("width", "height"):
            value = body.get(key, 512)
            if not isinstance(value, int) or value % 8 or not 64 <= value <= 2048:
                return self._reject(key, "must be a whole multiple of 8 between 64 and 2048")
        if not isinstance(body.get("seed", -1), int):
            return self._reject("seed", "must be an integer (-1 for random)")
        if not isinstance(body.get("batch_size", 1), int) or body.get("batch_size", 1) < 1:
            return self._reject("batch_size", "must be a positive integer")
        return None

    def _txt2img(self, req: RecordedRequest) -> Reply:
        body = req.json()
        return self._denied(req) or self._check(body, TXT2IMG_FIELDS) or self._ok(body)

    def _img2img(self, req: RecordedRequest) -> Reply:
        denied = self._denied(req)
        if denied:
            return denied
        body = req.json()
        problem = self._check(body, IMG2IMG_FIELDS)
        if problem:
            return problem
        inits = body.get("init_images")
        if not isinstance(inits, list) or not inits:
            return self._reject("init_images", "img2img needs at least one init image")
        try:
            first = _b64_image(inits[0])
            mask = _b64_image(body["mask"]) if body.get("mask") else None
        except _Invalid as exc:
            return self._reject("init_images", str(exc))
        invert = body.get("inpainting_mask_invert", 0)
        if invert not in (0, 1):
            return self._reject("inpainting_mask_invert", "must be 0 or 1")
        strength = body.get("denoising_strength", 0.75)
        if not isinstance(strength, int | float) or not 0 <= strength <= 1:
            return self._reject("denoising_strength", "must be between 0 and 1")
        if mask is not None:
            if mask.size != first.size:
                # A1111 resizes both; an edit whose mask does not match is a bug on our side.
                return self._reject("mask", "the mask is not the size of the init image")
            self.repainted = a1111_repaint_area(mask, invert)
        return self._ok(body)

    def _ok(self, body: dict[str, Any]) -> Reply:
        if self.failure is not None:
            return self.failure
        seed = body.get("seed", -1)
        seed = 1234 if seed == -1 else seed
        images = [base64.b64encode(_png()).decode() for _ in range(int(body.get("batch_size", 1)))]
        info = {
            "prompt": body.get("prompt", ""),
            "seed": seed,
            "all_seeds": [seed + i for i in range(len(images))],
            "sd_model_name": self.checkpoint,
            "sd_model_hash": self.checkpoint_hash,
            "width": body.get("width", 512),
            "height": body.get("height", 512),
        }
        return Reply(
            200,
            {"images": images, "parameters": body, "info": json.dumps(info)},
            delay=self.render_seconds,
        )

    def _models(self, req: RecordedRequest) -> Reply:
        return self._denied(req) or Reply(
            200,
            [
                {
                    "title": f"{self.checkpoint}.safetensors [{self.checkpoint_hash}]",
                    "model_name": self.checkpoint,
                    "hash": self.checkpoint_hash,
                    "sha256": None,
                    "filename": f"/models/Stable-diffusion/{self.checkpoint}.safetensors",
                    "config": None,
                }
            ],
        )


# -- ComfyUI ------------------------------------------------------------------------------------

# fmt: off
SAMPLERS = frozenset(
    {
        "euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast",
        "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde",
        "dpmpp_3m_sde", "ddim", "uni_pc", "lcm",
}
)
# fmt: on
SCHEDULERS = frozenset(
    {"normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"}
)
_LINK = "link"
# Required inputs per node (nodes.py INPUT_TYPES): a type name, an enum, or (low, high) numbers.
NODE_SPECS: dict[str, dict[str, Any]] = {
    "CheckpointLoaderSimple": {"ckpt_name": "checkpoint"},
    "CLIPTextEncode": {"text": str, "clip": _LINK},
    "EmptyLatentImage": {"width": (16, 16384), "height": (16, 16384), "batch_size": (1, 4096)},
    "EmptySD3LatentImage": {"width": (16, 16384), "height": (16, 16384), "batch_size": (1, 4096)},
    "KSampler": {
        "model": _LINK,
        "seed": (0, 2**64 - 1),
        "steps": (1, 10000),
        "cfg": (0.0, 100.0),
        "sampler_name": SAMPLERS,
        "scheduler": SCHEDULERS,
        "positive": _LINK,
        "negative": _LINK,
        "latent_image": _LINK,
        "denoise": (0.0, 1.0),
    },
    "VAEDecode": {"samples": _LINK, "vae": _LINK},
    "VAEEncode": {"pixels": _LINK, "vae": _LINK},
    "VAEEncodeForInpaint": {"pixels": _LINK, "vae": _LINK, "mask": _LINK, "grow_mask_by": (0, 64)},
    "SetLatentNoiseMask": {"samples": _LINK, "mask": _LINK},
    "LoadImage": {"image": "upload"},
    "LoadImageMask": {"image": "upload", "channel": frozenset({"alpha", "red", "green", "blue"})},
    "SaveImage": {"images": _LINK, "filename_prefix": str},
}


def comfy_masked_area(mask_png: bytes, channel: str) -> set[tuple[int, int]]:
    """The pixels ComfyUI's LoadImageMask marks (value > 0.5): for channel alpha the mask is
    1 - alpha, so transparent pixels are the ones the sampler repaints."""
    with Image.open(io.BytesIO(mask_png)) as opened:
        rgba = opened.convert("RGBA")
    band = rgba.getchannel(channel[0].upper())
    width, height = band.size
    values = band.tobytes()
    out = set()
    for y in range(height):
        for x in range(width):
            value = values[y * width + x] / 255.0
            if channel == "alpha":
                value = 1.0 - value
            if value > 0.5:
                out.add((x, y))
    return out


class ComfyFake(ProviderFake):
    """ComfyUI's HTTP API: /prompt, /history, /view, /upload/image, /system_stats."""

    def __init__(self, *, prefix: str = "", polls_before_done: int = 2) -> None:
        self.server = FakeServer("comfyui")
        self.prefix = prefix
        self.polls_before_done = polls_before_done
        self.checkpoints = {"sd_xl_base_1.0.safetensors"}
        self.uploads: dict[str, bytes] = {}
        self.prompts: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.rejections: list[str] = []
        self.masked: set[tuple[int, int]] | None = None
        self.execution_error: str | None = None
        on: Callable[[str, str, Any], None] = self.server.on
        on("POST", f"{prefix}/prompt", self._prompt)
        on("GET", f"{prefix}/history/{{pid}}", self._history)
        on("GET", f"{prefix}/view", self._view)
        on("POST", f"{prefix}/upload/image", self._upload)
        on("GET", f"{prefix}/system_stats", Reply(200, {"system": {"os": "posix"}, "devices": []}))

    def seeds(self) -> list[int]:
        """The KSampler seed of every queued prompt, in order."""
        found = []
        for graph in self.prompts.values():
            for node in graph.values():
                if node["class_type"].startswith("KSampler"):
                    found.append(int(node["inputs"].get("seed", node["inputs"].get("noise_seed"))))
        return found

    # -- handlers ----------------------------------------------------------------------------
    def _upload(self, req: RecordedRequest) -> Reply:
        form = req.multipart()
        image = form.get("image")
        if not isinstance(image, tuple):
            return Reply(400, "image is required")
        extra = set(form) - {"image", "overwrite", "type", "subfolder"}
        if extra:
            return Reply(400, f"unexpected form fields: {sorted(extra)}")
        name = image[0] or "upload.png"
        if name in self.uploads and form.get("overwrite") != "true":
            stem, _, ext = name.rpartition(".")
            name = f"{stem} (1).{ext}"
        self.uploads[name] = image[1]
        return Reply(200, {"name": name, "subfolder": form.get("subfolder", ""), "type": "input"})

    def _node_errors(self, graph: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, Any] = {}

        def bad(node_id: str, message: str, details: str) -> None:
            node = graph.get(node_id, {})
            entry = errors.setdefault(
                node_id,
                {"errors": [], "dependent_outputs": [], "class_type": node.get("class_type")},
            )
            entry["errors"].append(
                {
                    "type": "value_not_valid",
                    "message": message,
                    "details": details,
                    "extra_info": {},
                }
            )

        for node_id, node in graph.items():
            spec = NODE_SPECS.get(str(node.get("class_type")))
            if spec is None:
                bad(node_id, "Node does not exist", str(node.get("class_type")))
                continue
            inputs = node.get("inputs") or {}
            for name, rule in spec.items():
                if name not in inputs:
                    bad(node_id, "Required input is missing", name)
                    continue
                problem = self._input_problem(rule, inputs[name], graph)
                if problem:
                    bad(node_id, problem, f"{name}: {inputs[name]!r}")
        return errors

    def _input_problem(self, rule: Any, value: Any, graph: dict[str, Any]) -> str | None:
        """ComfyUI's wording for one input that fails its node's INPUT_TYPES, or None."""
        if rule == _LINK:
            linked = isinstance(value, list) and len(value) == 2 and str(value[0]) in graph
            return None if linked else "Bad linked input"
        if rule == "checkpoint":
            return None if value in self.checkpoints else "Value not in list (installed models)"
        if rule == "upload":
            return None if value in self.uploads else "Invalid image file"
        if rule is str:
            ok = isinstance(value, str)
            return None if ok else "Failed to convert an input value to a STRING value"
        if isinstance(rule, frozenset):
            return None if value in rule else "Value not in list"
        low, high = rule
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "Failed to convert an input value to a number"
        if isinstance(low, int) and not isinstance(value, int):
            return "Failed to convert an input value to a INT value"
        return None if low <= value <= high else "Value out of range"

    def _prompt(self, req: RecordedRequest) -> Reply:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), dict):
            return Reply(400, {"error": {"type": "no_prompt", "message": "No prompt provided"}})
        extra = set(body) - {"prompt", "client_id", "extra_data", "front", "number", "prompt_id"}
        if extra:
            self.rejections.append(f"unexpected keys {sorted(extra)}")
            return Reply(
                400,
                {"error": {"type": "invalid_prompt", "message": f"unknown keys {sorted(extra)}"}},
            )
        graph: dict[str, Any] = body["prompt"]
        errors = self._node_errors(graph)
        if errors:
            self.rejections.append(json.dumps(errors))
            return Reply(
                400,
                {
                    "error": {
                        "type": "prompt_outputs_failed_validation",
                        "message": "Prompt outputs failed validation",
                        "details": "",
                        "extra_info": {},
                    },
                    "node_errors": errors,
                },
            )
        for node in graph.values():
            if node["class_type"] == "LoadImageMask":
                inputs = node["inputs"]
                self.masked = comfy_masked_area(self.uploads[inputs["image"]], inputs["channel"])
        prompt_id = str(uuid.uuid4())
        self.prompts[prompt_id] = graph
        return Reply(200, {"prompt_id": prompt_id, "number": len(self.prompts), "node_errors": {}})

    def _history(self, req: RecordedRequest) -> Reply:
        pid = req.path_params["pid"]
        if pid not in self.prompts:
            return Reply(200, {})
        self.polls[pid] = self.polls.get(pid, 0) + 1
        if self.polls[pid] <= self.polls_before_done:
            return Reply(200, {})  # still running
        if self.execution_error:
            status = {
                "status_str": "error",
                "completed": False,
                "messages": [["execution_error", {"exception_message": self.execution_error}]],
            }
            return Reply(200, {pid: {"outputs": {}, "status": status}})
        outputs: dict[str, Any] = {}
        for node_id, node in self.prompts[pid].items():
            if node["class_type"] == "SaveImage":
                count = 1
                for other in self.prompts[pid].values():
                    if other["class_type"].startswith("Empty") and "batch_size" in other["inputs"]:
                        count = int(other["inputs"]["batch_size"])
                prefix = node["inputs"]["filename_prefix"]
                outputs[node_id] = {
                    "images": [
                        {"filename": f"{prefix}_{i:05d}_.png", "subfolder": "", "type": "output"}
                        for i in range(1, count + 1)
                    ]
                }
        status = {"status_str": "success", "completed": True, "messages": []}
        return Reply(200, {pid: {"prompt": [], "outputs": outputs, "status": status}})

    def _view(self, req: RecordedRequest) -> Reply:
        name = (req.query.get("filename") or [""])[0]
        kind = (req.query.get("type") or ["output"])[0]
        if kind not in ("output", "input", "temp") or not name:
            return Reply(400, "bad view request")
        return Reply(200, _png((40, 80, 160)), content_type="image/png")


def inpainting_workflow(*, mask: bool = True) -> dict[str, Any]:
    """The default workflow (routes/data/comfyui_default_workflow.json) made an image-to-image
    one: LoadImage (and LoadImageMask) into VAEEncodeForInpaint, or VAEEncode without a mask,
    whose latent the KSampler denoises."""
    path = Path(__file__).resolve().parents[2] / "routes/data/comfyui_default_workflow.json"
    workflow: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    workflow["10"] = {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}}
    if mask:
        workflow["11"] = {
            "class_type": "LoadImageMask",
            "inputs": {"image": "placeholder.png", "channel": "alpha"},
        }
        workflow["12"] = {
            "class_type": "VAEEncodeForInpaint",
            "inputs": {"pixels": ["10", 0], "vae": ["4", 2], "mask": ["11", 0], "grow_mask_by": 6},
        }
    else:
        workflow["12"] = {
            "class_type": "VAEEncode",
            "inputs": {"pixels": ["10", 0], "vae": ["4", 2]},
        }
    workflow["3"]["inputs"]["latent_image"] = ["12", 0]
    return workflow

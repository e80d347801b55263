"""Self-hosted routes: AUTOMATIC1111/Forge, ComfyUI and an OpenAI-compatible local server, each
against its strict fake through the executor (or the run service); the run log keeps the
deployment facts and the hardware-time cost."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.core.requests import build_request
from bot.core.runs import RunOrigin
from routes.base import BaseRoute
from routes.capabilities import find_unsupported
from routes.config import ConfigError, parse_config
from routes.errors import AuthError, BadRequestError, ProviderDownError
from routes.model import ImageRequest, InputImage
from routes.registry import build_route
from tests.conftest import RuntimeOpener
from tests.fakes.openai import OpenAIFake
from tests.fakes.pictures import hole_pixels, holed_mask
from tests.fakes.self_hosted import A1111Fake, ComfyFake, inpainting_workflow
from tests.fakes.server import Reply
from tests.routes.conftest import Executor


def png(color: str = "gray", size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def a1111() -> Iterator[A1111Fake]:
    fake = A1111Fake(auth=("sd", "pw-1")).start()
    yield fake
    fake.stop()


@pytest.fixture
def comfy() -> Iterator[ComfyFake]:
    fake = ComfyFake().start()
    yield fake
    fake.stop()


def make(url: str, flavor: str, extra: str = "") -> Any:
    text = (
        f'[routes.gpu]\nkind = "self-hosted"\nflavor = "{flavor}"\nbase_url = "{url}"\n'
        'hardware = "1x NVIDIA L40S"\nmodel_version = "sdxl-base-1.0"\n'
        'deployment_hash = "sha256:cafe"\nhourly_usd = 3.6\n' + extra
    )
    route = build_route(parse_config(text, "t.toml").routes["gpu"])
    assert isinstance(route, BaseRoute)
    return route


A1111_AUTH = 'username = "sd"\npassword = "pw-1"\n'


async def test_automatic1111_txt2img(a1111: A1111Fake, executor: Executor) -> None:
    route = make(a1111.url, "automatic1111", A1111_AUTH)
    result = await executor(route).generate(
        ImageRequest(prompt="a castle", negative_prompt="blurry", size="832x1216", seed=1234)
    )
    assert not a1111.rejections
    [call] = a1111.calls("txt2img")
    assert call.json() == {
        "prompt": "a castle",
        "negative_prompt": "blurry",
        "width": 832,
        "height": 1216,
        "batch_size": 1,
        "seed": 1234,
    }
    assert call.headers["authorization"] == "Basic " + base64.b64encode(b"sd:pw-1").decode()
    assert result.model == "juggernautXL_v9"  # what the server ran
    assert result.metadata["hardware"] == "1x NVIDIA L40S"
    assert result.cost.basis == "hardware_time"
    assert result.cost.usd == pytest.approx(3.6 * result.latency_s / 3600, rel=0.01, abs=1e-6)


async def test_automatic1111_repaints_exactly_the_transparent_area(
    a1111: A1111Fake, executor: Executor
) -> None:
    """Our masks are transparent where to edit; A1111 repaints where its mask is white (or,
    for an RGBA mask, where alpha is high). The mask goes out converted, so the area A1111
    repaints is the hole, not everything around it."""
    route = make(a1111.url, "automatic1111", A1111_AUTH)
    request = ImageRequest(
        prompt="a window in the wall",
        input_images=(InputImage(png("red")),),
        mask=InputImage(holed_mask()),
    )
    assert not find_unsupported(request, route.capabilities())
    await executor(route).generate(request)
    assert not a1111.rejections
    body = a1111.calls("img2img")[0].json()
    assert base64.b64decode(body["init_images"][0]) == png("red")
    assert body["prompt"] == "a window in the wall"
    assert body["inpainting_mask_invert"] == 0
    assert a1111.repainted == hole_pixels()


async def test_a_declared_model_version_is_kept_and_a_mismatch_flagged(
    a1111: A1111Fake, executor: Executor
) -> None:
    route = make(a1111.url, "automatic1111", A1111_AUTH)
    result = await executor(route).generate(ImageRequest(prompt="a bridge"))
    # The operator declared sdxl-base-1.0; the server ran juggernautXL_v9: both are logged.
    assert result.metadata["model_version"] == "sdxl-base-1.0"
    assert result.metadata["deployment_hash"] == "sha256:cafe"
    assert result.metadata["server_model"] == "juggernautXL_v9"
    assert result.metadata["server_model_hash"] == "c9e3e68f89"
    assert "sdxl-base-1.0" in result.metadata["model_version_mismatch"]

    a1111.checkpoint = "sdxl-base-1.0"
    matching = make(a1111.url, "automatic1111", A1111_AUTH)
    result = await executor(matching).generate(ImageRequest(prompt="a bridge"))
    assert "model_version_mismatch" not in result.metadata


def edit_workflow(tmp_path: Path, *, mask: bool) -> Path:
    path = tmp_path / ("inpaint.json" if mask else "img2img.json")
    path.write_text(json.dumps(inpainting_workflow(mask=mask)))
    return path


async def test_comfyui_fills_the_workflow_polls_history_and_views(
    comfy: ComfyFake, executor: Executor
) -> None:
    route = make(comfy.url, "comfyui")
    result = await executor(route).generate(
        ImageRequest(prompt="a lighthouse", negative_prompt="text", size="768x1344", seed=99, n=2)
    )
    assert not comfy.rejections
    [graph] = comfy.prompts.values()
    assert graph["6"]["inputs"]["text"] == "a lighthouse"
    assert graph["7"]["inputs"]["text"] == "text"
    assert graph["3"]["inputs"]["seed"] == 99
    assert graph["5"]["inputs"] == {"width": 768, "height": 1344, "batch_size": 2}
    assert len(comfy.server.calls("/view")) == 2 and len(result.images) == 2
    assert result.metadata["seed"] == 99
    assert result.model == "sd_xl_base_1.0.safetensors"  # the checkpoint the workflow loads
    # The default workflow is txt2img only: edits are refused before any call.
    assert route.capabilities().edits is False


async def test_comfyui_draws_a_new_seed_per_run_and_logs_it(
    comfy: ComfyFake, executor: Executor
) -> None:
    route = make(comfy.url, "comfyui")
    routed = executor(route)
    first = await routed.generate(ImageRequest(prompt="a lighthouse"))
    second = await routed.generate(ImageRequest(prompt="a lighthouse"))
    seeds = comfy.seeds()
    assert len(seeds) == 2 and seeds[0] != seeds[1]
    assert [first.metadata["seed"], second.metadata["seed"]] == seeds


async def test_comfyui_edit_uploads_image_and_mask_into_an_inpainting_workflow(
    comfy: ComfyFake, tmp_path: Path, executor: Executor
) -> None:
    route = make(comfy.url, "comfyui", f'workflow = "{edit_workflow(tmp_path, mask=True)}"\n')
    assert route.capabilities().edits and route.capabilities().mask
    request = ImageRequest(
        prompt="repaint the middle",
        input_images=(InputImage(png("red"), name="src.png"),),
        mask=InputImage(holed_mask(), name="mask.png"),
    )
    await executor(route).generate(request)
    assert not comfy.rejections
    [graph] = comfy.prompts.values()
    image_name, mask_name = graph["10"]["inputs"]["image"], graph["11"]["inputs"]["image"]
    assert image_name.endswith("-src.png") and mask_name != image_name
    assert comfy.uploads[image_name] == png("red")
    assert comfy.uploads[mask_name] == holed_mask()  # ComfyUI reads the alpha channel itself
    assert graph["11"]["inputs"]["channel"] == "alpha"
    assert comfy.masked == hole_pixels()


async def test_comfyui_without_a_mask_node_refuses_masks(comfy: ComfyFake, tmp_path: Path) -> None:
    route = make(comfy.url, "comfyui", f'workflow = "{edit_workflow(tmp_path, mask=False)}"\n')
    caps = route.capabilities()
    assert caps.edits and not caps.mask
    request = ImageRequest(
        prompt="x", input_images=(InputImage(png()),), mask=InputImage(holed_mask())
    )
    assert [p.feature for p in find_unsupported(request, caps)] == ["mask"]
    await route.aclose()


async def test_comfyui_errors(comfy: ComfyFake, executor: Executor) -> None:
    comfy.execution_error = "CUDA out of memory"
    route = make(comfy.url, "comfyui")
    with pytest.raises(ProviderDownError, match="CUDA out of memory"):
        await executor(route).generate(ImageRequest(prompt="x"))
    comfy.execution_error = None
    comfy.checkpoints = {"flux1-dev.safetensors"}  # the workflow's checkpoint is not installed
    with pytest.raises(BadRequestError) as info:
        await executor(route).generate(ImageRequest(prompt="x"))
    assert "installed models" in info.value.message
    assert "workflow" in info.value.sentence()


async def test_openai_compatible_local_server(executor: Executor) -> None:
    fake = OpenAIFake(flavor="local").start()
    try:
        text = f'[routes.gpu]\nkind = "self-hosted"\nflavor = "openai"\nbase_url = "{fake.url}"\n'
        route = build_route(parse_config(text, "t.toml").routes["gpu"])
        fake.queue(
            "generations",
            Reply(
                200,
                {
                    "created": 1,
                    "data": [{"b64_json": base64.b64encode(png()).decode()}],
                    "model": "flux-schnell-q8",
                },
            ),
        )
        result = await executor(route).generate(ImageRequest(prompt="a kite", size="512x512"))
        assert not fake.rejections
        sent = fake.calls("generations")[0].json()
        assert sent["response_format"] == "b64_json" and sent["size"] == "512x512"
        assert result.model == "flux-schnell-q8"
        # Most local servers have no /images/edits: an edit is refused before any call.
        edit = ImageRequest(prompt="x", input_images=(InputImage(png()),))
        assert [p.feature for p in find_unsupported(edit, route.capabilities())] == ["edits"]
    finally:
        fake.stop()


async def test_openai_compatible_local_server_that_declares_edits(executor: Executor) -> None:
    fake = OpenAIFake(flavor="local", local_edits=True).start()
    try:
        text = (
            f'[routes.gpu]\nkind = "self-hosted"\nflavor = "openai"\nbase_url = "{fake.url}"\n'
            "capabilities = { edits = true, mask = true, max_input_images = 1 }\n"
        )
        route = build_route(parse_config(text, "t.toml").routes["gpu"])
        request = ImageRequest(
            prompt="a window in the wall",
            input_images=(InputImage(png("red"), name="wall.png"),),
            mask=InputImage(holed_mask(), name="mask.png"),
        )
        assert not find_unsupported(request, route.capabilities())
        await executor(route).generate(request)
        assert not fake.rejections
        form = fake.calls("edits")[0].multipart()
        image = form["image[]"] if "image[]" in form else form["image"]
        first = image[0] if isinstance(image, list) else image
        assert first[1] == png("red") and form["mask"][1] == holed_mask()
        assert form["prompt"] == "a window in the wall" and form["response_format"] == "b64_json"
    finally:
        fake.stop()


async def test_unreachable_server_and_auth(a1111: A1111Fake, executor: Executor) -> None:
    route = make(a1111.url, "automatic1111")  # no credentials: the server wants Basic auth
    probe = await executor(route).probe("auth")
    assert not probe.ok and probe.error_class == AuthError.error_class
    dead = make("http://127.0.0.1:9", "automatic1111")
    with pytest.raises(ProviderDownError, match="could not reach"):
        await executor(dead).generate(ImageRequest(prompt="x"))


async def test_run_log_keeps_the_deployment_facts(
    a1111: A1111Fake, open_runtime: RuntimeOpener
) -> None:
    runtime = open_runtime(
        f'[routes.gpu]\nkind = "self-hosted"\nflavor = "automatic1111"\nbase_url = "{a1111.url}"\n'
        + A1111_AUTH
        + 'hardware = "2x RTX 4090"\nserving_config = "forge, 30 steps, dpmpp_2m"\nhourly_usd = 1.2\n'
        'billing_owner = "ML platform"\n'
        "[routes.declared]\n"
        f'kind = "self-hosted"\nflavor = "automatic1111"\nbase_url = "{a1111.url}"\n'
        + A1111_AUTH
        + 'model_version = "sdxl-base-1.0"\ndeployment_hash = "sha256:cafe"\n'
    )
    outcome = await runtime.runs.run(
        "gpu", build_request({"prompt": "a bridge"}), RunOrigin(source="cli")
    )
    run = outcome.run
    assert run.status == "succeeded"
    # Nothing declared: the server's checkpoint fills the model version and hash.
    assert (run.hardware, run.model_version, run.deployment_hash, run.serving_config) == (
        "2x RTX 4090",
        "juggernautXL_v9",
        "c9e3e68f89",
        "forge, 30 steps, dpmpp_2m",
    )
    assert run.cost_basis == "hardware_time" and run.cost_usd is not None
    assert run.billing_owner == "ML platform"

    declared = (
        await runtime.runs.run(
            "declared", build_request({"prompt": "a bridge"}), RunOrigin(source="cli")
        )
    ).run
    # Declared facts are kept; the server's are logged beside them, the mismatch flagged.
    assert (declared.model_version, declared.deployment_hash) == ("sdxl-base-1.0", "sha256:cafe")
    assert declared.model_reported == "juggernautXL_v9"
    meta = declared.provider_metadata or {}
    assert meta["server_model"] == "juggernautXL_v9"
    assert "model_version_mismatch" in meta


def test_unreadable_workflow_is_a_config_error(comfy: ComfyFake) -> None:
    with pytest.raises(ConfigError, match="route 'gpu': cannot read ComfyUI workflow"):
        make(comfy.url, "comfyui", 'workflow = "/nonexistent/flow.json"\n')

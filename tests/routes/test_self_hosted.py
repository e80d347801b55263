"""Self-hosted routes: AUTOMATIC1111/Forge, ComfyUI and an OpenAI-compatible local server, each
against a loopback fake; the run log keeps the deployment facts and the hardware-time cost."""

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
from routes.config import ConfigError, parse_config
from routes.errors import AuthError, BadRequestError, ProviderDownError
from routes.executor import RouteExecutor
from routes.model import ImageRequest, InputImage
from routes.registry import build_route
from tests.conftest import RuntimeOpener
from tests.fakes.server import FakeServer, RecordedRequest, Reply


def png(color: str = "gray") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, format="PNG")
    return buf.getvalue()


B64 = base64.b64encode(png()).decode()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer("gpu-box").start()
    yield fake
    fake.stop()


def make(server: FakeServer, flavor: str, extra: str = "") -> Any:
    text = (
        f'[routes.gpu]\nkind = "self-hosted"\nflavor = "{flavor}"\nbase_url = "{server.url}"\n'
        'hardware = "1x NVIDIA L40S"\nmodel_version = "sdxl-base-1.0"\n'
        'deployment_hash = "sha256:cafe"\nhourly_usd = 3.6\n' + extra
    )
    return build_route(parse_config(text, "t.toml").routes["gpu"])


A1111_INFO = json.dumps(
    {"seed": 1234, "sd_model_name": "juggernautXL_v9", "sd_model_hash": "c9e3e68f89"}
)


async def test_automatic1111_txt2img_and_img2img(server: FakeServer) -> None:
    server.on(
        "POST",
        "/sdapi/v1/txt2img",
        Reply(200, {"images": [B64], "parameters": {}, "info": A1111_INFO}),
    )
    server.on(
        "POST",
        "/sdapi/v1/img2img",
        Reply(200, {"images": [B64], "parameters": {}, "info": A1111_INFO}),
    )
    route = make(server, "automatic1111", 'username = "sd"\npassword = "pw-1"\n')
    result = await RouteExecutor(route).generate(
        ImageRequest(prompt="a castle", negative_prompt="blurry", size="832x1216", seed=1234)
    )
    [call] = server.calls("/sdapi/v1/txt2img")
    assert call.json() == {
        "prompt": "a castle",
        "negative_prompt": "blurry",
        "width": 832,
        "height": 1216,
        "batch_size": 1,
        "seed": 1234,
    }
    assert call.headers["authorization"] == "Basic " + base64.b64encode(b"sd:pw-1").decode()
    assert result.model == "juggernautXL_v9"  # what the server reports wins over config
    assert result.metadata["deployment_hash"] == "c9e3e68f89"
    assert result.metadata["hardware"] == "1x NVIDIA L40S"
    assert result.cost.basis == "hardware_time"
    assert result.cost.usd == pytest.approx(3.6 * result.latency_s / 3600, rel=0.01, abs=1e-6)

    await route.generate(
        ImageRequest(
            prompt="night", input_images=(InputImage(png("red")),), mask=InputImage(png("black"))
        )
    )
    body = server.calls("/sdapi/v1/img2img")[0].json()
    assert base64.b64decode(body["init_images"][0]) == png("red")
    assert base64.b64decode(body["mask"]) == png("black")
    await route.aclose()


class Comfy:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.polls = 0
        self.fail = False
        server.on("POST", "/prompt", self._prompt)
        server.on("GET", "/history/{pid}", self._history)
        server.on("GET", "/view", Reply(200, png("green"), content_type="image/png"))
        server.on(
            "POST",
            "/upload/image",
            Reply(200, {"name": "upload_1.png", "subfolder": "", "type": "input"}),
        )
        server.on("GET", "/system_stats", Reply(200, {"system": {"os": "posix"}, "devices": []}))

    def _prompt(self, req: RecordedRequest) -> Reply:
        return Reply(200, {"prompt_id": "p-1", "number": 1, "node_errors": {}})

    def _history(self, req: RecordedRequest) -> Reply:
        self.polls += 1
        if self.polls < 3:
            return Reply(200, {})  # still running
        if self.fail:
            return Reply(
                200,
                {
                    "p-1": {
                        "outputs": {},
                        "status": {
                            "status_str": "error",
                            "completed": False,
                            "messages": [
                                ["execution_error", {"exception_message": "CUDA out of memory"}]
                            ],
                        },
                    }
                },
            )
        return Reply(
            200,
            {
                "p-1": {
                    "outputs": {
                        "9": {
                            "images": [
                                {
                                    "filename": "imageroute_00001_.png",
                                    "subfolder": "",
                                    "type": "output",
                                }
                            ]
                        }
                    },
                    "status": {"status_str": "success", "completed": True},
                }
            },
        )


async def test_comfyui_fills_the_workflow_polls_history_and_views(server: FakeServer) -> None:
    comfy = Comfy(server)
    route = make(server, "comfyui")
    result = await route.generate(
        ImageRequest(prompt="a lighthouse", negative_prompt="text", size="768x1344", seed=99, n=2)
    )
    graph = server.calls("/prompt")[0].json()["prompt"]
    assert graph["6"]["inputs"]["text"] == "a lighthouse"
    assert graph["7"]["inputs"]["text"] == "text"
    assert graph["3"]["inputs"]["seed"] == 99
    assert graph["5"]["inputs"] == {"width": 768, "height": 1344, "batch_size": 2}
    [view] = server.calls("/view")
    assert view.query == {
        "filename": ["imageroute_00001_.png"],
        "subfolder": [""],
        "type": ["output"],
    }
    assert comfy.polls == 3
    assert result.response_id == "p-1" and result.images[0].data == png("green")
    assert result.model == "sdxl-base-1.0"
    # The default workflow is txt2img only: edits are refused before any call.
    assert route.capabilities().edits is False
    await route.aclose()


async def test_comfyui_edit_uploads_the_image_into_a_loadimage_workflow(
    server: FakeServer, tmp_path: Path
) -> None:
    Comfy(server)
    workflow = json.loads((Path("routes/data/comfyui_default_workflow.json")).read_text())
    workflow["10"] = {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}}
    path = tmp_path / "edit.json"
    path.write_text(json.dumps(workflow))
    route = make(server, "comfyui", f'workflow = "{path}"\n')
    assert route.capabilities().edits is True
    await route.generate(
        ImageRequest(prompt="repaint", input_images=(InputImage(png("red"), name="src.png"),))
    )
    upload = server.calls("/upload/image")[0].multipart()
    assert upload["image"][0] == "src.png" and upload["image"][1] == png("red")
    assert server.calls("/prompt")[0].json()["prompt"]["10"]["inputs"]["image"] == "upload_1.png"
    await route.aclose()


async def test_comfyui_errors(server: FakeServer) -> None:
    comfy = Comfy(server)
    comfy.fail = True
    route = make(server, "comfyui")
    with pytest.raises(ProviderDownError, match="CUDA out of memory"):
        await route.generate(ImageRequest(prompt="x"))
    server.on(
        "POST",
        "/prompt",
        Reply(
            400,
            {
                "error": {"type": "prompt_outputs_failed_validation"},
                "node_errors": {"4": {"errors": [{"message": "ckpt not found"}]}},
            },
        ),
    )
    with pytest.raises(BadRequestError) as info:
        await route.generate(ImageRequest(prompt="x"))
    assert "workflow" in info.value.sentence()
    await route.aclose()


async def test_openai_compatible_local_server(server: FakeServer) -> None:
    server.on(
        "POST",
        "/v1/images/generations",
        Reply(200, {"created": 1, "data": [{"b64_json": B64}], "model": "flux-schnell-q8"}),
    )
    text = f'[routes.gpu]\nkind = "self-hosted"\nflavor = "openai"\nbase_url = "{server.url}/v1"\n'
    route = build_route(parse_config(text, "t.toml").routes["gpu"])
    result = await route.generate(ImageRequest(prompt="a kite", size="512x512"))
    sent = server.calls("/v1/images/generations")[0].json()
    assert sent["response_format"] == "b64_json" and sent["size"] == "512x512"
    assert result.model == "flux-schnell-q8"
    await route.aclose()


async def test_unreachable_server_and_auth(server: FakeServer) -> None:
    route = make(server, "automatic1111")
    server.on("GET", "/sdapi/v1/sd-models", Reply(401, "Not authenticated"))
    probe = await route.probe("auth")
    assert not probe.ok and probe.error_class == AuthError.error_class
    await route.aclose()
    dead = build_route(
        parse_config(
            '[routes.gpu]\nkind = "self-hosted"\nflavor = "automatic1111"\nbase_url = "http://127.0.0.1:9"\n',
            "t",
        ).routes["gpu"]
    )
    with pytest.raises(ProviderDownError, match="could not reach"):
        await dead.generate(ImageRequest(prompt="x"))
    await dead.aclose()


async def test_run_log_keeps_the_deployment_facts(
    server: FakeServer, open_runtime: RuntimeOpener
) -> None:
    server.on("POST", "/sdapi/v1/txt2img", Reply(200, {"images": [B64], "info": A1111_INFO}))
    runtime = open_runtime(
        f'[routes.gpu]\nkind = "self-hosted"\nflavor = "automatic1111"\nbase_url = "{server.url}"\n'
        'hardware = "2x RTX 4090"\nserving_config = "forge, 30 steps, dpmpp_2m"\nhourly_usd = 1.2\n'
        'billing_owner = "ML platform"\n'
    )
    outcome = await runtime.runs.run(
        "gpu", build_request({"prompt": "a bridge"}), RunOrigin(source="cli")
    )
    run = outcome.run
    assert run.status == "succeeded"
    assert (run.hardware, run.model_version, run.deployment_hash, run.serving_config) == (
        "2x RTX 4090",
        "juggernautXL_v9",
        "c9e3e68f89",
        "forge, 30 steps, dpmpp_2m",
    )
    assert run.cost_basis == "hardware_time" and run.cost_usd is not None
    assert run.billing_owner == "ML platform"


def test_unreadable_workflow_is_a_config_error(server: FakeServer) -> None:
    with pytest.raises(ConfigError, match="route 'gpu': cannot read ComfyUI workflow"):
        make(server, "comfyui", 'workflow = "/nonexistent/flow.json"\n')

"""Every route kind end to end: one signed `/imagegen route=all` compares all nine kinds (each
adapter on its real client against a loopback fake), and `imageroute gen` runs on each."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from bot.cli import app as cli_app
from tests.bot.conftest import CHANNEL
from tests.fakes.google import API_KEY as GOOGLE_KEY
from tests.fakes.google import SDK_ENV_VARS, GoogleFake
from tests.fakes.openai import responses_body
from tests.fakes.server import FakeServer, Reply
from tests.fakes.slack import Upload

KINDS = (
    "demo",
    "openai",
    "openai-responses",
    "gateway",
    "google-imagen",
    "gemini-image",
    "bfl",
    "bedrock",
    "self-hosted",
)


def png_b64() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "orange").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


class Providers:
    """One loopback server for the HTTP providers (path prefixes per kind), one for Bedrock
    (boto3 wants a bare endpoint), and the Google fake."""

    def __init__(self) -> None:
        self.http = FakeServer("providers").start()
        self.bedrock = FakeServer("bedrock").start()
        self.google = GoogleFake().start()
        images = Reply(
            200,
            {"created": 1, "data": [{"b64_json": png_b64()}]},
            headers={"x-request-id": "req_1"},
        )
        self.http.on("POST", "/oa/v1/images/generations", images)
        self.http.on("POST", "/gw/v1/images/generations", images)
        self.http.on("POST", "/oa/v1/responses", Reply(200, responses_body(png_b64())))
        self.http.on(
            "POST",
            "/bfl/v1/{model}",
            lambda _r: Reply(
                200, {"id": "task-1", "polling_url": f"{self.http.url}/bfl/poll?id=task-1"}
            ),
        )
        self.http.on(
            "GET",
            "/bfl/poll",
            lambda _r: Reply(
                200,
                {
                    "id": "task-1",
                    "status": "Ready",
                    "result": {"sample": f"{self.http.url}/bfl/img.png"},
                },
            ),
        )
        self.http.on(
            "GET", "/bfl/img.png", Reply(200, base64.b64decode(png_b64()), content_type="image/png")
        )
        self.http.on(
            "POST", "/sd/sdapi/v1/txt2img", Reply(200, {"images": [png_b64()], "info": "{}"})
        )
        self.bedrock.on(
            "POST",
            "/model/{model}/invoke",
            Reply(200, {"images": [png_b64()]}, headers={"x-amzn-RequestId": "br-1"}),
        )

    def config(self) -> str:
        h, g, b = self.http.url, self.google.url, self.bedrock.url
        return f"""
[limits]
max_routes_per_comparison = 10

[routes.demo]
kind = "demo"

[routes.openai]
kind = "openai"
api_key = "sk-x"
base_url = "{h}/oa/v1"

[routes.assistant]
kind = "openai-responses"
api_key = "sk-x"
base_url = "{h}/oa/v1"

[routes.gateway]
kind = "gateway"
api_key = "gw-x"
base_url = "{h}/gw/v1"
underlying_model = "gpt-image-2"

[routes.imagen]
kind = "google-imagen"
model = "imagen-4.0-generate-001"
allow_retired_model = true
api_key = "{GOOGLE_KEY}"
base_url = "{g}"

[routes.gemini]
kind = "gemini-image"
api_key = "{GOOGLE_KEY}"
base_url = "{g}"

[routes.flux]
kind = "bfl"
api_key = "bfl-x"
base_url = "{h}/bfl"
poll_interval_seconds = 0.01

[routes.nova]
kind = "bedrock"
region = "us-east-1"
endpoint_url = "{b}"

[routes.gpu]
kind = "self-hosted"
flavor = "automatic1111"
base_url = "{h}/sd"
hardware = "1x L4"
hourly_usd = 0.8
"""

    def stop(self) -> None:
        self.http.stop()
        self.bedrock.stop()
        self.google.stop()


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Providers]:
    for name in SDK_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    p = Providers()
    yield p
    p.stop()


async def test_imagegen_compares_all_nine_kinds(providers: Providers, start_harness) -> None:
    h = await start_harness(providers.config())
    assert sorted(r.kind for r in h.runtime.routes.values()) == sorted(KINDS)
    response = await h.command("/imagegen", 'route=all prompt="a lighthouse at dusk"')
    assert response.status_code == 200
    await h.settle(60)
    [parent] = h.slack.top_level(CHANNEL)
    uploads = [m for m in h.slack.thread(CHANNEL, parent.ts) if isinstance(m, Upload)]
    runs = h.runtime.runlog.recent(20)
    assert len(runs) == 9
    failed = [(r.route_id, r.error_message) for r in runs if r.status != "succeeded"]
    assert not failed
    assert len(uploads) == 9 + 1  # one image per route, then the montage
    assert {r.route_kind for r in runs} == set(KINDS)
    gateway = next(r for r in runs if r.route_id == "gateway")
    assert gateway.underlying_model == "gpt-image-2"
    gpu = next(r for r in runs if r.route_id == "gpu")
    assert gpu.hardware == "1x L4" and gpu.cost_basis == "hardware_time"


def test_gen_runs_on_every_kind(
    providers: Providers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "imageroute.toml").write_text(providers.config())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/gen.db")
    monkeypatch.setenv("ASSET_STORE", f"file://{tmp_path}/assets")
    for route in (
        "demo",
        "openai",
        "assistant",
        "gateway",
        "imagen",
        "gemini",
        "flux",
        "nova",
        "gpu",
    ):
        result = CliRunner().invoke(cli_app, ["gen", "--route", route, "a lighthouse"])
        assert result.exit_code == 0, (route, result.output)
        assert f"{route}: 1 image(s)" in result.output

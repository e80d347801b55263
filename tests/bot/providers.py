"""Every provider's strict fake on loopback at once, and routes files that use them: one route
of each of the nine kinds, plus variants (Kontext, FLUX1.1, SD3.5 Large, a ComfyUI inpainting
workflow, an OpenAI-compatible server that declares edits)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routes.config import ROUTE_KINDS
from tests.fakes.bedrock import BedrockFake
from tests.fakes.bfl import BflFake
from tests.fakes.google import API_KEY as GOOGLE_KEY
from tests.fakes.google import SDK_ENV_VARS, GoogleFake
from tests.fakes.openai import OpenAIFake
from tests.fakes.self_hosted import A1111Fake, ComfyFake, inpainting_workflow

KINDS = ROUTE_KINDS


def provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer settings reach the SDKs; boto3 signs with fake keys and no endpoint."""
    for name in (*SDK_ENV_VARS, "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake")


class Providers:
    def __init__(self) -> None:
        self.openai = OpenAIFake(api_key="sk-x").start()
        self.gateway = OpenAIFake(flavor="gateway", api_key="gw-x").start()
        self.local = OpenAIFake(flavor="local", local_edits=True).start()
        self.google = GoogleFake().start()
        self.bfl = BflFake(api_key="bfl-x").start()
        self.bedrock = BedrockFake().start()
        self.a1111 = A1111Fake().start()
        self.comfy = ComfyFake(polls_before_done=1).start()

    def stop(self) -> None:
        for fake in (
            self.openai,
            self.gateway,
            self.local,
            self.google,
            self.bfl,
            self.bedrock,
            self.a1111,
            self.comfy,
        ):
            fake.stop()

    def rejections(self) -> list[str]:
        """Every request a fake refused, so a test can assert none was."""
        return [
            *self.openai.rejections,
            *self.gateway.rejections,
            *self.local.rejections,
            *self.google.rejections,
            *self.bfl.rejections,
            *self.bedrock.rejections,
            *self.a1111.rejections,
            *self.comfy.rejections,
        ]

    def config(self) -> str:
        """One route of each kind."""
        return f"""
[limits]
max_routes_per_comparison = 20

[routes.demo]
kind = "demo"

[routes.openai]
kind = "openai"
api_key = "sk-x"
base_url = "{self.openai.url}"

[routes.assistant]
kind = "openai-responses"
api_key = "sk-x"
base_url = "{self.openai.url}"

[routes.gateway]
kind = "gateway"
model = "openai/gpt-image-2"
api_key = "gw-x"
base_url = "{self.gateway.url}"
underlying_model = "gpt-image-2"

[routes.imagen]
kind = "google-imagen"
model = "imagen-4.0-generate-001"
allow_retired_model = true
api_key = "{GOOGLE_KEY}"
base_url = "{self.google.url}"

[routes.gemini]
kind = "gemini-image"
api_key = "{GOOGLE_KEY}"
base_url = "{self.google.url}"

[routes.flux]
kind = "bfl"
api_key = "bfl-x"
base_url = "{self.bfl.url}"
poll_interval_seconds = 0.01

[routes.nova]
kind = "bedrock"
model = "amazon.nova-canvas-v1:0"
allow_retired_model = true
region = "us-east-1"
endpoint_url = "{self.bedrock.url}"

[routes.gpu]
kind = "self-hosted"
flavor = "automatic1111"
base_url = "{self.a1111.url}"
hardware = "1x L4"
hourly_usd = 0.8
"""

    def edit_config(self, tmp_path: Path) -> str:
        """Every kind plus the variants of bfl, bedrock and self-hosted (Kontext, FLUX1.1
        which cannot edit, SD3.5 Large, ComfyUI inpainting, a local server with edits)."""
        workflow = tmp_path / "inpaint.json"
        workflow.write_text(json.dumps(inpainting_workflow()), encoding="utf-8")
        return (
            self.config()
            + f"""
[routes.kontext]
kind = "bfl"
model = "flux-kontext-pro"
api_key = "bfl-x"
base_url = "{self.bfl.url}"
poll_interval_seconds = 0.01

[routes.flux11]
kind = "bfl"
model = "flux-pro-1.1"
api_key = "bfl-x"
base_url = "{self.bfl.url}"
poll_interval_seconds = 0.01

[routes.sd35]
kind = "bedrock"
model = "stability.sd3-5-large-v1:0"
region = "us-east-1"
endpoint_url = "{self.bedrock.url}"

[routes.comfy]
kind = "self-hosted"
flavor = "comfyui"
base_url = "{self.comfy.url}"
workflow = "{workflow}"

[routes.local]
kind = "self-hosted"
flavor = "openai"
base_url = "{self.local.url}"
capabilities = {{ edits = true, mask = true, max_input_images = 1 }}
"""
        )

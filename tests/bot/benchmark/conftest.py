"""Shared fakes for the benchmark tests: a fake OpenAI server (Images API and Responses) and a
route config with a demo, a Responses and a priced Images route (runtimes: tests/conftest.py)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.fakes.openai import responses_body
from tests.fakes.server import FakeServer, RecordedRequest, Reply


def png() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), "navy").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


class OpenAIFake:
    def __init__(self) -> None:
        self.server = FakeServer("openai").start()
        self.server.on("POST", "/v1/images/generations", self._images)
        self.server.on("POST", "/v1/images/edits", self._images)
        self.server.on("POST", "/v1/responses", self._responses)

    def _images(self, req: RecordedRequest) -> Reply:
        return Reply(
            200, {"created": 1, "data": [{"b64_json": png()}]}, headers={"x-request-id": "req_img"}
        )

    def _responses(self, req: RecordedRequest) -> Reply:
        return Reply(
            200,
            responses_body(png(), response_id="resp_bench", revised_prompt="a plan, then an image"),
        )


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake()
    yield fake
    fake.server.stop()


def config(fake: OpenAIFake, slow: float = 0.0) -> str:
    return f"""
[routes.demo]
kind = "demo"
delay_seconds = {slow}
billing_owner = "Demo team"
route_owner = "built-in demo"

[routes.assistant]
kind = "openai-responses"
api_key = "sk-bench"
base_url = "{fake.server.url}/v1"
billing_owner = "Acme OpenAI org"
route_owner = "OpenAI Responses"

[routes.paid]
kind = "openai"
api_key = "sk-bench"
base_url = "{fake.server.url}/v1"
billing_owner = "Acme OpenAI org"
pricing = {{ basis = "per_image", usd_per_image = 0.04 }}
"""

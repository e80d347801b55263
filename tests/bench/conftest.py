"""Shared fakes for the benchmark tests: a fake OpenAI server (Images API and Responses), a
route config with a demo, a Responses and a priced Images route, and a Runtime opener."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from bot.runtime import Runtime
from bot.settings import Settings
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


@pytest.fixture
async def open_runtime(tmp_path: Path) -> AsyncIterator[Callable[[str], Runtime]]:
    opened: list[Runtime] = []

    def make(text: str) -> Runtime:
        (tmp_path / "imageroute.toml").write_text(text, encoding="utf-8")
        runtime = Runtime.open(
            Settings(
                _env_file=None,  # type: ignore[call-arg]
                imageroute_config=tmp_path / "imageroute.toml",
                database_url=f"sqlite:///{tmp_path}/bench.db",
                asset_store=f"file://{tmp_path}/assets",
            ),
            role="bench",
        )
        opened.append(runtime)
        return runtime

    yield make
    for runtime in opened:
        await runtime.aclose()

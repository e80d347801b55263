"""Shared fakes for the benchmark tests: the strict OpenAI fake (Images API and Responses) and a
route config with a demo, a Responses and a priced Images route (runtimes: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai import OpenAIFake


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    """The strict OpenAI fake every benchmark route talks to."""
    fake = OpenAIFake().start()
    fake.revised_prompt = "a plan, then an image"
    fake.response_id = "resp_bench"
    yield fake
    fake.stop()


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

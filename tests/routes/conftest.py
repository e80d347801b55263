"""Fixtures the route tests share: the Google fake (one server per module, reset per test),
route builders on it, a strict OpenAI fake, and the product's RouteExecutor around a route with
its backoff recorded instead of slept (every route test calls a route the way the product
does: through the executor, never an adapter method directly)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter

from routes.base import BaseRoute, Route
from routes.config import RouteConfig
from routes.executor import RouteExecutor
from routes.registry import build_route
from tests.fakes.bedrock import BedrockFake
from tests.fakes.google import API_KEY, SDK_ENV_VARS, GoogleFake
from tests.fakes.openai import OpenAIFake


class Backoff:
    """Stands in for asyncio.sleep in the executor: records each backoff, waits for none (the
    provider calls themselves, timeouts and polls, take their real time)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


Executor = Callable[[Route], RouteExecutor]


@pytest.fixture
def backoff() -> Backoff:
    return Backoff()


@pytest.fixture
async def executor(backoff: Backoff) -> AsyncIterator[Executor]:
    """`executor(route)`: the RouteExecutor the product wraps every route in (retries,
    timeout, concurrency, pricing), with `backoff` recording its waits; routes closed after."""
    made: list[RouteExecutor] = []

    def wrap(route: Route) -> RouteExecutor:
        made.append(RouteExecutor(route, sleep=backoff))
        return made[-1]

    yield wrap
    for item in made:
        await item.route.aclose()


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own Google or OpenAI settings never reach a test (nor a test a provider)."""
    for name in (*SDK_ENV_VARS, "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def google_server() -> Iterator[GoogleFake]:
    fake = GoogleFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def google(google_server: GoogleFake) -> GoogleFake:
    google_server.reset()
    return google_server


GoogleRoutes = Callable[..., Any]
_configs: TypeAdapter[RouteConfig] = TypeAdapter(RouteConfig)


@pytest.fixture
async def google_routes(google: GoogleFake) -> AsyncIterator[GoogleRoutes]:
    """`google_routes(kind, **keys)` builds a Google route on the fake: express mode (api_key)
    unless a project is given; closed after the test."""
    built: list[BaseRoute] = []

    def make(kind: str, **keys: Any) -> Any:
        imagen = kind == "google-imagen"
        # The models these tests were written against (the kinds' defaults follow the
        # lifecycle data: Imagen has none since its shutdown).
        table: dict[str, Any] = {
            "id": "imagen" if imagen else "gemini",
            "kind": kind,
            "model": "imagen-4.0-ultra-generate-001" if imagen else "gemini-2.5-flash-image",
            "base_url": google.url,
        }
        if "project" not in keys:
            table["api_key"] = API_KEY
        table.update(keys)
        route = build_route(_configs.validate_python(table))
        assert isinstance(route, BaseRoute)
        built.append(route)
        return route

    yield make
    for route in built:
        await route.aclose()


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[BedrockFake]:
    """The Bedrock runtime fake, with AWS credentials boto3 signs with (and no profile or
    endpoint of the developer's)."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "AKIAFAKE",
        "AWS_SECRET_ACCESS_KEY": "fake-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    fake = BedrockFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(api_key="sk-wire-1").start()
    yield fake
    fake.stop()

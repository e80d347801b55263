"""Cancelling a call in flight (a shutdown, Ctrl-C, an interrupted benchmark): the executor
lets the cancellation through as it came, not as a failed attempt to retry, and the run
service closes the run as interrupted rather than leaving it pending."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bot.core.runs import RunOrigin
from routes.config import parse_config
from routes.model import ImageRequest
from routes.registry import build_route
from tests.conftest import RuntimeOpener
from tests.fakes.self_hosted import A1111Fake
from tests.routes.conftest import Executor


@pytest.fixture
def gpu() -> Iterator[A1111Fake]:
    fake = A1111Fake().start()
    fake.render_seconds = 30.0  # busy: the call is still in flight when it is cancelled
    yield fake
    fake.stop()


def gpu_config(gpu: A1111Fake) -> str:
    return (
        f'[routes.gpu]\nkind = "self-hosted"\nflavor = "automatic1111"\nbase_url = "{gpu.url}"\n'
        "timeout_seconds = 60\nretries = 2\n"
    )


async def test_a_call_cancelled_in_flight_raises_the_cancellation(
    gpu: A1111Fake, executor: Executor
) -> None:
    routed = executor(build_route(parse_config(gpu_config(gpu), "r.toml").routes["gpu"]))
    seen: list[object] = []
    call = asyncio.create_task(
        routed.generate(ImageRequest(prompt="a castle"), on_attempt=seen.append)
    )
    await gpu.server.received(lambda: gpu.calls("txt2img"))
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert len(gpu.calls("txt2img")) == 1 and seen == []  # not an attempt, not retried


async def test_a_run_cancelled_in_flight_is_closed_as_interrupted(
    gpu: A1111Fake, open_runtime: RuntimeOpener
) -> None:
    runtime = open_runtime(gpu_config(gpu))
    run = asyncio.create_task(
        runtime.runs.run("gpu", ImageRequest(prompt="a castle"), RunOrigin(source="cli"))
    )
    await gpu.server.received(lambda: gpu.calls("txt2img"))
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    [row] = runtime.runlog.recent(1)
    assert row.status == "interrupted" and row.error_class == "interrupted"
    assert row.finished_at is not None

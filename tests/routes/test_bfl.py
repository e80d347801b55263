"""Black Forest Labs FLUX: submit, poll the returned URL, download, every status, over httpx
against a loopback fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from routes.config import parse_config
from routes.errors import (
    AuthError,
    BadRequestError,
    ModerationError,
    ProviderDownError,
    QuotaError,
    RateLimitError,
    RouteError,
    RouteTimeoutError,
)
from routes.model import ImageRequest, InputImage
from routes.registry import build_route
from tests.fakes.bfl import BflFake, jpeg
from tests.fakes.server import Reply
from tests.routes.conftest import Executor


@pytest.fixture
def bfl() -> Iterator[BflFake]:
    fake = BflFake().start()
    yield fake
    fake.stop()


def make(bfl: BflFake, model: str = "flux-pro-1.1", extra: str = "", timeout: float = 5) -> Any:
    text = (
        f'[routes.flux]\nkind = "bfl"\nmodel = "{model}"\napi_key = "bfl-key-123"\n'
        f'base_url = "{bfl.url}"\npoll_interval_seconds = 0.01\ntimeout_seconds = {timeout}\n'
        f"{extra}"
    )
    config = parse_config(text, "t.toml")
    return build_route(config.routes["flux"])


async def test_submit_poll_and_download(bfl: BflFake, executor: Executor) -> None:
    route = make(bfl)
    result = await executor(route).generate(
        ImageRequest(prompt="a fox in snow", size="1024x768", seed=7, output_format="jpeg")
    )
    [submit] = bfl.submits("flux-pro-1.1")
    assert submit.headers["x-key"] == "bfl-key-123"
    assert submit.json() == {
        "prompt": "a fox in snow",
        "width": 1024,
        "height": 768,
        "seed": 7,
        "output_format": "jpeg",
    }
    polls = bfl.server.calls("/us1/v1/get_result")
    assert len(polls) == 3 and all(p.headers["x-key"] == "bfl-key-123" for p in polls)
    [download] = bfl.delivery.calls("/results/task-1/sample.jpeg")
    assert "x-key" not in download.headers  # the key never goes to the delivery host
    assert not bfl.rejections
    assert result.images[0].mime == "image/jpeg" and result.images[0].data == jpeg()
    assert result.response_id == "task-1"
    assert result.metadata["seed"] == 42
    assert result.cost.usd == pytest.approx(0.04) and result.cost.basis == "list_price"


async def test_kontext_edit_sends_the_input_image_and_aspect_ratio(
    bfl: BflFake, executor: Executor
) -> None:
    route = make(bfl, "flux-kontext-pro")
    source = jpeg()
    await executor(route).generate(
        ImageRequest(
            prompt="make it night", size="16:9", input_images=(InputImage(source, "image/jpeg"),)
        )
    )
    body = bfl.submits("flux-kontext-pro")[0].json()
    assert body["aspect_ratio"] == "16:9" and "width" not in body
    import base64

    assert base64.b64decode(body["input_image"]) == source


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("Request Moderated", ModerationError),
        ("Content Moderated", ModerationError),
        ("Error", ProviderDownError),
        ("Task not found", ProviderDownError),
    ],
)
async def test_every_final_status_is_mapped_and_never_resubmitted(
    bfl: BflFake, status: str, error: type[RouteError], executor: Executor
) -> None:
    bfl.statuses = ["Pending", status]
    routed = executor(make(bfl, extra="retries = 3\n"))
    with pytest.raises(error) as info:
        await routed.generate(ImageRequest(prompt="x"))
    assert info.value.request_id == "task-1"
    assert len(bfl.submits("flux-pro-1.1")) == 1  # billed once, submitted once


async def test_lost_polls_are_polled_again(bfl: BflFake, executor: Executor) -> None:
    bfl.statuses = ["Pending", "ServerError", "ServerError", "Ready"]
    route = make(bfl)
    result = await executor(route).generate(ImageRequest(prompt="x"))
    assert result.images and len(bfl.submits("flux-pro-1.1")) == 1


async def test_expired_result_url_is_a_clear_final_error(bfl: BflFake, executor: Executor) -> None:
    bfl.expired = True
    routed = executor(make(bfl, extra="retries = 2\n"))
    with pytest.raises(ProviderDownError, match="expire"):
        await routed.generate(ImageRequest(prompt="x"))
    assert len(bfl.submits("flux-pro-1.1")) == 1


@pytest.mark.parametrize(
    ("reply", "error", "retried"),
    [
        (
            Reply(429, {"detail": "Too many active tasks"}, headers={"retry-after": "0"}),
            RateLimitError,
            True,
        ),
        (Reply(402, {"detail": "Insufficient credits"}), QuotaError, False),
        (Reply(401, {"detail": "Invalid key"}), AuthError, False),
        (
            Reply(422, {"detail": [{"loc": ["body", "width"], "msg": "must be multiple of 16"}]}),
            BadRequestError,
            False,
        ),
        (Reply(503, "unavailable"), ProviderDownError, True),
    ],
)
async def test_submit_errors(
    bfl: BflFake, reply: Reply, error: type[RouteError], retried: bool, executor: Executor
) -> None:
    bfl.submit_reply = reply
    routed = executor(make(bfl, extra="retries = 1\n"))
    with pytest.raises(error) as info:
        await routed.generate(ImageRequest(prompt="x"))
    assert len(bfl.submits("flux-pro-1.1")) == (2 if retried else 1)
    assert "bfl-key-123" not in str(info.value.sentence())
    if reply.status == 402:
        assert "credits" in info.value.sentence()


async def test_a_task_pending_past_the_timeout_fails_as_a_timeout_naming_it(
    bfl: BflFake, executor: Executor
) -> None:
    bfl.statuses = ["Pending"] * 1000
    routed = executor(make(bfl, extra="retries = 1\n", timeout=0.2))
    with pytest.raises(RouteTimeoutError) as info:
        await routed.generate(ImageRequest(prompt="x"))
    error = info.value
    assert error.error_class == "timeout" and error.request_id == "task-1"
    assert "0.2 s" in error.sentence() and "task task-1" in error.sentence()
    # Both attempts polled the one task; it was submitted (and billed) once.
    assert len(bfl.submits("flux-pro-1.1")) == 1 and len(error.attempts) == 2
    assert {p.query["id"][0] for p in bfl.server.calls("/us1/v1/get_result")} == {"task-1"}


async def test_auth_probe_uses_the_free_credits_call(bfl: BflFake, executor: Executor) -> None:
    route = make(bfl)
    probe = await executor(route).probe("auth")
    assert probe.ok and bfl.server.calls("/v1/credits")
    assert not bfl.submits("flux-pro-1.1")

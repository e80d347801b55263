"""Heavy steps await the hook whoever started the work set, in the tasks it starts too; a run
finishes in its lane once its answer starts arriving."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from collections.abc import Callable

import pytest
from PIL import Image

from routes.config import parse_config
from routes.errors import RouteError
from routes.model import ImageRequest, ImageResult
from routes.pacing import Lane, crunch, give_way, giving_way_to, leave_turn, take_turn
from routes.registry import build_route
from tests.fakes.google import GoogleFake, b64, gemini_body
from tests.fakes.openai import OpenAIFake, openai_error
from tests.fakes.server import Reply
from tests.routes.conftest import Executor, GoogleRoutes


async def test_without_a_hook_a_heavy_step_goes_at_once() -> None:
    await asyncio.wait_for(give_way(), 0.1)


async def test_a_heavy_step_waits_for_the_hook_in_the_tasks_the_work_starts() -> None:
    gate = asyncio.Event()
    order: list[str] = []

    async def hook() -> None:
        order.append("asked")
        await gate.wait()

    async def step(name: str) -> None:
        await give_way()
        order.append(name)

    with giving_way_to(hook):
        work = asyncio.ensure_future(asyncio.gather(step("a"), step("b")))
    await asyncio.sleep(0.05)
    assert order == ["asked", "asked"]  # both steps wait, each in its own task
    gate.set()
    await work
    assert sorted(order[2:]) == ["a", "b"]
    # Outside the block nothing is set any more.
    await asyncio.wait_for(give_way(), 0.1)


async def test_heavy_steps_run_off_the_loop_one_at_a_time_after_giving_way() -> None:
    loop_thread = threading.get_ident()
    started: list[str] = []
    release_first = threading.Event()

    def heavy(name: str) -> int:
        started.append(name)
        if name == "first":
            release_first.wait(5)
        return threading.get_ident()

    gate = asyncio.Event()

    async def hook() -> None:
        await gate.wait()

    with giving_way_to(hook):
        first = asyncio.ensure_future(crunch(heavy, "first"))
        second = asyncio.ensure_future(crunch(heavy, "second"))
    await asyncio.sleep(0.05)
    assert started == []  # both give way first
    gate.set()
    await asyncio.sleep(0.1)
    assert started == ["first"]  # one at a time: the second waits for the first
    release_first.set()
    threads = await asyncio.gather(first, second)
    assert started == ["first", "second"]
    assert loop_thread not in threads


async def test_latency_leaves_out_the_turns_the_bot_made_the_call_wait(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    waits: list[float] = []

    async def hook() -> None:
        waits.append(time.perf_counter())
        await asyncio.sleep(0.2)

    text = f'[routes.o]\nkind = "openai"\napi_key = "sk-wire-1"\nbase_url = "{openai_fake.url}"\n'
    route = build_route(parse_config(text, "t.toml").routes["o"])
    t0 = time.perf_counter()
    with giving_way_to(hook):
        result = await executor(route).generate(ImageRequest(prompt="a red kite"))
    wall = time.perf_counter() - t0
    assert result.images and not openai_fake.rejections
    # The answer's body read and its parse each waited for their turn.
    assert len(waits) >= 2
    provider = wall - 0.2 * len(waits)
    assert 0 < result.latency_s <= provider + 0.05
    assert 0 < result.attempts[-1].latency_s <= provider + 0.05


class Holder:
    """Holds the only place of a one-wide lane until told to go."""

    def __init__(self, lane: Lane | None = None) -> None:
        self.lane = lane or Lane(1)
        self.held, self.done = asyncio.Event(), asyncio.Event()

    async def hold(self) -> None:
        with self.lane.turn():
            await take_turn()
            self.held.set()
            await self.done.wait()

    async def __aenter__(self) -> Holder:
        self.task = asyncio.ensure_future(self.hold())
        await self.held.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.done.set()
        await self.task


async def answered(calls: Callable[[], int], n: int) -> None:
    for _ in range(100):
        if calls() >= n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the fake saw {calls()} calls, not {n}")


async def test_a_lane_lets_as_many_runs_finish_at_once_as_it_is_wide() -> None:
    order: list[str] = []

    async def second(lane: Lane) -> None:
        with lane.turn():
            await take_turn()
            order.append("second")

    async with Holder() as holder:
        waiting = asyncio.ensure_future(second(holder.lane))
        await asyncio.sleep(0.05)
        assert order == [] and holder.lane.finishing == 1  # waits for the holder's place
    await asyncio.wait_for(waiting, 1)
    assert order == ["second"] and holder.lane.finishing == 0


async def test_a_turn_is_one_place_given_back_by_a_failed_attempt_and_gone_after_its_block() -> (
    None
):
    lane = Lane(2)
    await asyncio.wait_for(take_turn(), 0.1)  # no lane set: at once
    left_inside: list[asyncio.Task[None]] = []
    with lane.turn() as turn:
        await take_turn()
        await take_turn()
        assert turn.held and lane.finishing == 1  # taken twice, one place
        leave_turn()
        assert lane.finishing == 0
        await take_turn()
        # A task started inside (a run's checks) keeps the turn in its context.
        gate = asyncio.Event()

        async def later() -> None:
            await gate.wait()
            await take_turn()

        left_inside.append(asyncio.ensure_future(later()))
    assert lane.finishing == 0  # left at the end of the block
    gate.set()
    await asyncio.wait_for(left_inside[0], 0.5)
    assert lane.finishing == 0  # taking it after its block takes nothing
    with pytest.raises(ValueError):
        Lane(0)


async def test_places_are_handed_over_in_arrival_order_and_a_cancelled_waiter_leaves_the_line() -> (
    None
):
    lane = Lane(1)
    order: list[int] = []

    async def finish(n: int, gate: asyncio.Event) -> None:
        with lane.turn():
            await take_turn()
            order.append(n)
            await gate.wait()

    gates = [asyncio.Event() for _ in range(4)]
    tasks = [asyncio.ensure_future(finish(n, gates[n])) for n in range(4)]
    await asyncio.sleep(0.05)
    assert order == [0] and lane.finishing == 1
    tasks[1].cancel()  # gives up its turn while waiting (the process stops, say)
    await asyncio.sleep(0)
    for gate in gates:
        gate.set()
        await asyncio.sleep(0.02)
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == [0, 2, 3] and lane.finishing == 0


async def test_a_run_waits_at_most_the_lanes_patience_then_goes_on_without_a_place() -> None:
    lane = Lane(1, patience=0.1)
    async with Holder(lane) as holder:
        with lane.turn() as turn:
            t0 = time.perf_counter()
            await take_turn()
            waited = time.perf_counter() - t0
            assert 0.1 <= waited < 0.5 and not turn.held
            t0 = time.perf_counter()
            await take_turn()  # no second wait for the same finish
            assert time.perf_counter() - t0 < 0.05
        assert lane.finishing == 1  # the holder's place only
    assert lane.finishing == 0 and holder.task.done()


def noisy_png(side: int = 256) -> bytes:
    """An image whose answer is well past the size read without a turn."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG")
    return out.getvalue()


async def test_a_large_answer_is_read_once_the_run_has_its_turn_and_a_small_one_at_once(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    openai_fake.image = noisy_png()
    text = f'[routes.o]\nkind = "openai"\napi_key = "sk-wire-1"\nbase_url = "{openai_fake.url}"\n'
    route = executor(build_route(parse_config(text, "t.toml").routes["o"]))

    async def run(lane: Lane) -> tuple[float, ImageResult | RouteError]:
        t0 = time.perf_counter()
        with lane.turn():
            try:
                result: ImageResult | RouteError = await route.generate(
                    ImageRequest(prompt="a red kite")
                )
            except RouteError as exc:
                result = exc
        return time.perf_counter() - t0, result

    async with Holder() as holder:
        # An error answer is small: read at once, the lane full or not.
        openai_fake.queue("generations", openai_error(400, "Invalid prompt", code="invalid_value"))
        _, refused = await asyncio.wait_for(run(holder.lane), 5)
        assert isinstance(refused, RouteError) and refused.status_code == 400
        assert holder.lane.finishing == 1
        # The image answer arrives, and waits for the place the holder has.
        running = asyncio.ensure_future(run(holder.lane))
        await answered(lambda: len(openai_fake.calls("generations")), 2)
        await asyncio.sleep(0.3)
        assert not running.done()
    wall, result = await asyncio.wait_for(running, 5)
    assert isinstance(result, ImageResult), result
    assert result.images[0].data == openai_fake.image
    assert holder.lane.finishing == 0
    # The provider's latency leaves out the wait for the place.
    assert wall >= 0.3 and result.latency_s < wall - 0.25


async def test_the_openai_clients_read_a_large_answer_only_in_the_runs_turn(
    openai_fake: OpenAIFake,
) -> None:
    """The body itself waits (not only its parse): the raw answer is not read meanwhile."""
    openai_fake.image = noisy_png()
    text = f'[routes.o]\nkind = "openai"\napi_key = "sk-wire-1"\nbase_url = "{openai_fake.url}"\n'
    route = build_route(parse_config(text, "t.toml").routes["o"])
    client = route.client  # type: ignore[attr-defined]
    async with Holder() as holder:

        async def read() -> bytes:
            with holder.lane.turn():
                raw = await client.images.with_raw_response.generate(
                    model="gpt-image-2", prompt="a red kite"
                )
                return bytes(raw.http_response.content)

        reading = asyncio.ensure_future(read())
        await answered(lambda: len(openai_fake.calls("generations")), 1)
        await asyncio.sleep(0.3)
        assert not reading.done()
    assert len(await asyncio.wait_for(reading, 5)) > 64 * 1024
    await route.aclose()


async def test_a_google_answer_waits_for_the_runs_turn(
    google: GoogleFake, google_routes: GoogleRoutes, executor: Executor
) -> None:
    image = noisy_png()
    body = gemini_body()
    body["candidates"][0]["content"]["parts"][1]["inlineData"]["data"] = b64(image)
    google.queue("generate", Reply(200, body))
    route = executor(google_routes("gemini-image"))
    async with Holder() as holder:

        async def run() -> bytes:
            with holder.lane.turn():
                result = await route.generate(ImageRequest(prompt="a red kite"))
            return result.images[0].data

        running = asyncio.ensure_future(run())
        await answered(lambda: len(google.calls("generate")), 1)
        await asyncio.sleep(0.3)
        assert not running.done()
    assert await asyncio.wait_for(running, 5) == image

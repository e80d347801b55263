"""Heavy steps await the hook whoever started the work set, in the tasks it starts too."""

from __future__ import annotations

import asyncio
import threading
import time

from routes.config import parse_config
from routes.model import ImageRequest
from routes.pacing import crunch, give_way, giving_way_to
from routes.registry import build_route
from tests.fakes.openai import OpenAIFake
from tests.routes.conftest import Executor


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

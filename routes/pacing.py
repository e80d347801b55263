"""Heavy steps of background work give way to more urgent work in the same process.

A bot answers Slack on the same event loop (and under the same GIL) that runs its runs. The
work a run does when its provider answers (parsing megabytes of JSON, decoding the image,
storing and uploading it) would otherwise land in the middle of a burst of commands and delay
every acknowledgement in it. Whoever starts background work sets a hook for it with
`giving_way_to` (the Slack bot: wait until the requests being answered are answered, bounded);
the heavy steps call `give_way()` first. Work started anywhere else (the CLI, probes) has no
hook and never waits. The hook is a context variable, so it follows the work into the tasks it
starts and belongs to the bot that started it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

Hook = Callable[[], Awaitable[None]]
P = ParamSpec("P")
T = TypeVar("T")

_hook: ContextVar[Hook | None] = ContextVar("imageroute_give_way", default=None)


async def give_way() -> None:
    """Before a heavy step: wait as long as whoever started this work asks (at once if no one
    set a hook)."""
    hook = _hook.get()
    if hook is not None:
        await hook()


@contextmanager
def giving_way_to(hook: Hook) -> Iterator[None]:
    """Heavy steps of the work run inside this block (and of the tasks it starts) await
    `hook` first."""
    token = _hook.set(hook)
    try:
        yield
    finally:
        _hook.reset(token)


# CPU-heavy steps (megabytes of JSON or base64) run one at a time, in a thread of their own.
# Each holds the GIL for milliseconds at a stretch; run side by side in the default pool, a batch
# of answers arriving together kept several threads asking for the GIL at once, and the event
# loop, answering Slack, waited its turn behind each of them.
_CRUNCHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crunch")


async def crunch(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`func(*args, **kwargs)`, CPU-heavy, off the event loop: after giving way, one at a time."""
    await give_way()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_CRUNCHER, functools.partial(func, *args, **kwargs))

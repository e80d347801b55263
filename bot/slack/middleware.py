"""Bolt middleware that costs what it does, not what Bolt does to call it.

Bolt calls a middleware given as a function through its keyword injection: on every request,
for every such middleware, it works out which of twenty-odd arguments the function takes and
builds them (build_async_required_kwargs). Given as AsyncMiddleware objects, which Bolt calls
directly, the bot's four middleware cost a quarter less per ack: 140 against 106 µs of CPU per
signed `/imagegen` (`bench/bench_ack_cost.py`). `plain` turns `async def f(req, next)` into
such an object."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

Next = Callable[[], Awaitable[BoltResponse]]
PlainMiddleware = Callable[[AsyncBoltRequest, Next], Awaitable[Any]]


class _Plain(AsyncMiddleware):
    def __init__(self, func: PlainMiddleware) -> None:
        self.func = func

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Next
    ) -> BoltResponse | None:
        return await self.func(req, next)  # type: ignore[no-any-return]

    @property
    def name(self) -> str:
        return getattr(self.func, "__qualname__", repr(self.func))


def plain(func: PlainMiddleware) -> AsyncMiddleware:
    """`func(req, next)` as a middleware Bolt calls directly (req.body, req.context,
    req.headers hold what a function middleware would have been given)."""
    return _Plain(func)

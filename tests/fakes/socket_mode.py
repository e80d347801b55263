"""A loopback Socket Mode endpoint: says hello, lets a test push envelopes, records the acks.

SlackFake's apps.connections.open hands its ws:// URL to the SDK, exactly as Slack hands out
its wss:// URL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web


class SocketModeFake:
    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []
        self._acked = asyncio.Condition()
        self._ws: web.WebSocketResponse | None = None
        self._connected = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    async def start(self) -> SocketModeFake:
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "connection_info": {"app_id": "A0APP"},
                "debug_info": {"host": "fake", "approximate_connection_time": 3600},
            }
        )
        self._connected.set()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                async with self._acked:
                    self.acks.append(json.loads(message.data))
                    self._acked.notify_all()
        return ws

    async def connected(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send(self, envelope: dict[str, Any]) -> None:
        assert self._ws is not None, "no Socket Mode client connected"
        await self._ws.send_str(json.dumps(envelope))

    async def ack_for(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        """The client's ack of one envelope, as soon as it arrives."""

        def find() -> dict[str, Any] | None:
            return next((a for a in self.acks if a.get("envelope_id") == envelope_id), None)

        async with self._acked:
            try:
                await asyncio.wait_for(self._acked.wait_for(find), timeout)
            except TimeoutError:
                raise AssertionError(f"no ack for envelope {envelope_id}") from None
        found = find()
        assert found is not None
        return found

"""A small programmable HTTP server on 127.0.0.1 for tests.

Every fake provider (Slack, OpenAI, Google, BFL, Bedrock, self-hosted servers) is one of these
with handlers registered per (method, path). It records every request it receives so tests
assert on what went over the wire, never on our own functions.

Handlers are plain callables `(RecordedRequest) -> Reply` (or an awaitable of one), so a test
can switch a fake between healthy, failing and slow behaviour at any time. Tests wait for what a
fake received (`received`), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qs

import uvicorn
from starlette.requests import Request
from starlette.responses import Response


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    received_at: float = field(default_factory=time.time)
    path_params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """application/x-www-form-urlencoded body as a flat dict (last value wins)."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def multipart(self) -> dict[str, Any]:
        """multipart/form-data body: name -> str for fields, (filename, bytes, type) for files.
        Repeated names (image[]) become lists."""
        ctype = self.headers.get("content-type", "")
        match = re.search(r"boundary=\"?([^\";]+)\"?", ctype)
        if not match:
            raise ValueError(f"not multipart: {ctype}")
        boundary = b"--" + match.group(1).encode()
        out: dict[str, Any] = {}
        for part in self.body.split(boundary)[1:]:
            if part.startswith(b"--"):
                break
            head, _, value = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
            value = value[:-2] if value.endswith(b"\r\n") else value
            headers = head.decode(errors="replace")
            name_m = re.search(r'name="([^"]*)"', headers)
            if not name_m:
                continue
            name = name_m.group(1)
            file_m = re.search(r'filename="([^"]*)"', headers)
            type_m = re.search(r"content-type:\s*([^\r\n]+)", headers, re.I)
            item: Any
            if file_m:
                item = (file_m.group(1), value, type_m.group(1).strip() if type_m else None)
            else:
                item = value.decode()
            if name in out:
                prev = out[name]
                out[name] = [*prev, item] if isinstance(prev, list) else [prev, item]
            else:
                out[name] = item
        return out


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (slow provider)
    content_type: str | None = None

    def to_response(self) -> Response:
        body = self.body
        ctype = self.content_type
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            ctype = ctype or "application/json"
        elif isinstance(body, str):
            body = body.encode()
            ctype = ctype or "text/plain; charset=utf-8"
        return Response(
            content=body,
            status_code=self.status,
            headers=self.headers,
            media_type=ctype or "application/octet-stream",
        )


Handler = Callable[[RecordedRequest], "Reply | Awaitable[Reply]"]


def json_reply(data: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status=status, body=data, headers=dict(headers))


class FakeServer:
    """Starts on a free loopback port in a background thread; `url` is its base address."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.requests: list[RecordedRequest] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.RLock()  # predicates may call calls() while waiting
        # Notified whenever a request is recorded or a subclass records something of its own.
        self.changed = threading.Condition(self._lock)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- programming ---------------------------------------------------------------
    def on(self, method: str, path: str, handler: Handler | Reply) -> None:
        """Register a handler. `path` may hold {name} placeholders; later registrations win."""
        pattern = re.compile(
            "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"
        )
        fn: Handler
        if isinstance(handler, Reply):
            fixed = handler

            def reply(_req: RecordedRequest) -> Reply:
                return fixed

            fn = reply
        else:
            fn = handler
        with self._lock:
            self._routes.insert(0, (method.upper(), pattern, fn))

    def calls(self, path: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (path is None or r.path == path) and (method is None or r.method == method)
            ]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def notify(self) -> None:
        """Wake every waiter: call after recording something under `changed`'s lock."""
        with self.changed:
            self.changed.notify_all()

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Block until `predicate()` is truthy (checked on every change); its value, or an
        AssertionError after `timeout` seconds."""
        with self.changed:
            value = self.changed.wait_for(predicate, timeout)
        if not value:
            raise AssertionError(f"{self.name}: condition not met within {timeout} s")
        return value

    async def received(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """`wait_until` for async tests: the event loop keeps running while the fake waits."""
        return await asyncio.to_thread(self.wait_until, predicate, timeout)

    def received_calls(self, path: str, count: int = 1, timeout: float = 10.0) -> None:
        """Block until `path` has been called `count` times."""
        self.wait_until(lambda: len([r for r in self.requests if r.path == path]) >= count, timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- serving -------------------------------------------------------------------
    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        request = Request(scope, receive)
        body = await request.body()
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=parse_qs(request.url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        with self.changed:
            self.requests.append(recorded)
            routes = list(self._routes)
            self.changed.notify_all()
        reply: Reply | None = None
        for method, pattern, fn in routes:
            match = pattern.match(recorded.path)
            if match and method in (recorded.method, "*"):
                recorded.path_params = match.groupdict()
                try:
                    out = fn(recorded)
                    reply = await out if inspect.isawaitable(out) else out
                except Exception as exc:  # a broken fake must be loud, not a hang
                    reply = Reply(500, {"fake_error": repr(exc)})
                break
        if reply is None:
            reply = Reply(
                404, {"error": f"{self.name}: no handler for {recorded.method} {recorded.path}"}
            )
        self.notify()  # the handler may have recorded something a test waits for
        if reply.delay:
            await asyncio.sleep(reply.delay)
        await reply.to_response()(scope, receive, send)

    def start(self) -> FakeServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app, log_level="error", lifespan="off", access_log=False, interface="asgi3"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name=self.name
        )
        self._thread.start()
        deadline = time.time() + 10
        while not self._server.started:
            if time.time() > deadline:
                raise RuntimeError(f"{self.name} fake server did not start")
            time.sleep(0.01)
        return self

    def stop(self, wait: bool = False) -> None:
        """Ask the server to exit. It is not waited for unless `wait`: uvicorn notices within a
        tick (0.1 s), its port is never reused (each start binds a fresh one) and the thread is a
        daemon, so a test need not spend that tick."""
        if self._server is not None:
            # A slow reply still in flight (a timeout test) is dropped, not waited for.
            self._server.should_exit = True
            self._server.force_exit = True
        if wait and self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(wait=True)


class ProviderFake:
    """What every provider fake shares: one FakeServer, started and stopped with the fake, and
    the base URL a route is configured with (the server's address plus the fake's prefix)."""

    server: FakeServer
    prefix: str = ""

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url + self.prefix

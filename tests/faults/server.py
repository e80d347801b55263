"""The real bot as a separate OS process (`python -m bot serve --http`), driven like Slack does:
signed HTTP requests in, and everything it sends out recorded by the fake Slack.

Each process gets its own loopback port, database, asset store and spool, so tests run in
parallel under xdist. The process's log (stderr) is kept in a file the test can read.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.fakes.slack import SlackFake, signed_headers

SIGNING_SECRET = "fault-signing-secret-0123456789"
BOT_TOKEN = "xoxb-fault-0000-bot-token"
CHANNEL = "C0FAULT001"
USER = "U0FAULT001"
REPO = Path(__file__).parents[2]
# Settings a developer's shell may carry: the process gets only what the test sets.
_SETTINGS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "IMAGEROUTE_CONFIG",
    "DATABASE_URL",
    "ASSET_STORE",
    "ALERT_CHANNEL",
    "IMAGEROUTE_SPOOL",
    "IMAGEROUTE_DRAIN_SECONDS",
    "IMAGEROUTE_HEARTBEAT_SECONDS",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """One `imageroute serve --http` process on its own port."""

    folder: Path
    env: dict[str, str]
    slack: SlackFake
    name: str = "bot"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _seq: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self, *, probes: bool = False, timeout: float = 90.0) -> ServerProcess:
        """Start the process and wait until it answers /healthz (any status: it is up)."""
        env = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        args = [sys.executable, "-m", "bot", "serve", "--http", "--port", str(self.port)]
        args.append("--probes" if probes else "--no-probes")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args, env=env, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited at start:\n{self.log()}")
            try:
                httpx.get(self.url + "/healthz", timeout=1.0)
                return self
            except httpx.TransportError:
                time.sleep(0.05)  # the process is still importing: nothing to wait on yet
        raise AssertionError(f"{self.name} did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    # -- Slack's side -------------------------------------------------------------------
    def _signed(self, body: str, content_type: str) -> dict[str, str]:
        return signed_headers(body, SIGNING_SECRET, content_type=content_type)

    def _next(self) -> str:
        self._seq += 1
        return f"{self.name}.{os.getpid()}.{time.time_ns()}.{self._seq}"

    async def command(
        self,
        name: str,
        text: str,
        *,
        channel: str = CHANNEL,
        user: str = USER,
        trigger_id: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        """A slash command as Slack POSTs it (form-encoded, signed)."""
        form = {
            "token": "legacy",
            "team_id": "T0TEAM",
            "channel_id": channel,
            "user_id": user,
            "command": name,
            "text": text,
            "api_app_id": "A0APP",
            "response_url": self.slack.response_url(self._next()),
            "trigger_id": trigger_id or f"trigger.{self._next()}",
        }
        body = urlencode(form)
        headers = self._signed(body, "application/x-www-form-urlencoded")
        if client is not None:
            return await client.post(self.url + "/slack/events", content=body, headers=headers)
        async with httpx.AsyncClient(timeout=15) as fresh:
            return await fresh.post(self.url + "/slack/events", content=body, headers=headers)

    async def event(self, event: dict[str, Any]) -> httpx.Response:
        envelope = {
            "token": "legacy",
            "team_id": "T0TEAM",
            "api_app_id": "A0APP",
            "type": "event_callback",
            "event_id": f"Ev{self._next()}",
            "event_time": int(time.time()),
            "event": event,
        }
        body = json.dumps(envelope)
        async with httpx.AsyncClient(timeout=15) as client:
            return await client.post(
                self.url + "/slack/events",
                content=body,
                headers=self._signed(body, "application/json"),
            )

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with httpx.AsyncClient(timeout=15) as client:
            response = await client.get(self.url + "/healthz")
        return response.status_code, response.json()


def bot_env(
    folder: Path,
    slack: SlackFake,
    *,
    config: str,
    database_url: str,
    asset_store: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a bot process: its routes file written into `folder`."""
    (folder / "imageroute.toml").write_text(config, encoding="utf-8")
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "IMAGEROUTE_CONFIG": str(folder / "imageroute.toml"),
        "DATABASE_URL": database_url,
        "ASSET_STORE": asset_store or f"file://{folder}/assets",
        "IMAGEROUTE_SPOOL": str(folder / "spool"),
        # A worker is dead after 1 s without a heartbeat; sweeps every 0.75 s.
        "IMAGEROUTE_HEARTBEAT_SECONDS": "0.25",
        **extra,
    }

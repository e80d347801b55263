"""Real `imageroute` processes for tests: started with their own environment, stderr kept in a
file (the log lines a test reads), killed at the end whatever happens. Signed Slack requests
are sent to them over HTTP exactly as Slack sends them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.bot.conftest import CHANNEL, SIGNING_SECRET, USER
from tests.fakes.slack import signed_headers

T = TypeVar("T")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# How long a test waits on a cold process: imports, the first SDK load and the first run take
# seconds of CPU each, and several processes start at once on a shared 2-core machine. Waits
# end as soon as the awaited thing happens; this only bounds a real failure.
COLD = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Re-check `check` until it holds (a process's HTTP answer, a row): bounded, never a fixed
    sleep standing in for the event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5)

    def healthy(self) -> bool:
        try:
            return self.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout: float = COLD) -> None:
        def up() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.popen.returncode}:\n{self.log()}")
            return self.healthy()

        wait_for(up, timeout, f"{self.name} to answer /healthz")

    def metrics(self) -> Samples:
        response = self.get("/metrics")
        assert response.status_code == 200, response.text
        samples: Samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log().splitlines() if line.strip()]

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye; its database connections simply drop."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait for the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop on SIGTERM:\n{self.log()}") from None


@dataclass
class Processes:
    """Starts `imageroute` processes in `workdir` and kills every one at the end."""

    workdir: Path
    env: dict[str, str]
    started: list[Process] = field(default_factory=list)

    def start(self, name: str, *args: str, port: int | None = None, **env: str) -> Process:
        port = port or free_port()
        log_path = self.workdir / f"{name}.log"
        argv = [sys.executable, "-m", "bot", *[a.replace("{port}", str(port)) for a in args]]
        with log_path.open("wb") as stderr:
            popen = subprocess.Popen(
                argv,
                env={**os.environ, **self.env, **env},
                cwd=self.workdir,
                stdout=stderr,
                stderr=stderr,
            )
        process = Process(name, popen, port, log_path)
        self.started.append(process)
        return process

    def run_once(self, name: str, *args: str, timeout: float = 120) -> str:
        """A one-shot command (`db upgrade`), run to its end; its output, or the failure."""
        done = subprocess.run(
            [sys.executable, "-m", "bot", *args],
            env={**os.environ, **self.env},
            cwd=self.workdir,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        output = (done.stdout + done.stderr).decode(errors="replace")
        assert done.returncode == 0, f"{name} exited {done.returncode}:\n{output}"
        return output

    def close(self) -> None:
        for process in self.started:
            process.kill()


def processes(workdir: Path, env: dict[str, str]) -> Iterator[Processes]:
    running = Processes(workdir, env)
    try:
        yield running
    finally:
        running.close()


def signed(body: str, secret: str = SIGNING_SECRET) -> dict[str, str]:
    return signed_headers(body, secret)


def command(
    process: Process,
    text: str,
    *,
    response_url: str,
    trigger: str,
    name: str = "/imagegen",
    channel: str = CHANNEL,
    user: str = USER,
    request_id: str | None = None,
) -> httpx.Response:
    """A signed slash command, as Slack POSTs it to /slack/events."""
    body = urlencode(
        {
            "team_id": "T0TEAM",
            "channel_id": channel,
            "user_id": user,
            "command": name,
            "text": text,
            "api_app_id": "A0APP",
            "response_url": response_url,
            "trigger_id": trigger,
        }
    )
    headers = signed(body)
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return httpx.post(f"{process.url}/slack/events", content=body, headers=headers, timeout=10)


def interact(process: Process, payload: dict[str, Any]) -> httpx.Response:
    """A signed interactivity payload (a button click), as Slack POSTs it."""
    body = urlencode({"payload": json.dumps(payload)})
    return httpx.post(f"{process.url}/slack/events", content=body, headers=signed(body), timeout=10)

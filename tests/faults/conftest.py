"""Fixtures of the fault suite: the fake Slack, and a launcher of real bot processes that are
killed (with their log shown) when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.slack import SlackFake
from tests.faults.server import BOT_TOKEN, ServerProcess, bot_env

Launch = Callable[..., ServerProcess]


@pytest.fixture
def slack() -> Iterator[SlackFake]:
    fake = SlackFake()
    fake.token = BOT_TOKEN  # the bot processes' token: auth.test refuses any other
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def launch(tmp_path: Path, slack: SlackFake, request: pytest.FixtureRequest) -> Iterator[Launch]:
    """`launch(config, database_url, name=..., probes=..., **env)` starts a bot process."""
    started: list[ServerProcess] = []

    def start(
        config: str, database_url: str, *, name: str = "bot", probes: bool = False, **env: Any
    ) -> ServerProcess:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        settings = bot_env(folder, slack, config=config, database_url=database_url)
        settings.update({k: str(v) for k, v in env.items()})
        server = ServerProcess(folder, settings, slack, name=name)
        started.append(server)
        return server.start(probes=probes)

    yield start
    for server in started:
        server.kill()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for server in started:
            print(f"--- {server.name} log ---\n{server.log()[-6000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keeps each phase's report on the test item, so `launch` can show logs of failed tests.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report

"""`/imageroute health` end to end: probe state, uptime and open incidents in Block Kit."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.bot.health.test_health import Provider


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    yield p
    p.server.stop()


async def test_imageroute_health_in_slack(provider, start_harness):
    provider.mode["a"] = "forbidden"
    h = await start_harness(provider.config({"a": "auth", "b": "auth"}))
    await h.bot.monitor.round()
    await h.bot.monitor.round()
    await h.command("/imageroute", "health")
    await h.settle()
    assert h.slack.top_level() == []  # private until shared
    blocks = json.dumps(h.slack.responses[-1]["blocks"])
    for expected in ("Route health", "failing", "healthy", "Open incidents", "`a`", "Probe spend"):
        assert expected in blocks, expected

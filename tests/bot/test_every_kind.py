"""Every route kind end to end: one signed `/imagegen route=all` compares all nine kinds (each
adapter on its real client against its strict loopback fake), and `imageroute gen` runs on
each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli_app
from tests.bot.conftest import CHANNEL
from tests.bot.providers import KINDS, Providers, provider_env
from tests.fakes.slack import Message


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Providers]:
    provider_env(monkeypatch)
    p = Providers()
    yield p
    p.stop()


async def test_imagegen_compares_all_nine_kinds(providers: Providers, start_harness) -> None:
    h = await start_harness(providers.config())
    assert sorted(r.kind for r in h.runtime.routes.values()) == sorted(KINDS)
    response = await h.command("/imagegen", 'route=all prompt="a lighthouse at dusk"')
    assert response.status_code == 200
    await h.settle(60)
    [parent] = h.slack.top_level(CHANNEL)
    results = [m for m in h.slack.thread(CHANNEL, parent.ts) if isinstance(m, Message)]
    runs = h.runtime.runlog.recent(20)
    assert len(runs) == 9
    failed = [(r.route_id, r.error_message) for r in runs if r.status != "succeeded"]
    assert not failed
    # One message per route, each showing its image; the montage is on the parent.
    assert len(results) == 9 and all(len(h.slack.images(m)) == 1 for m in results)
    assert len(h.slack.images(parent)) == 1
    assert h.slack.rejections == []
    assert {r.route_kind for r in runs} == set(KINDS)
    gateway = next(r for r in runs if r.route_id == "gateway")
    assert gateway.underlying_model == "gpt-image-2"
    gpu = next(r for r in runs if r.route_id == "gpu")
    assert gpu.hardware == "1x L4" and gpu.cost_basis == "hardware_time"
    assert not providers.rejections()  # every request was one the real provider accepts


def test_gen_runs_on_every_kind(
    providers: Providers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "imageroute.toml").write_text(providers.config())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/gen.db")
    monkeypatch.setenv("ASSET_STORE", f"file://{tmp_path}/assets")
    for route in (
        "demo",
        "openai",
        "assistant",
        "gateway",
        "imagen",
        "gemini",
        "flux",
        "nova",
        "gpu",
    ):
        result = CliRunner().invoke(cli_app, ["gen", "--route", route, "a lighthouse"])
        assert result.exit_code == 0, (route, result.output)
        assert f"{route}: 1 image(s)" in result.output
    assert not providers.rejections()

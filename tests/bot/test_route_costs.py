"""Costs as users see them: `/imagegen` and `imageroute gen` on gpt-image-2 show a USD cost
worked out from the returned usage, with its basis; spend caps never take an unknown cost as $0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli_app
from storage.tables import Run
from tests.bot.conftest import CHANNEL, USER, BotHarness
from tests.fakes.openai import OpenAIFake

USAGE = {
    "input_tokens": 30,
    "input_tokens_details": {"text_tokens": 30, "image_tokens": 0},
    "output_tokens": 1056,
    "output_tokens_details": {"text_tokens": 0, "image_tokens": 1056},
    "total_tokens": 1086,
}
COST = (30 * 5.0 + 1056 * 30.0) / 1e6  # gpt-image-2: text in $5/M, image out $30/M


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    """The strict OpenAI fake, answering with a gpt-image-2 usage whose cost is known."""
    fake = OpenAIFake(api_key="sk-cost").start()
    fake.usage = USAGE
    yield fake
    fake.stop()


@pytest.fixture
def gateway_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(flavor="gateway", api_key="k").start()
    yield fake
    fake.stop()


def _config(url: str, extra: str = "") -> str:
    return (
        f'[routes.openai]\nkind = "openai"\nmodel = "gpt-image-2"\napi_key = "sk-cost"\n'
        f'base_url = "{url}"\nbilling_owner = "Acme OpenAI org"\n{extra}'
    )


async def test_imagegen_on_gpt_image_2_shows_the_cost_from_usage(
    start_harness: Any, openai_fake: OpenAIFake
) -> None:
    h: BotHarness = await start_harness(_config(openai_fake.url))
    await h.command("/imagegen", 'route=openai prompt="a lighthouse" quality=medium')
    await h.settle(30)
    parent = h.slack.top_level(CHANNEL)[-1]
    [result] = h.slack.replies(CHANNEL, parent.ts)
    assert h.slack.images(result)
    assert f"${COST:.3f} (from usage)" in result.all_text()
    assert not openai_fake.rejections
    run = h.runtime.runlog.recent(1)[0]
    assert run.cost_usd == pytest.approx(COST) and run.cost_basis == "tokens"
    assert "1056 image output" in (run.cost_detail or "")


def test_imageroute_gen_on_gpt_image_2_prints_the_cost_and_its_basis(
    openai_fake: OpenAIFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "imageroute.toml").write_text(_config(openai_fake.url))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/costs.db")
    monkeypatch.setenv("ASSET_STORE", f"file://{tmp_path}/assets")
    monkeypatch.delenv("IMAGEROUTE_CONFIG", raising=False)
    result = CliRunner().invoke(cli_app, ["gen", "--route", "openai", "a lighthouse"])
    assert result.exit_code == 0, result.output
    assert f"${COST:.3f} (from usage)" in result.stdout


async def test_a_one_cent_cap_refuses_gpt_image_2_before_any_call(
    start_harness: Any, openai_fake: OpenAIFake
) -> None:
    h: BotHarness = await start_harness(_config(openai_fake.url, "daily_spend_usd = 0.01\n"))
    await h.command("/imagegen", 'route=openai prompt="a lighthouse" quality=high')
    await h.settle(30)
    assert openai_fake.calls("generations") == []
    assert "daily spend cap of $0.01" in h.slack.ephemerals()[-1].text


async def test_runs_of_unknown_cost_count_at_the_estimate_against_the_cap(
    start_harness: Any, gateway_fake: OpenAIFake
) -> None:
    config = (
        f'[routes.gw]\nkind = "gateway"\nmodel = "acme/image-1"\napi_key = "k"\n'
        f'base_url = "{gateway_fake.url}"\nestimated_usd_per_image = 0.05\n'
        "daily_spend_usd = 0.12\n"
    )
    h: BotHarness = await start_harness(config)
    for _ in range(2):  # two earlier runs the provider billed, cost unknown
        run = h.runtime.runlog.start(
            Run(route_id="gw", route_kind="gateway", model_requested="acme/image-1", prompt="x")
        )
        assert run.id is not None
        h.runtime.runlog.finish(run.id, "succeeded", cost_usd=None, images=1)
    await h.command("/imagegen", 'route=gw prompt="a lighthouse"', user=USER)
    await h.settle(30)
    # $0.10 counted for the two unknown runs + $0.05 for this one passes $0.12: nothing sent.
    assert gateway_fake.calls("generations") == []
    assert "($0.10 spent today)" in h.slack.ephemerals()[-1].text

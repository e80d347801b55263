"""The spend policy on every path that spends: `imageroute gen`, generate probes and a
benchmark's budget, against the real run log (nothing of ours mocked)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.core.spend import Allowance, SpendBudget
from routes.model import ImageRequest
from storage.runlog import RunLog
from storage.tables import HealthCheck, Run
from tests.conftest import RuntimeOpener

CAPPED = """
[routes.paid]
kind = "demo"
probe = "generate"
daily_spend_usd = 0.50
pricing = { usd_per_image = 0.04 }

[routes.free]
kind = "demo"
probe = "generate"
"""


def spent_today(runlog: RunLog, route_id: str, usd: float) -> None:
    run = runlog.start(
        Run(route_id=route_id, route_kind="demo", model_requested="imageroute-demo-1", prompt="x")
    )
    assert run.id is not None
    runlog.finish(run.id, "succeeded", cost_usd=usd, cost_basis="list_price", images=1)


def test_cli_gen_is_refused_past_the_routes_daily_cap(
    open_runtime: RuntimeOpener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = open_runtime(CAPPED)
    spent_today(runtime.runlog, "paid", 0.48)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMAGEROUTE_CONFIG", str(tmp_path / "imageroute.toml"))
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("ASSET_STORE", runtime.settings.asset_store)
    refused = CliRunner().invoke(cli_app, ["gen", "--route", "paid", "a poster"])
    assert refused.exit_code == 2
    assert "daily spend cap of $0.50" in refused.stderr and "resets at 00:00 UTC" in refused.stderr
    assert len(runtime.runlog.recent(10)) == 1  # nothing ran, nothing logged
    allowed = CliRunner().invoke(cli_app, ["gen", "--route", "free", "a poster"])
    assert allowed.exit_code == 0, allowed.output


async def test_generate_probe_is_skipped_past_the_routes_daily_cap(
    open_runtime: RuntimeOpener,
) -> None:
    runtime = open_runtime(CAPPED)
    spent_today(runtime.runlog, "paid", 0.48)
    checks = await runtime.monitor(None).probe()
    assert [c.route_id for c in checks] == ["free"]


def test_budget_reserves_before_and_settles_after_each_call() -> None:
    budget = SpendBudget(spent=0.0, allowance=Allowance(0.10, {"paid": 0.05}))
    assert budget.reserve("paid", 0.04) is None
    assert "route daily spend cap" in (budget.reserve("paid", 0.04) or "")
    budget.settle("paid", 0.04, 0.01)  # cheaper than its list price: room again
    assert budget.reserve("paid", 0.04) is None and budget.spent == pytest.approx(0.05)
    assert "budget" in (budget.reserve("other", 0.06) or "")


async def test_generate_probes_spend_against_the_routes_cap_and_unknown_is_not_zero(
    open_runtime: RuntimeOpener,
) -> None:
    runtime = open_runtime(CAPPED)
    spent_today(runtime.runlog, "paid", 0.04)
    # Probes spent too: $0.38 known, and one probe image nobody priced (at the $0.04 estimate).
    runtime.health.record(
        HealthCheck(route_id="paid", probe_kind="generate", ok=True, cost_usd=0.38)
    )
    runtime.health.record(HealthCheck(route_id="paid", probe_kind="generate", ok=True))
    # $0.46 counted; the next image ($0.04) would make $0.50, within the cap...
    assert await runtime.spend.refusal(["paid"]) is None
    runtime.health.record(HealthCheck(route_id="paid", probe_kind="generate", ok=True))
    # ...one more unpriced probe image and it would not be: never counted as $0.
    refusal = await runtime.spend.refusal(["paid"])
    assert refusal is not None and "($0.50 spent today)" in refusal
    checks = await runtime.monitor(None).probe()
    assert [c.route_id for c in checks] == ["free"]


async def test_a_request_no_tier_prices_takes_the_routes_plain_estimate_under_a_user_cap(
    open_runtime: RuntimeOpener,
) -> None:
    runtime = open_runtime(
        "[limits]\nuser_daily_spend_usd = 0.05\n"
        '[routes.tiered]\nkind = "demo"\n'
        'pricing = { tiers = [{ quality = "low", usd = 0.01 }] }\n'
    )
    run = runtime.runlog.start(
        Run(
            route_id="tiered",
            route_kind="demo",
            model_requested="imageroute-demo-1",
            prompt="x",
            slack_user="U1",
        )
    )
    assert run.id is not None
    runtime.runlog.finish(run.id, "succeeded", cost_usd=0.045, cost_basis="list_price", images=1)
    high = ImageRequest(prompt="x", quality="high", n=1)  # no tier prices "high"
    assert runtime.spend.estimate("tiered", high) is None
    refusal = await runtime.spend.refusal(["tiered"], "U1", high)
    assert refusal is not None and "daily spend cap of $0.05" in refusal
    assert await runtime.spend.refusal(["tiered"], "U2", high) is None

"""The benchmark's stored plan, edge family, budget notes and resume by id alone: against a demo
route and a fake OpenAI server (gpt-image-2 by default), nothing of ours mocked."""

from __future__ import annotations

import asyncio
import re

import pytest
from PIL import Image
from typer.testing import CliRunner

from bot.benchmark.plan import BenchPlan
from bot.benchmark.prompts import BenchError, load_prompts
from bot.benchmark.report import build_report, count_outputs, write_report
from bot.cli import app as cli_app
from storage.benches import BenchLog
from storage.db import make_engine, upgrade
from storage.tables import Bench
from tests.bot.benchmark.conftest import config
from tests.fakes.openai import OpenAIFake
from tests.fakes.server import RecordedRequest, Reply

REFUSED_PROMPT = "passport photo page"


def refusing(fake: OpenAIFake) -> None:
    """The fake answers the edge family's risky prompt as OpenAI's safety system does."""

    def moderate(endpoint: str, req: RecordedRequest) -> Reply | None:
        if endpoint == "generations" and REFUSED_PROMPT in (req.json() or {}).get("prompt", ""):
            return Reply(
                400,
                {
                    "error": {
                        "message": "Your request was rejected by the safety system.",
                        "type": "image_generation_user_error",
                        "code": "moderation_blocked",
                    }
                },
                headers={"x-request-id": "req_mod"},
            )
        return None

    fake.intercept = moderate


async def test_edge_family_records_how_each_route_refuses(openai_fake, open_runtime):
    refusing(openai_fake)
    runtime = open_runtime(config(openai_fake))
    runner = runtime.bench_runner()
    state = await runner.run(runner.plan(load_prompts(), ["demo", "paid"], ["edge"], 1))
    by = {(i.route_id, i.prompt.id): r for i, r in state.outcomes}
    # gpt-image-2 has no transparent background: refused before any call, logged, not billed
    # (which is not a free run).
    sticker = by[("paid", "transparent-sticker")]
    assert sticker.status == "failed" and sticker.error_class == "unsupported"
    assert "transparent" in sticker.error_message and sticker.cost_usd == 0.0
    assert sticker.cost_basis == "not_billed"
    assert by[("demo", "transparent-sticker")].status == "succeeded"
    assert by[("paid", "oversized")].error_class == "unsupported"
    refused = by[("paid", "real-person-document")]
    assert refused.error_class == "moderation" and refused.error_request_id == "req_mod"
    # Only the risky prompt reached the provider; the refused options never left the process.
    sent = [c.json()["prompt"] for c in openai_fake.server.calls("/v1/images/generations")]
    assert len(sent) == 1 and REFUSED_PROMPT in sent[0]
    # Refusals are not blocked by the budget: they cost nothing.
    capped = runtime.bench_runner()
    state2 = await capped.run(capped.plan(load_prompts(), ["paid"], ["edge"], 1), max_cost=0.0)
    assert {r.error_class for _, r in state2.outcomes} == {"unsupported"}
    assert len(state2.outcomes) == 2 and len(state2.skipped) == 1
    assert "budget" in state2.skipped[0][1]


async def test_an_unpriced_route_is_refused_under_a_budget_and_counted_unpriced_without(
    openai_fake, open_runtime, tmp_path
):
    text = config(openai_fake) + (
        f'\n[routes.unpriced]\nkind = "openai"\nmodel = "image-model-not-on-file"\napi_key = "sk-bench"\n'
        f'base_url = "{openai_fake.server.url}/v1"\nbilling_owner = "Acme"\n'
    )
    # A model the price table does not know, which this (strict) OpenAI fake does serve.
    openai_fake.models.add("image-model-not-on-file")
    runtime = open_runtime(text)
    runner = runtime.bench_runner()
    items = runner.plan(load_prompts(), ["unpriced", "paid"], ["product"], 1)
    # A budget cannot be kept on a route nothing prices: refused before any call, not run as $0.
    with pytest.raises(BenchError, match=r"budget cannot be kept on `unpriced`.*estimated_usd"):
        await runner.run(items, max_cost=1.0)
    with pytest.raises(BenchError, match="budget cannot be kept"):
        runner.open(BenchPlan(routes=("unpriced", "paid"), max_cost=1.0))
    assert openai_fake.server.calls("/v1/images/generations") == []

    row, _plan, items = runner.open(BenchPlan(routes=("unpriced", "paid"), families=("product",)))
    state = await runner.run(items, bench_id=row.id)
    assert state.unpriced == {"unpriced"}
    assert (state.known_usd, state.unpriced_runs) == (pytest.approx(0.08), 2)
    assert state.spent_text == "$0.08 spent + 2 runs unpriced"
    report = build_report(state, runtime.runlog, runtime.assets, ["unpriced", "paid"])
    files = write_report(report, tmp_path / "rep")
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert "| unpriced | product | 2 | 100% |" in summary
    assert re.search(r"\| unpriced \| product .*\| unknown \|", summary)
    assert "| paid | product | 2 | 100% |" in summary and "$0.040" in summary
    assert "No price on file for `unpriced`: run without a budget" in summary
    assert "4 of 4 outputs succeeded, 0 skipped, $0.08 spent + 2 runs unpriced." in summary
    assert "2 runs unpriced: billed at a cost nothing on file gives" in summary
    assert "$0.00" not in summary
    page = (tmp_path / "rep" / "summary.html").read_text()
    # One self-contained page: sortable table, a side-by-side grid per family with the
    # thumbnails embedded, the same counts as the terminal.
    assert '<table class="sortable"' in page and 'id="family-product"' in page
    assert 'src="data:image/jpeg;base64,' in page and "<link" not in page
    assert count_outputs(state).sentence() in page
    assert {p.name for p in files} >= {"summary.html", "summary.md", "chart.png"}
    chart = Image.open(tmp_path / "rep" / "chart.png")
    assert chart.size[0] == 720 and chart.size[1] == 50 + 2 * (2 * 18 + 14)
    sheet = Image.open(tmp_path / "rep" / "contact-product.png")
    assert sheet.size[0] == 2 * 256
    # The unpriced route's tile is a picture, not the grey "missing" tile.
    assert sheet.getpixel((128, 28 + 28 + 128)) != (215, 215, 215)

    # Resumed, the finished runs are kept, and their unknown costs stay counted as unknown.
    again = await runtime.bench_runner().run(items, bench_id=row.id)
    assert again.resumed == 4 and again.unpriced_runs == 2
    assert again.spent_text == "$0.08 spent + 2 runs unpriced"


async def test_a_route_priced_only_by_its_estimate_is_budgeted_at_it(openai_fake, open_runtime):
    text = config(openai_fake) + (
        f'\n[routes.estimated]\nkind = "openai"\nmodel = "image-model-not-on-file"\n'
        f'api_key = "sk-bench"\nbase_url = "{openai_fake.server.url}/v1"\n'
        "estimated_usd_per_image = 0.30\n"
    )
    openai_fake.models.add("image-model-not-on-file")
    runtime = open_runtime(text)
    runner = runtime.bench_runner()
    items = runner.plan(load_prompts(), ["estimated"], ["product"], 1)
    state = await runner.run(items, max_cost=0.50)
    # The first call reserved $0.30 (the route's estimate, no price row): the second would
    # pass $0.50, so it was held back rather than run as if it cost nothing.
    assert len(state.outcomes) == 1 and len(state.skipped) == 1
    assert "budget" in state.skipped[0][1]
    [(_item, run)] = state.outcomes
    assert run.cost_basis == "estimate" and run.cost_usd == pytest.approx(0.30)


async def test_open_stores_the_plan_and_cancel_marks_it_interrupted(openai_fake, open_runtime):
    runtime = open_runtime(config(openai_fake, slow=0.15))
    runner = runtime.bench_runner()
    plan = BenchPlan(routes=("demo",), families=("product", "poster"), per_route=1)
    row, plan, items = runner.open(plan, source="cli")
    assert row.status == "running" and row.routes == ["demo"] and len(items) == 4
    first_done = asyncio.Event()
    task = asyncio.create_task(
        runner.run(items, bench_id=row.id, on_progress=lambda s, i, r: first_done.set())
    )
    await asyncio.wait_for(first_done.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runner.benches.get(row.id).status == "interrupted"

    again = runtime.bench_runner()
    _, plan2, items2 = again.open(None, resume=row.id)  # nothing but the id
    assert plan2 == plan and [i.key for i in items2] == [i.key for i in items]
    assert again.per_route == 1
    state = await again.run(items2, bench_id=row.id)
    assert state.resumed >= 1 and len(state.outcomes) == 4
    stored = again.benches.get(row.id)
    assert stored.status == "finished" and stored.finished_at is not None
    keys = [r.request_key.split("#")[0] for r in runtime.runlog.iter_all(bench_id=row.id)]
    succeeded = [
        r.request_key.split("#")[0]
        for r in runtime.runlog.iter_all(bench_id=row.id)
        if r.status == "succeeded"
    ]
    assert len(set(succeeded)) == len(succeeded) == 4 and len(keys) >= 4

    with pytest.raises(BenchError, match="there is no benchmark bnope"):
        again.open(None, resume="bnope")
    with pytest.raises(BenchError, match="max-cost"):
        again.open(BenchPlan(routes=("demo",), max_cost=-1))
    with pytest.raises(BenchError, match="concurrency"):
        again.open(BenchPlan(routes=("demo",), per_route=0))


def test_prompt_file_errors_are_one_sentence(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text('[[prompt]]\nid = "a:b"\nfamily = "product"\nprompt = "x"\n')
    with pytest.raises(BenchError, match="may only use letters"):
        load_prompts(bad)
    bad.write_text('[[prompt]]\nid = "a"\nfamily = "product"\nprompt = "x"\nquality = "ultra"\n')
    with pytest.raises(BenchError, match=r"prompt #1 \(a\): `quality=ultra` is not one of"):
        load_prompts(bad)
    bad.write_text("[[prompt]\n")
    with pytest.raises(BenchError, match="not valid TOML"):
        load_prompts(bad)


def test_a_teams_prompt_file_with_its_own_source_image(tmp_path, openai_fake, open_runtime):
    Image.new("RGB", (32, 32), "red").save(tmp_path / "shoe.png")
    own = tmp_path / "ours.toml"
    own.write_text(
        '[[prompt]]\nid = "shoe-edit"\nfamily = "edit"\nprompt = "make it blue"\n'
        'input = "shoe.png"\nsize = "1024x1024"\n'
    )
    [prompt] = load_prompts(own)
    assert prompt.inputs[0].data == (tmp_path / "shoe.png").read_bytes()
    runner = open_runtime(config(openai_fake)).bench_runner()
    row, _, items = runner.open(BenchPlan(routes=("demo",), prompt_set=own))
    assert row.prompt_set == str(own.resolve()) and len(items) == 1


def test_cli_resume_needs_only_the_id_and_repeats_nothing(openai_fake, tmp_path, monkeypatch):
    (tmp_path / "imageroute.toml").write_text(config(openai_fake))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("ASSET_STORE", f"file://{tmp_path}/assets")
    cli = CliRunner()
    first = cli.invoke(
        cli_app,
        ["bench", "--routes", "paid", "--families", "product", "--max-cost", "0.05"],
    )
    assert first.exit_code == 0, first.output
    started = re.search(r"benchmark (b[0-9a-f]{10}): 2 outputs on paid", first.output)
    assert started is not None
    bench_id = started[1]
    assert "1 skipped" in first.output and f"bench --resume {bench_id}" in first.output
    assert len(openai_fake.server.calls("/v1/images/generations")) == 1

    second = cli.invoke(cli_app, ["bench", "--resume", bench_id, "--max-cost", "1"])
    assert second.exit_code == 0, second.output
    assert f"benchmark {bench_id}: 2 outputs on paid, budget $1.00" in second.output
    assert "2 of 2 outputs succeeded, 0 skipped, $0.08 spent" in second.output
    assert len(openai_fake.server.calls("/v1/images/generations")) == 2  # only the skipped one
    summary = (tmp_path / "bench-reports" / bench_id / "summary.md").read_text()
    assert "1 kept from an earlier attempt" in summary

    missing = cli.invoke(cli_app, ["bench", "--resume", "bdeadbeef00"])
    assert missing.exit_code == 2 and "there is no benchmark bdeadbeef00" in missing.output


def test_bench_rows_on_both_databases(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    log = BenchLog(engine)
    log.create(Bench(id="b1", routes=["a", "b"], families=["edge"], max_cost_usd=2.5))
    stored = log.get("b1")
    assert stored is not None and stored.routes == ["a", "b"] and stored.max_cost_usd == 2.5
    assert log.set_status("b1", "finished").finished_at is not None
    assert [b.id for b in log.recent()] == ["b1"]
    engine.dispose()


def _png(image: Image.Image) -> bytes:
    import io

    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def test_repeatability_across_repeats(openai_fake, open_runtime):
    from bot.benchmark.report import build_cells, collect

    runtime = open_runtime(config(openai_fake))
    runner = runtime.bench_runner()
    once = await runner.run(runner.plan(load_prompts(), ["demo"], ["product"], 1))
    twice = await runner.run(runner.plan(load_prompts(), ["demo"], ["product"], 2))
    checks = runtime.checks.checklog
    [single] = build_cells(collect(once, runtime.runlog, runtime.assets, checks))
    [double] = build_cells(collect(twice, runtime.runlog, runtime.assets, checks))
    assert single.repeatability is None
    # The demo route draws the same picture for the same request: its repeats are alike.
    assert double.repeatability == 1.0
    assert double.runs == 4 and double.succeeded == 4
    # Every output was checked (delivered as asked), and the report counts them.
    assert double.checks["delivery"] == (4, 4, 1.0)


def test_transparent_outputs_show_on_a_checkerboard_in_the_sheet():
    from bot.benchmark.sheets import flatten_for_sheet

    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    clear.paste((200, 0, 0, 255), (16, 16, 48, 48))
    flat = flatten_for_sheet(clear)
    assert flat.mode == "RGB" and flat.getpixel((32, 32)) == (200, 0, 0)
    assert {flat.getpixel((0, 0)), flat.getpixel((8, 0))} == {(255, 255, 255), (204, 204, 204)}
    assert flatten_for_sheet(Image.new("RGB", (8, 8), "navy")).getpixel((0, 0)) == (0, 0, 128)

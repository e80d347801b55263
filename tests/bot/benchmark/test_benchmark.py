"""The route benchmark against a demo route and fake OpenAI routes: every family logged with its
fields, the budget cap, resuming without duplicates, the report files, the CLI and Slack paths."""

from __future__ import annotations

import asyncio
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from bot.benchmark.plan import BenchItem, BenchProgress
from bot.benchmark.prompts import FAMILIES, BenchError, load_prompts
from bot.benchmark.report import build_report, write_report
from bot.benchmark.sheets import SHEET_LABEL, SHEET_TILE
from bot.cli import app as cli_app
from storage.tables import Run
from tests.bot.benchmark.conftest import config


async def test_two_routes_every_family_logged_with_all_fields(openai_fake, open_runtime, tmp_path):
    runtime = open_runtime(config(openai_fake))
    runner = runtime.bench_runner()
    items = runner.plan(load_prompts(), ["demo", "assistant"], None, 1)
    state = await runner.run(items)
    runs = list(runtime.runlog.iter_all(bench_id=state.bench_id))
    assert {r.bench_family for r in runs} == set(FAMILIES)
    # Every family on both routes, the assistant family's three steps each a run.
    assert not state.skipped
    assert len(runs) == len(items) == 2 * (9 + 2)
    for run in runs:
        assert run.status in ("succeeded", "failed") and run.finished_at is not None
        assert run.bench_id == state.bench_id and run.source == "bench"
        assert run.route_owner and run.billing_owner and run.model_requested and run.prompt
        assert run.created_at is not None
        if run.status == "succeeded":
            assert run.response_id and run.latency_s is not None and run.size
            [stored, *_] = runtime.runlog.assets(run.id, role="output")
            assert stored.path and stored.sha256
    hero = [r for r in runs if r.request_key.split(":")[2] == "mug-hero"]
    assert {r.quality for r in hero} == {"high"} and {r.size for r in hero} == {"1024x1024"}
    assert all(r.request_key.startswith(f"{state.bench_id}:") for r in runs)
    edits = [r for r in runs if r.bench_family == "edit" and r.route_id == "demo"]
    assert edits[0].input_assets and len(edits[0].input_assets) == 2  # source image + mask
    oversized = [r for r in runs if r.prompt == "A highly detailed city map"]
    assert all(r.error_class == "unsupported" and "8192" in r.error_message for r in oversized)
    planner = next(r for r in runs if r.bench_family == "assistant" and r.route_id == "assistant")
    assert planner.revised_prompt == "a plan, then an image"
    assert openai_fake.server.calls("/v1/responses")

    report = build_report(state, runtime.runlog, runtime.assets, ["demo", "assistant"])
    written = write_report(report, tmp_path / "report")
    names = {p.name for p in written}
    assert {"summary.md", "chart.png", "contact-product.png", "contact-edge.png"} <= names
    sheet = Image.open(tmp_path / "report" / "contact-poster.png")
    assert sheet.size == (2 * SHEET_TILE, SHEET_LABEL + 2 * (SHEET_TILE + SHEET_LABEL))
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert (
        "| demo | product | 2 | 100% |" in summary and "| demo | assistant | 3 | 100% |" in summary
    )
    assert "## Multi-step requests" in summary


async def test_max_cost_is_checked_before_each_call(openai_fake, open_runtime):
    runtime = open_runtime(config(openai_fake))
    runner = runtime.bench_runner(1)
    items = runner.plan(load_prompts(), ["paid"], ["product", "poster"], 2)  # 8 paid outputs
    state = await runner.run(items, max_cost=0.10)
    runs = list(runtime.runlog.iter_all(bench_id=state.bench_id))
    spent = sum(r.cost_usd or 0 for r in runs)
    assert len(runs) == 2 and spent == pytest.approx(0.08) and spent <= 0.10
    assert len(openai_fake.server.calls("/v1/images/generations")) == 2
    assert len(state.skipped) == 6 and all("budget" in why for _, why in state.skipped)


async def test_resume_after_interruption_repeats_nothing_finished(openai_fake, open_runtime):
    runtime = open_runtime(config(openai_fake, slow=0.15))
    runner = runtime.bench_runner(1)
    items = runner.plan(load_prompts(), ["demo"], ["product", "poster"], 1)
    two_done = asyncio.Event()

    def progress(state: BenchProgress, _item: BenchItem, _run: Run | None) -> None:
        if state.done >= 2:
            two_done.set()

    task = asyncio.create_task(runner.run(items, bench_id="bresume", on_progress=progress))
    await asyncio.wait_for(two_done.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    first = list(runtime.runlog.iter_all(bench_id="bresume"))
    # Cut off mid-run: the in-flight item is interrupted (or still pending, as after a crash).
    assert {r.status for r in first} <= {"succeeded", "interrupted", "pending"}
    finished_before = {r.request_key for r in first if r.status == "succeeded"}
    assert 2 <= len(finished_before) < len(items)

    state = await runner.run(items, bench_id="bresume")
    assert state.resumed == len(finished_before)
    runs = list(runtime.runlog.iter_all(bench_id="bresume"))
    succeeded: dict[str, int] = {}
    for r in runs:
        if r.status == "succeeded":
            key = r.request_key.split("#")[0]
            succeeded[key] = succeeded.get(key, 0) + 1
    assert len(succeeded) == len(items) and set(succeeded.values()) == {1}


def test_bad_prompt_files_and_options(tmp_path, openai_fake, open_runtime):
    bad = tmp_path / "p.toml"
    bad.write_text('[[prompt]]\nid = "a"\nfamily = "cats"\nprompt = "x"\n')
    with pytest.raises(BenchError, match="family must be one of"):
        load_prompts(bad)
    bad.write_text('[[prompt]]\nid = "a"\nfamily = "edit"\nprompt = "x"\ninput = "missing.png"\n')
    with pytest.raises(BenchError, match=r"missing\.png not found"):
        load_prompts(bad)
    runner = open_runtime(config(openai_fake)).bench_runner()
    with pytest.raises(BenchError, match="no route `nope`"):
        runner.plan(load_prompts(), ["nope"], None, 1)


def test_cli_bench_writes_the_report(openai_fake, tmp_path, monkeypatch):
    (tmp_path / "imageroute.toml").write_text(config(openai_fake))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("ASSET_STORE", f"file://{tmp_path}/assets")
    result = CliRunner().invoke(
        cli_app,
        [
            "bench",
            "--routes",
            "demo,paid",
            "--families",
            "product,edge",
            "--max-cost",
            "0.05",
            "--out",
            "rep",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "report: rep/summary.md" in result.output
    # The terminal shows the report's table, acceptance checks included.
    assert "| text | kept | alpha | as asked | verdicts" in result.output
    demo_product = next(x for x in result.output.splitlines() if x.startswith("| demo | product |"))
    assert "2/2 · 100%" in demo_product  # both product outputs delivered as asked
    assert (tmp_path / "rep" / "contact-product.png").exists()
    exported = CliRunner().invoke(
        cli_app,
        [
            "export",
            "--format",
            "jsonl",
            "--bench",
            result.output.split("benchmark ")[1].split(":")[0],
        ],
    )
    rows = [json.loads(line) for line in exported.output.splitlines() if line.startswith("{")]
    assert rows and all(r["bench_id"] for r in rows)
    bad = CliRunner().invoke(cli_app, ["bench", "--families", "cats"])
    assert bad.exit_code == 2 and "unknown family cats" in bad.output

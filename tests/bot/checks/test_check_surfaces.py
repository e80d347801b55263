"""The checks where people read them outside Slack: `imageroute gen`, exports (CSV and JSON
lines) and the benchmark runner, which checks each output after it is shown."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.benchmark.plan import BenchPlan
from bot.checks import CheckReport
from bot.cli import app as cli_app
from storage.tables import Run
from tests.bot.cli.test_cli import SETTINGS_ENV
from tests.conftest import RuntimeOpener


@pytest.fixture
def in_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_gen_prints_the_checks_and_exports_carry_them(in_folder: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli_app, ["gen", "a shop sign reading 'OPEN LATE'", "--size", "512x512", "--format", "png"]
    )
    assert result.exit_code == 0, result.output
    assert "  checks: text " in result.output and "as asked" in result.output

    exported = runner.invoke(cli_app, ["export", "--format", "csv"])
    row = next(csv.DictReader(io.StringIO(exported.stdout)))
    assert row["check_text"] == "passed" and float(row["check_text_score"]) >= 0.9
    assert row["check_delivery"] == "passed" and row["checks_verdict"] == "passed"
    assert row["check_edit"] == "" and row["checks_failed"] == ""
    assert json.loads(row["checks"])[0]["name"] in ("text", "delivery")

    lines = runner.invoke(cli_app, ["export", "--format", "jsonl"]).stdout.splitlines()
    record = json.loads(lines[0])
    assert {c["name"] for c in record["checks"]} == {"text", "delivery"}
    assert record["check_transparency"] is None

    listed = json.loads(runner.invoke(cli_app, ["runs", "--json"]).stdout)
    assert listed[0]["checks_verdict"] == "passed"


def test_a_failed_check_is_exported_in_words(in_folder: Path) -> None:
    runner = CliRunner()
    # The demo draws at most 12 lines of the prompt: text past them is never shown.
    long = " ".join(f"line{i} filler words here" for i in range(40))
    result = runner.invoke(cli_app, ["gen", f"{long} 'THE END'", "--size", "256x256"])
    assert result.exit_code == 0, result.output
    assert "FAILED text" in result.output and "text: text" in result.output
    row = next(
        csv.DictReader(io.StringIO(runner.invoke(cli_app, ["export", "--format", "csv"]).stdout))
    )
    assert row["checks_verdict"] == "failed" and "missing" in row["checks_failed"]


async def test_the_benchmark_checks_each_output_after_showing_it(open_runtime: RuntimeOpener):
    runtime = open_runtime('[routes.demo]\nkind = "demo"\n')
    runner = runtime.bench_runner()
    row, _plan, items = runner.open(BenchPlan(routes=("demo",), families=("poster",)), source="cli")
    order: list[str] = []

    def shown(_progress: object, _item: object, run: Run | None) -> None:
        if run is not None:
            order.append(f"shown {run.id}")

    def checked(_item: object, run: Run, report: CheckReport) -> None:
        order.append(f"checked {run.id}")
        assert {line.name for line in report.lines()} >= {"text", "delivery"}

    progress = await runner.run(items, bench_id=row.id, on_progress=shown, on_checked=checked)
    ids = [run.id for _, run in progress.outcomes]
    assert len(ids) == 2
    for run_id in ids:
        assert order.index(f"shown {run_id}") < order.index(f"checked {run_id}")
    figures = runtime.checks.checklog.figures(bench_id=row.id)
    text = next(f for f in figures if f.name == "text")
    assert text.family == "poster" and text.ran == 2

"""The `imageroute` command as users run it: the README's first command in a fresh process, the
rest in-process through Typer's runner with the same environment settings."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app as cli_app

SETTINGS_ENV = ("IMAGEROUTE_CONFIG", "DATABASE_URL", "ASSET_STORE", "SLACK_BOT_TOKEN")
# Loading any of these makes every command pay for it; they load only for a route that needs it.
# The acceptance checks' OCR engine and image maths load on the first check, never for --help.
HEAVY_MODULES = (
    "openai",
    "google.genai",
    "boto3",
    "slack_bolt",
    "slack_sdk",
    "rapidocr_onnxruntime",
    "onnxruntime",
    "cv2",
    "skimage",
    "scipy",
    "imagehash",
    "numpy",
)


@pytest.fixture
def in_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder and no settings from the developer's environment."""
    monkeypatch.chdir(tmp_path)
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run_process(
    cwd: Path, *args: str, flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    return subprocess.run(
        [sys.executable, *flags, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli_app, list(args))


def test_gen_on_embedded_defaults_then_runs_and_export(in_folder: Path) -> None:
    result = run_process(in_folder, "gen", "a red bicycle")
    assert result.returncode == 0, result.stderr
    assert "run #1 demo: 1 image(s)" in result.stdout
    assert (in_folder / "data" / "imageroute.db").exists()
    pngs = list((in_folder / "data" / "assets").rglob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes().startswith(b"\x89PNG")

    listed = invoke("runs", "--json")
    runs = json.loads(listed.stdout)
    assert runs[0]["route_id"] == "demo" and runs[0]["status"] == "succeeded"
    assert runs[0]["output_assets"] == [str(pngs[0])]

    exported = invoke("export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == 1
    for field in (
        "route_owner",
        "billing_owner",
        "model_requested",
        "model_reported",
        "prompt",
        "size",
        "response_id",
        "latency_s",
        "cost_usd",
        "cost_basis",
        "created_at",
    ):
        assert rows[0][field] not in ("", None), field
    assert rows[0]["slack_response_url"] == ""

    jsonl = invoke("export", "--format", "jsonl", "--output", "out.jsonl")
    assert jsonl.exit_code == 0
    assert json.loads((in_folder / "out.jsonl").read_text().splitlines()[0])["id"] == 1


def test_help_loads_no_provider_sdk_no_slack_and_no_image_checks(tmp_path: Path) -> None:
    result = run_process(tmp_path, "--help", flags=("-X", "importtime"))
    assert result.returncode == 0 and "Usage" in result.stdout
    # -X importtime prints one line per module imported: "import time: self | total | name".
    loaded = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "typer" in loaded, "the import log was not read"
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY_MODULES))
    assert not heavy, f"`imageroute --help` imports {heavy}"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be"),
        ({"ASSET_STORE": "ftp://x"}, "ASSET_STORE must be"),
        ({"IMAGEROUTE_CONFIG": "missing.toml"}, "routes file not found"),
    ],
)
def test_bad_settings_stop_with_one_line(
    in_folder: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = invoke("gen", "x")
    assert result.exit_code == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_errors_name_file_route_and_variable(in_folder: Path) -> None:
    (in_folder / "imageroute.toml").write_text(
        '[routes.openai]\nkind = "openai"\napi_key = "${NOT_SET_ANYWHERE}"\n'
    )
    result = invoke("gen", "x")
    assert result.exit_code == 2
    assert "route 'openai'" in result.stderr and "NOT_SET_ANYWHERE" in result.stderr
    (in_folder / "imageroute.toml").write_text('[routes.demo]\nkind = "demo"\ncolour = 1\n')
    result = invoke("gen", "x")
    assert "imageroute.toml: route 'demo': unknown key 'colour'" in result.stderr


def test_serve_without_token_names_the_variable(in_folder: Path) -> None:
    result = invoke("serve")
    assert result.exit_code == 2
    assert "SLACK_BOT_TOKEN is required" in result.stderr


def test_advise_json_and_jsonl(in_folder: Path) -> None:
    result = invoke("advise", "--json", "we need stickers with transparent backgrounds")
    answer = json.loads(result.stdout)
    assert "transparency" in answer["caveats"]
    assert set(answer) >= {"route", "caveats", "why", "verify", "alternatives"}
    questions = in_folder / "q.jsonl"
    questions.write_text('{"q": "we are on GCP"}\nair-gapped on-prem GPUs\n\n')
    result = invoke("advise", "--jsonl", str(questions))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["route"] for line in lines] == ["google", "self-hosted"]


def test_db_upgrade(in_folder: Path) -> None:
    result = invoke("db", "upgrade")
    assert result.exit_code == 0 and "revision" in result.stdout


def test_comparison_from_cli_and_failure_exit_code(in_folder: Path) -> None:
    (in_folder / "imageroute.toml").write_text(
        '[routes.a]\nkind = "demo"\n[routes.b]\nkind = "demo"\n'
    )
    result = invoke("gen", "--route", "all", "two of them")
    assert result.exit_code == 0, result.output
    assert "run #1" in result.stdout and "run #2" in result.stdout
    result = invoke("gen", "no route given")
    assert result.exit_code == 2 and "Say which route" in result.stderr


def test_advise_names_todays_google_model_from_the_live_catalog(in_folder: Path) -> None:
    result = invoke("advise", "we're all in on Google Cloud")
    assert result.exit_code == 0
    # The name is the lifecycle data's (routes/data/lifecycle.toml), not the board's default.
    named = "Gemini 3 Pro Image (`gemini-3-pro-image`)"
    assert f"First benchmark: {named} on Vertex AI" in result.stdout
    assert (
        "The article named Imagen 4 Ultra; Google shut it down on 2026-08-17 and names "
        f"{named} as its replacement." in result.stdout
    )
    answer = json.loads(invoke("advise", "--json", "we're all in on Google Cloud").stdout)
    [change] = answer["lifecycle"]
    assert change["model"] == "gemini-3-pro-image" and change["status"] == "current"
    assert change["source"].startswith(
        "https://firebase.google.com/docs/ai-logic/imagen-models-migration"
    )


def test_export_counts_runs_of_unknown_cost_beside_the_total(in_folder: Path) -> None:
    from storage.db import make_engine
    from storage.runlog import RunLog
    from storage.tables import Run

    assert invoke("gen", "a red bicycle").exit_code == 0
    engine = make_engine(f"sqlite:///{in_folder}/data/imageroute.db")
    log = RunLog(engine)
    run = log.start(Run(route_id="mystery", route_kind="openai", model_requested="m", prompt="p"))
    assert run.id is not None
    log.finish(run.id, "succeeded", images=1, cost_usd=None, cost_basis="unknown")
    engine.dispose()
    result = invoke("export", "--format", "csv", "--output", "runs.csv")
    assert result.exit_code == 0
    assert "wrote 2 run(s) to runs.csv; cost 1 run unpriced (cost unknown" in result.stderr
    rows = list(csv.DictReader((in_folder / "runs.csv").open()))
    assert [(r["cost_usd"], r["cost_basis"]) for r in rows] == [("0.0", "free"), ("", "unknown")]

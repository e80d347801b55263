"""The `imageroute` command as users run it: a subprocess with environment settings."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("IMAGEROUTE_CONFIG", "DATABASE_URL", "ASSET_STORE", "SLACK_BOT_TOKEN")
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_gen_on_embedded_defaults_then_runs_and_export(tmp_path):
    result = run_cli(tmp_path, "gen", "a red bicycle")
    assert result.returncode == 0, result.stderr
    assert "run #1 demo: 1 image(s)" in result.stdout
    assert (tmp_path / "data" / "imageroute.db").exists()
    pngs = list((tmp_path / "data" / "assets").rglob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes().startswith(b"\x89PNG")

    listed = run_cli(tmp_path, "runs", "--json")
    runs = json.loads(listed.stdout)
    assert runs[0]["route_id"] == "demo" and runs[0]["status"] == "succeeded"
    assert runs[0]["output_assets"] == [str(pngs[0])]

    exported = run_cli(tmp_path, "export", "--format", "csv")
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

    jsonl = run_cli(tmp_path, "export", "--format", "jsonl", "--output", "out.jsonl")
    assert jsonl.returncode == 0
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])["id"] == 1


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be"),
        ({"ASSET_STORE": "ftp://x"}, "ASSET_STORE must be"),
        ({"IMAGEROUTE_CONFIG": "missing.toml"}, "routes file not found"),
    ],
)
def test_bad_settings_stop_with_one_line(tmp_path, env, expected):
    result = run_cli(tmp_path, "gen", "x", env=env)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_errors_name_file_route_and_variable(tmp_path):
    (tmp_path / "imageroute.toml").write_text(
        '[routes.openai]\nkind = "openai"\napi_key = "${NOT_SET_ANYWHERE}"\n'
    )
    result = run_cli(tmp_path, "gen", "x")
    assert result.returncode == 2
    assert "route 'openai'" in result.stderr and "NOT_SET_ANYWHERE" in result.stderr
    (tmp_path / "imageroute.toml").write_text('[routes.demo]\nkind = "demo"\ncolour = 1\n')
    result = run_cli(tmp_path, "gen", "x")
    assert "imageroute.toml: route 'demo': unknown key 'colour'" in result.stderr


def test_serve_without_token_names_the_variable(tmp_path):
    result = run_cli(tmp_path, "serve")
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is required" in result.stderr


def test_advise_json_and_jsonl(tmp_path):
    result = run_cli(tmp_path, "advise", "--json", "we need stickers with transparent backgrounds")
    answer = json.loads(result.stdout)
    assert "transparency" in answer["caveats"]
    assert set(answer) >= {"route", "caveats", "why", "verify", "alternatives"}
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"q": "we are on GCP"}\nair-gapped on-prem GPUs\n\n')
    result = run_cli(tmp_path, "advise", "--jsonl", str(questions))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["route"] for line in lines] == ["google", "self-hosted"]


def test_db_upgrade(tmp_path):
    result = run_cli(tmp_path, "db", "upgrade")
    assert result.returncode == 0 and "revision" in result.stdout


def test_comparison_from_cli_and_failure_exit_code(tmp_path):
    (tmp_path / "imageroute.toml").write_text(
        '[routes.a]\nkind = "demo"\n[routes.b]\nkind = "demo"\n'
    )
    result = run_cli(tmp_path, "gen", "--route", "all", "two of them")
    assert result.returncode == 0, result.stderr
    assert "run #1" in result.stdout and "run #2" in result.stdout
    result = run_cli(tmp_path, "gen", "no route given")
    assert result.returncode == 2 and "Say which route" in result.stderr

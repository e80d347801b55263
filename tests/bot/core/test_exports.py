"""Run-log exports at disk speed, on SQLite and PostgreSQL: one asset query per batch of runs
(not one per run), the same records as a run exported alone, secrets redacted, the
response_url never exported."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.core.exports import EXPORT_FIELDS, records, run_record, write_csv, write_jsonl
from bot.core.redaction import MASK, Redactor
from storage.assets import StoredAsset
from storage.db import make_engine, upgrade
from storage.runlog import RunLog
from storage.tables import Run

SECRET = "sk-live-export-secret-0042"


@pytest.fixture
def runlog(db_url: str) -> Iterator[RunLog]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield RunLog(engine)
    engine.dispose()


def _log(runlog: RunLog, runs: int) -> None:
    for i in range(runs):
        run = runlog.start(
            Run(
                route_id="gpt" if i % 2 else "flux",
                route_kind="openai",
                model_requested="gpt-image-2",
                prompt=f"poster {i} ünïcode" + (f" key={SECRET}" if i == 3 else ""),
                params={"background": "opaque", "n": i},
                slack_response_url="https://hooks.slack.com/commands/T0/1/secret",
                bench_id="b1" if i % 3 == 0 else None,
            )
        )
        assert run.id is not None
        if i % 5 == 4:
            runlog.finish(run.id, "failed", error_message=f"401 from provider: {SECRET}")
            continue
        runlog.finish(run.id, "succeeded", latency_s=1.5, cost_usd=0.04, images=2)
        for position in (1, 0):  # stored out of order: exported in position order
            stored = StoredAsset(
                path=f"runs/{run.id}-{position}.png",
                mime="image/png",
                bytes=10,
                sha256=f"{run.id:04d}{position}" * 8,
                width=8,
                height=8,
            )
            runlog.add_asset(run.id, stored, "output", position)
        runlog.add_asset(run.id, stored, "input", 0)  # inputs are not outputs


def _asset_queries(engine: Engine) -> tuple[list[str], Any]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM run_assets" in statement:
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    return seen, record


def test_streamed_records_match_runs_exported_alone_with_one_asset_query_a_batch(
    runlog: RunLog,
) -> None:
    _log(runlog, 45)
    redact = Redactor([SECRET])
    alone = [run_record(run, runlog, redact) for run in runlog.iter_all()]

    seen, listener = _asset_queries(runlog.engine)
    try:
        streamed = list(records(runlog, redact, batch=20))
    finally:
        sa.event.remove(runlog.engine, "before_cursor_execute", listener)
    assert len(seen) == 3  # 45 runs in batches of 20: one asset query per batch
    assert streamed == alone
    assert [r["id"] for r in streamed] == list(range(1, 46))

    first = streamed[0]
    assert first["output_assets"] == ["runs/1-0.png", "runs/1-1.png"]
    assert first["output_sha256"] == ["00010" * 8, "00011" * 8]
    assert first["slack_response_url"] is None
    assert first["params"] == {"background": "opaque", "n": 0}
    assert streamed[4]["output_assets"] == [] and streamed[4]["status"] == "failed"
    text = json.dumps(streamed)
    assert SECRET not in text and MASK in streamed[3]["prompt"] and MASK in text
    assert "hooks.slack.com" not in text


def test_csv_and_jsonl_carry_every_field(runlog: RunLog) -> None:
    _log(runlog, 7)
    redact = Redactor([SECRET])
    out = io.StringIO()
    assert write_csv(records(runlog, redact), out) == 7
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(EXPORT_FIELDS)
    assert json.loads(rows[0]["params"]) == {"background": "opaque", "n": 0}
    assert json.loads(rows[0]["output_assets"]) == ["runs/1-0.png", "runs/1-1.png"]
    assert rows[0]["prompt"] == "poster 0 ünïcode" and rows[0]["slack_response_url"] == ""
    assert rows[0]["created_at"].startswith("20") and "T" in rows[0]["created_at"]
    lines = io.StringIO()
    assert write_jsonl(records(runlog, redact, bench_id="b1"), lines) == 3
    ids = [json.loads(line)["id"] for line in lines.getvalue().splitlines()]
    assert ids == [1, 4, 7]


def test_csv_from_the_stored_json_text_says_what_the_decoded_values_say(runlog: RunLog) -> None:
    """`export --format csv` writes JSON columns as the text the database holds: the same
    values (and the same empty cells) as when they are decoded and encoded again."""
    _log(runlog, 5)
    runlog.update(2, params={"style": "ünïcode", "nested": {"a": [1, 2]}}, usage=None)
    redact = Redactor([SECRET])
    decoded, stored = io.StringIO(), io.StringIO()
    write_csv(records(runlog, redact), decoded)
    write_csv(records(runlog, redact, json_text=True), stored)
    json_cells = {"params", "usage", "provider_metadata", "input_assets", "cost_detail"}
    for a, b in zip(
        csv.DictReader(io.StringIO(decoded.getvalue())),
        csv.DictReader(io.StringIO(stored.getvalue())),
        strict=True,
    ):
        for name in EXPORT_FIELDS:
            if name in json_cells and a[name]:
                assert json.loads(a[name]) == json.loads(b[name]), name
            else:
                assert a[name] == b[name], name
    assert '"nested"' in stored.getvalue()


@pytest.mark.parametrize(
    "text",
    [
        "xoxb-1234567890-abcdefghij",
        "token xapp-1-A0ABCDEF-123456",
        "sk-proj-abcdefghijklmnop",
        "AKIAABCDEFGHIJKLMNOP",
        "AIzaSyA-abcdefghijklmnopqrstuvwxyz012345",
        "Authorization: Bearer abcdefghijklmnopqrstu",
        "x-key: abcdefghijklmnopqrstuvwx",
        "https://user:hunter2hunter2@db.example.com/x",
        "API_KEY=abcdefghijklmnopqrstuv",
    ],
)
def test_every_credential_shape_is_still_redacted(text: str) -> None:
    assert MASK in Redactor()(text)


def test_ordinary_text_passes_through_unchanged() -> None:
    for text in ("a red bicycle on a beach", "gpt-image-2", "1024x1024", "runs/2026/1-0.png"):
        assert Redactor()(text) == text

"""Run-log exports: every logged field, as CSV or JSON lines, streamed in batches."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO

from bot.core.redaction import Redactor
from storage.runlog import RunLog
from storage.tables import Run

RUN_FIELDS: tuple[str, ...] = tuple(Run.model_fields)
EXTRA_FIELDS = ("output_assets", "output_sha256")
EXPORT_FIELDS = RUN_FIELDS + EXTRA_FIELDS
# Never exported: a response_url can post into the user's channel for 30 minutes.
_HIDDEN = {"slack_response_url"}


def run_record(run: Run, runlog: RunLog, redact: Redactor) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name in RUN_FIELDS:
        value = getattr(run, name)
        if name in _HIDDEN:
            value = None
        if isinstance(value, datetime):
            value = value.isoformat()
        if isinstance(value, str):
            value = redact(value)
        record[name] = value
    outputs = runlog.assets(run.id or 0, role="output")
    record["output_assets"] = [a.path for a in outputs]
    record["output_sha256"] = [a.sha256 for a in outputs]
    return record


def records(
    runlog: RunLog, redact: Redactor, bench_id: str | None = None
) -> Iterator[dict[str, Any]]:
    for run in runlog.iter_all(bench_id=bench_id):
        yield run_record(run, runlog, redact)


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
        count += 1
    return count


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    writer = csv.DictWriter(out, fieldnames=list(EXPORT_FIELDS), extrasaction="ignore")
    writer.writeheader()
    count = 0
    for row in rows:
        flat = {
            k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
            for k, v in row.items()
        }
        writer.writerow(flat)
        count += 1
    return count

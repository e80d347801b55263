"""Run-log exports: every logged field and the run's acceptance checks, as CSV or JSON lines,
streamed in batches.

Every record carries its cost with its basis (`cost_usd`, `cost_basis`, `cost_detail`); a run
billed at a cost nothing prices has an empty `cost_usd` and basis `unknown`, and a total over an
export (`ExportTally`) counts such runs beside the known sum, never as $0.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from bot.core.redaction import Redactor
from storage.checks import CHECK_NAMES, CheckLog, summarise, verdict
from storage.runlog import RunLog
from storage.tables import Run, RunCheck

RUN_FIELDS: tuple[str, ...] = tuple(Run.model_fields)
# Per check: its status over the run's images (passed | failed | not_run, empty when it did not
# apply) and mean score; then the checks' verdict, what failed in words, and every check row.
CHECK_FIELDS: tuple[str, ...] = (
    *(f for name in CHECK_NAMES for f in (f"check_{name}", f"check_{name}_score")),
    "checks_verdict",
    "checks_failed",
    "checks",
)
EXTRA_FIELDS = ("output_assets", "output_sha256", *CHECK_FIELDS)
EXPORT_FIELDS = RUN_FIELDS + EXTRA_FIELDS
# Never exported: a response_url can post into the user's channel for 30 minutes.
_HIDDEN = {"slack_response_url"}


def run_record(
    run: Run, runlog: RunLog, redact: Redactor, checks: Sequence[RunCheck] = ()
) -> dict[str, Any]:
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
    record.update(check_fields(checks, redact))
    return record


def check_fields(checks: Sequence[RunCheck], redact: Redactor) -> dict[str, Any]:
    """The CHECK_FIELDS of one run from its check rows."""
    fields: dict[str, Any] = {f: None for f in CHECK_FIELDS}
    failed = []
    for summary in summarise(checks):
        fields[f"check_{summary.name}"] = summary.status
        fields[f"check_{summary.name}_score"] = (
            None if summary.score is None else round(summary.score, 4)
        )
        failed += [redact(r.reason) for r in summary.rows if r.status == "failed" and r.reason]
    outcome = verdict(checks)
    fields["checks_verdict"] = None if outcome is None else ("passed" if outcome else "failed")
    fields["checks_failed"] = "; ".join(failed) or None
    fields["checks"] = [
        {
            "name": r.name,
            "image": r.position,
            "status": r.status,
            "score": r.score,
            "threshold": r.threshold,
            "summary": r.summary,
            "reason": redact(r.reason) if r.reason else None,
        }
        for r in checks
    ]
    return fields


def records(
    runlog: RunLog,
    redact: Redactor,
    bench_id: str | None = None,
    checklog: CheckLog | None = None,
    batch: int = 500,
) -> Iterator[dict[str, Any]]:
    """Every run's record, oldest first; the checks are read a batch of runs at a time."""
    pending: list[Run] = []

    def flush() -> Iterator[dict[str, Any]]:
        ids = [r.id for r in pending if r.id is not None]
        checks = checklog.for_runs(ids) if checklog is not None else {}
        for run in pending:
            yield run_record(run, runlog, redact, checks.get(run.id or 0, []))
        pending.clear()

    for run in runlog.iter_all(bench_id=bench_id):
        pending.append(run)
        if len(pending) >= batch:
            yield from flush()
    yield from flush()


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


@dataclass
class ExportTally:
    """What an export holds: runs, their known cost, and runs billed at an unknown cost."""

    runs: int = 0
    known_usd: float = 0.0
    unpriced_runs: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.runs += 1
        cost = record.get("cost_usd")
        if cost is not None:
            self.known_usd = round(self.known_usd + float(cost), 6)
        elif (record.get("images") or 0) > 0 or record.get("task_id"):
            self.unpriced_runs += 1

    def counted(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The rows unchanged, counted on the way through (exports stay streamed)."""
        for row in rows:
            self.add(row)
            yield row

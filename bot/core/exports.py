"""Run-log exports: every logged field and the run's acceptance checks, as CSV or JSON lines,
streamed in batches.

Every record carries its cost with its basis (`cost_usd`, `cost_basis`, `cost_detail`); a run
billed at a cost nothing prices has an empty `cost_usd` and basis `unknown`, and a total over an
export (`ExportTally`) counts such runs beside the known sum, never as $0.
"""

from __future__ import annotations

import csv
import json
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import sqlalchemy as sa
from sqlmodel import SQLModel

from bot.core.redaction import Redactor
from storage.checks import CHECK_NAMES, CheckLog, CheckRow, summaries_verdict, summarise
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
# Values the bot itself chose from a short list: nothing to redact in them.
_OURS = {"status", "source", "route_kind", "board", "cost_basis", "error_class", "bench_family"}
_COLUMNS = SQLModel.metadata.tables["runs"].columns
_TEXT = tuple(
    c.name for c in _COLUMNS if isinstance(c.type, sa.String) and c.name not in _HIDDEN | _OURS
)
_TIMES = tuple(c.name for c in _COLUMNS if isinstance(c.type, sa.DateTime))
# Written as JSON text in a CSV cell: JSON columns and the lists added to each record.
_JSON = {c.name for c in _COLUMNS if isinstance(c.type, sa.JSON)} | {
    "output_assets",
    "output_sha256",
    "checks",
}


def export_record(
    values: Mapping[Any, Any],
    outputs: Iterable[tuple[str, str]],
    redact: Redactor,
    checks: Sequence[CheckRow] = (),
) -> dict[str, Any]:
    """One run's exported record from its column values, its outputs' (path, sha256) and its
    check rows.

    Every free-text column is redacted; the export runs this per run, so it works per column
    kind rather than testing each value's type."""
    record: dict[str, Any] = {name: values[name] for name in RUN_FIELDS}
    for name in _HIDDEN:
        record[name] = None
    for name in _TEXT:
        text = record[name]
        if text:
            record[name] = redact(text)
    for name in _TIMES:
        when = record[name]
        if when is not None:
            record[name] = when.isoformat()
    paths, digests = [], []
    for path, digest in outputs:
        paths.append(path)
        digests.append(digest)
    record["output_assets"] = paths
    record["output_sha256"] = digests
    record.update(check_fields(checks, redact))
    return record


def run_record(
    run: Run, runlog: RunLog, redact: Redactor, checks: Sequence[RunCheck] = ()
) -> dict[str, Any]:
    """One run's exported record (a few runs at a time: `runs --json`, `gen --json`)."""
    outputs = [(a.path, a.sha256) for a in runlog.assets(run.id or 0, role="output")]
    values = {name: getattr(run, name) for name in RUN_FIELDS}
    return export_record(values, outputs, redact, checks)


def check_fields(checks: Sequence[CheckRow], redact: Redactor) -> dict[str, Any]:
    """The CHECK_FIELDS of one run from its check rows."""
    fields: dict[str, Any] = dict.fromkeys(CHECK_FIELDS)
    if not checks:  # most runs: nothing to summarise
        fields["checks"] = []
        return fields
    failed = []
    summaries = summarise(checks)
    for summary in summaries:
        fields[f"check_{summary.name}"] = summary.status
        fields[f"check_{summary.name}_score"] = (
            None if summary.score is None else round(summary.score, 4)
        )
        failed += [redact(r.reason) for r in summary.rows if r.status == "failed" and r.reason]
    outcome = summaries_verdict(summaries)
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
    *,
    batch: int = 2000,
    json_text: bool = False,
) -> Iterator[dict[str, Any]]:
    """Every run's record, oldest first, streamed: a batch of runs, one query for all their
    outputs and one for all their checks at a time, so memory stays flat and the cost per run
    stays small at any size. With `json_text` (for write_csv), JSON columns stay the JSON
    text the database holds (StoredJson) rather than being decoded only to be encoded again."""
    for rows in runlog.row_batches(bench_id=bench_id, size=batch, json_text=json_text):
        values: Sequence[Mapping[Any, Any]] = (
            [_stored_json(row) for row in rows] if json_text else rows
        )
        ids = [row["id"] for row in rows]
        outputs = runlog.output_files(ids)
        checks = checklog.values_for_runs(ids) if checklog is not None else {}
        for row in values:
            run_id = row["id"]
            yield export_record(row, outputs.get(run_id, ()), redact, checks.get(run_id, ()))


class StoredJson(str):
    """A JSON column's value as the JSON text the database holds."""


_JSON_COLUMNS = tuple(c.name for c in _COLUMNS if isinstance(c.type, sa.JSON))


def _stored_json(row: Mapping[Any, Any]) -> dict[Any, Any]:
    values = dict(row)
    for name in _JSON_COLUMNS:
        text = values[name]
        # A JSON null is stored as the text `null`: exported as no value, as when decoded.
        values[name] = None if text is None or text == "null" else StoredJson(text)
    return values


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
        count += 1
    return count


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(EXPORT_FIELDS)
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    structured = [i for i, name in enumerate(EXPORT_FIELDS) if name in _JSON]
    cells = operator.itemgetter(*EXPORT_FIELDS)
    count = 0
    for row in rows:
        values = list(cells(row))
        for i in structured:  # lists and objects as JSON text in their cell
            value = values[i]
            if value is not None and not isinstance(value, StoredJson):
                values[i] = dumps(value)
        writer.writerow(values)
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

"""`imageroute runs` and `imageroute export`: the run log in the terminal, as CSV or JSON lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.app import app
from bot.cli.common import fail, open_runtime, user_errors


@app.command()
def runs(
    limit: Annotated[int, typer.Option(help="How many of the latest runs.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array on stdout.")] = False,
) -> None:
    """The latest runs from the run log."""
    with user_errors():
        runtime = open_runtime()
        from bot.core.exports import run_record
        from bot.core.figures import money, seconds

        rows = runtime.runlog.recent(limit)
        if as_json:
            checks = runtime.checks.checklog.for_runs(r.id for r in rows if r.id is not None)
            data = [
                run_record(r, runtime.runlog, runtime.redactor, checks.get(r.id or 0, []))
                for r in rows
            ]
            typer.echo(json.dumps(data, indent=2, default=str))
            return
        if not rows:
            typer.echo('No runs yet. Try: imageroute gen "a red bicycle"')
            return
        for r in rows:
            typer.echo(
                f"#{r.id:<5} {r.created_at:%Y-%m-%d %H:%M:%S} {r.route_id:<16} {r.status:<11} "
                f"{seconds(r.latency_s):>8} {money(r.cost_usd, r.cost_basis):>14}  "
                f"{(r.error_message or r.prompt)[:60]}"
            )


@app.command()
def export(
    format: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
    bench: Annotated[
        str | None, typer.Option("--bench", help="Only this benchmark's runs.")
    ] = None,
) -> None:
    """Every logged field of every run, as CSV or JSON lines."""
    if format not in ("csv", "jsonl"):
        fail("--format must be csv or jsonl")
    with user_errors():
        runtime = open_runtime()
        from bot.core.exports import ExportTally, records, write_csv, write_jsonl
        from bot.core.figures import spend

        writer = write_csv if format == "csv" else write_jsonl
        tally = ExportTally()
        rows = tally.counted(
            records(
                runtime.runlog,
                runtime.redactor,
                bench,
                runtime.checks.checklog,
                json_text=format == "csv",
            )
        )
        if output is None:
            count = writer(rows, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                count = writer(rows, handle)
        where = f" to {output}" if output is not None else ""
        note = ""
        if tally.unpriced_runs:
            note = " (cost unknown: cost_usd empty, cost_basis unknown)"
        typer.echo(
            f"wrote {count} run(s){where}; cost {spend(tally.known_usd, tally.unpriced_runs)}"
            f"{note}",
            err=True,
        )

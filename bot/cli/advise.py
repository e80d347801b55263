"""`imageroute advise`: which route to benchmark first, from the route board."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.app import app
from bot.cli.common import fail

if TYPE_CHECKING:
    from advisor import Advice


@app.command()
def advise(
    question: Annotated[str | None, typer.Argument(help="The question, in plain words.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON answer.")] = False,
    jsonl: Annotated[
        Path | None, typer.Option("--jsonl", help="One question per line (JSON with `q`, or text).")
    ] = None,
) -> None:
    """Which route to benchmark first, from the route board (no network, no account)."""
    from advisor import advise
    from bot.core.lifecycle import model_facts

    models = model_facts()  # the live lifecycle catalog: models named as of today

    def run_advice(text: str) -> Advice:
        return advise(text, models=models)

    if jsonl is not None:
        try:
            handle = sys.stdin if str(jsonl) == "-" else jsonl.open(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read {jsonl}: {exc.strerror}")
        with handle:
            for number, line in enumerate(handle, 1):
                text = line.strip()
                if not text:
                    continue
                if text.startswith("{"):
                    try:
                        text = str(json.loads(text).get("q", ""))
                    except (json.JSONDecodeError, AttributeError):
                        fail(f"{jsonl}:{number}: not a JSON object with a `q` field")
                typer.echo(json.dumps(run_advice(text).to_json(), ensure_ascii=False))
        return
    if question is None:
        fail('give a question, e.g. imageroute advise "we are on GCP and need logos"')
    answer = run_advice(question)
    if as_json:
        typer.echo(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
    else:
        typer.echo(answer.to_text())

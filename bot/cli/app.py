"""The `imageroute` Typer application that every command module adds itself to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="imageroute",
    help="Choose, compare and monitor image-generation routes, from Slack or the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

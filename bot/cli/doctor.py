"""`imageroute doctor`: is this setup ready? One line per problem with its fix; exit 1 if any."""

from __future__ import annotations

import asyncio

import typer

from bot.cli.app import app
from bot.cli.common import settings, user_errors


@app.command()
def doctor() -> None:
    """Check the routes file (models, prices, ${VARS}), each route's credentials (free checks
    only), the Slack token and scopes, the database and the asset store."""
    from bot.core.redaction import Redactor, install

    install(Redactor())  # a provider SDK's own log lines pass the redactor too
    from bot.wiring.doctor import Finding, diagnose, problems
    from bot.wiring.settings import SettingsError

    try:
        current = settings()
    except SettingsError as exc:
        typer.echo(
            Finding("problem", "settings", str(exc), "correct it in the environment or .env").line()
        )
        raise typer.Exit(1) from None
    with user_errors():
        findings = asyncio.run(diagnose(current))
    for finding in findings:
        typer.echo(finding.line())
    found = problems(findings)
    if found:
        typer.echo(f"{len(found)} problem(s) found.")
        raise typer.Exit(1)
    typer.echo("No problems found.")

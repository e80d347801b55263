"""`imageroute serve`, `imageroute prober` and `imageroute db upgrade`: the long-running roles."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Annotated

import typer

from bot.cli.app import app
from bot.cli.common import redacted_settings, settings, setup_logging, user_errors

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def serve(
    http: Annotated[bool, typer.Option("--http", help="Serve HTTP (POST /slack/events).")] = False,
    port: Annotated[int, typer.Option(help="HTTP port.")] = 3000,
    host: Annotated[str, typer.Option(help="HTTP bind address.")] = "0.0.0.0",  # noqa: S104
    probes: Annotated[
        bool, typer.Option("--probes/--no-probes", help="Run scheduled health probes here.")
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the Slack bot (Socket Mode by default, --http for the Events API over HTTP)."""
    setup_logging(verbose, logging.INFO)
    with user_errors():
        # Start-up builds hundreds of thousands of objects that live as long as the process
        # (modules, the provider SDKs' types): the cyclic collector would walk them again and
        # again for nothing, a quarter of the time to ready. It resumes once the process is
        # ready (bot.wiring.serve.settled).
        gc.disable()
        from bot.wiring.serve import serve as run_serve

        s = redacted_settings()
        asyncio.run(run_serve(s, http=http, port=port, host=host, probes=probes))


@app.command()
def prober(
    port: Annotated[
        int | None,
        typer.Option(
            help="Port of GET /healthz and /metrics (default PROBER_PORT, else 3001; 0: none).",
            min=0,
            max=65535,
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Bind address of that port.")] = "0.0.0.0",  # noqa: S104
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run only the scheduled health probes (for deployments with several bot replicas)."""
    setup_logging(verbose, logging.INFO)
    with user_errors():
        gc.disable()  # until ready, as for `serve`
        from bot.wiring.serve import run_prober

        asyncio.run(run_prober(redacted_settings(), port=port, host=host))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (also done at every start)."""
    with user_errors():
        from storage.db import current_revision, make_engine, upgrade

        s = settings()
        engine = make_engine(s.database_url)
        upgrade(engine)
        typer.echo(f"database at revision {current_revision(engine)}")


@db_app.command("reconcile")
def db_reconcile() -> None:
    """Store results kept in the local spool (IMAGEROUTE_SPOOL) while the asset store or the
    database was down; the bot also does this at start-up and every few seconds."""
    with user_errors():
        from bot.cli.common import open_runtime

        runtime = open_runtime()
        try:
            result = runtime.spool.reconcile(runtime.assets, runtime.runlog)
        finally:
            runtime.engine.dispose()
        typer.echo(f"{result.done} result(s) stored, {result.waiting} still waiting")
        for reason in result.reasons:
            typer.echo(f"  waiting: {reason}", err=True)
        if result.waiting:
            raise typer.Exit(1)

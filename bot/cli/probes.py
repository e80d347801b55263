"""`imageroute probe`: one round of health probes, printed."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from bot.cli.app import app
from bot.cli.common import open_runtime, setup_logging, user_errors


@app.command()
def probe(
    route: Annotated[
        str | None, typer.Option("--route", "-r", help="Only this route (default: all).")
    ] = None,
) -> None:
    """Run each route's health probe once, record it and print the result."""
    setup_logging()
    with user_errors():
        runtime = open_runtime("cli")
        # A paid (generate) probe runs only where the spend policy allows it.
        ids = [runtime.validator.route(route)] if route is not None else None
        monitor = runtime.monitor(None)

        async def once() -> list[Any]:
            try:
                # A generate probe holds spend while it runs: this process must look alive.
                await runtime.start_worker(sweep=False)
                return await monitor.probe(ids)
            finally:
                await runtime.aclose()

        checks = asyncio.run(once())
        if not checks:
            typer.echo('No route has probes enabled (probe = "off").')
        for c in checks:
            status = "ok" if c.ok else f"FAILED ({c.error_class}): {c.error_message}"
            extra = f" · request id {c.request_id}" if c.request_id else ""
            cost = f" · ${c.cost_usd:.4f}" if c.cost_usd else ""
            typer.echo(
                f"{c.route_id}: {c.probe_kind} probe {status} · "
                f"{c.latency_s or 0:.2f} s{cost}{extra}"
            )
        if any(not c.ok for c in checks):
            raise typer.Exit(1)

"""`imageroute bench`: the five-family benchmark on the configured routes, with its report."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli.app import app
from bot.cli.common import fail, open_runtime, setup_logging, user_errors

if TYPE_CHECKING:
    from bot.benchmark.plan import BenchItem, BenchProgress
    from bot.benchmark.runner import BenchRunner
    from bot.wiring.runtime import Runtime
    from storage.tables import Run


def _csv(value: str | None) -> tuple[str, ...] | None:
    """`a, b` -> ("a", "b"); None when the option was not given."""
    items = tuple(x.strip() for x in (value or "").split(",") if x.strip())
    return items or None


@app.command()
def bench(
    routes: Annotated[
        str | None, typer.Option("--routes", help="Route ids a,b (default: every route).")
    ] = None,
    families: Annotated[
        str | None,
        typer.Option(help="product,poster,edit,assistant,edge (default: all five)."),
    ] = None,
    repeat: Annotated[
        int | None, typer.Option(help="Runs of each prompt per route (default 1).")
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost", help="USD cap, checked before each call (list prices)."),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Calls in flight per route (default 2).")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(help="Continue this benchmark id (its stored options) without redoing."),
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option(help="Your own prompt set (TOML, see docs/benchmark.md).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Report folder (default ./bench-reports/<id>).")
    ] = None,
) -> None:
    """Run the five-family benchmark on routes; every output is logged; writes a report."""
    setup_logging()
    with user_errors():
        from bot.benchmark.plan import BenchPlan
        from bot.benchmark.prompts import BenchError

        runtime = open_runtime("bench")
        options: dict[str, Any] = {
            "routes": _csv(routes),
            "families": _csv(families),
            "repeat": repeat,
            "max_cost": max_cost,
            "per_route": concurrency,
            "prompt_set": prompts,
        }
        runner = runtime.bench_runner()
        try:
            plan = None if resume else BenchPlan(routes=tuple(runtime.route_ids))
            row, plan, items = runner.open(plan, resume=resume, source="cli", **options)
        except BenchError as exc:
            fail(str(exc))
        typer.echo(
            f"benchmark {row.id}: {len(items)} outputs on {', '.join(plan.routes)}"
            + (f", budget ${plan.max_cost:.2f}" if plan.max_cost is not None else "")
        )
        try:
            progress = asyncio.run(_run(runtime, runner, items, row.id, plan.max_cost))
        except BenchError as exc:  # e.g. a daily cap narrowed the budget onto an unpriced route
            fail(str(exc))
        except KeyboardInterrupt:
            typer.echo(f"\ninterrupted; resume with: imageroute bench --resume {row.id}", err=True)
            raise typer.Exit(130) from None
        _report(runtime, progress, plan.routes, out)


async def _run(
    runtime: Runtime,
    runner: BenchRunner,
    items: list[BenchItem],
    bench_id: str,
    max_cost: float | None,
) -> BenchProgress:
    # A live heartbeat: no other process takes our runs for orphans.
    await runtime.start_worker(sweep=False)
    with typer.progressbar(length=len(items), label="running", file=sys.stderr) as bar:
        last = [0]

        def advance(progress: BenchProgress, _item: BenchItem, _run: Run | None) -> None:
            bar.update(progress.done - last[0])
            last[0] = progress.done

        try:
            return await runner.run(
                items, bench_id=bench_id, max_cost=max_cost, on_progress=advance
            )
        finally:
            await runtime.aclose()


def _report(
    runtime: Runtime, progress: BenchProgress, routes: tuple[str, ...], out: Path | None
) -> None:
    from bot.benchmark.report import build_report, count_outputs, table_lines, write_report

    report = build_report(
        progress, runtime.runlog, runtime.assets, list(routes), runtime.checks.checklog
    )
    folder = out or Path("bench-reports") / progress.bench_id
    write_report(report, folder)
    typer.echo(f"done {progress.bench_id}: {count_outputs(progress).sentence()}")
    # The same table as the report's and the Slack thread's: success, latency, cost, checks.
    typer.echo("\n".join(table_lines(report.cells)))
    typer.echo(f"report: {folder / 'summary.md'} (and summary.html)")
    if any(why.startswith(("budget", "route daily")) for _, why in progress.skipped):
        typer.echo(
            f"the budget held some back; raise it with: imageroute bench --resume "
            f"{progress.bench_id} --max-cost USD"
        )

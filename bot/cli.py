"""The `imageroute` command: a thin layer over the library (imports are lazy so --help is fast)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.settings import Settings

app = typer.Typer(
    name="imageroute",
    help="Choose, compare and monitor image-generation routes, from Slack or the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"imageroute: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Known problems become one line on stderr, never a traceback."""
    from bot.settings import SettingsError
    from routes.config import ConfigError
    from routes.errors import InvalidRequest
    from storage.assets import AssetStoreError
    from storage.db import DatabaseError

    try:
        yield
    except (SettingsError, ConfigError, DatabaseError, AssetStoreError, InvalidRequest) as exc:
        fail(str(exc))


def setup_logging(verbose: bool = False, level: int = logging.WARNING) -> None:
    from bot.redaction import Redactor, install

    logging.basicConfig(
        level=logging.DEBUG if verbose else level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "botocore", "urllib3", "slack_sdk", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install(Redactor())


def settings() -> Settings:
    from bot.settings import load_settings

    return load_settings()


def redacted_settings() -> Settings:
    """Settings for a long-running role, with its Slack secrets redacted from every log line
    from here on (route secrets are added when the runtime opens)."""
    from bot.redaction import Redactor, install

    s = settings()
    install(Redactor(s.secrets()))
    return s


def open_runtime(role: str = "cli") -> Runtime:
    from bot.runtime import Runtime

    s = settings()
    runtime = Runtime.open(s, role=role)
    from bot.redaction import install

    install(runtime.redactor)
    return runtime


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
        from bot.serve import serve as run_serve

        s = redacted_settings()
        asyncio.run(run_serve(s, http=http, port=port, host=host, probes=probes))


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
        if route is not None and route not in runtime.executors:
            fail(f"There is no route `{route}` (configured: {', '.join(runtime.route_ids)}).")
        monitor = runtime.monitor(None)
        ids = [route] if route else None

        async def once() -> list[Any]:
            try:
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


@app.command()
def prober(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run only the scheduled health probes (for deployments with several bot replicas)."""
    setup_logging(verbose, logging.INFO)
    with user_errors():
        from bot.serve import run_prober

        asyncio.run(run_prober(redacted_settings()))


@app.command()
def gen(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    route: Annotated[
        str | None, typer.Option("--route", "-r", help="Route id, a,b, all or board:<row>.")
    ] = None,
    size: Annotated[str | None, typer.Option(help="WxH or W:H.")] = None,
    quality: Annotated[str | None, typer.Option(help="low|medium|high|auto.")] = None,
    n: Annotated[int, typer.Option(help="Images per route (1..4).")] = 1,
    background: Annotated[str | None, typer.Option(help="transparent|opaque|auto.")] = None,
    format: Annotated[str | None, typer.Option("--format", help="png|jpeg|webp.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed, where the route takes one.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also copy the images into this folder.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """Generate on one or more routes; every run is logged like a Slack run."""
    setup_logging()
    with user_errors():
        from bot.commands import build_request, select_routes

        options: dict[str, str] = {"prompt": prompt, "n": str(n)}
        for key, value in (
            ("size", size),
            ("quality", quality),
            ("background", background),
            ("format", format),
            ("seed", None if seed is None else str(seed)),
        ):
            if value is not None:
                options[key] = value
        request = build_request(options)
        runtime = open_runtime()
        route_ids = select_routes(
            route,
            runtime.route_ids,
            runtime.board_rows,
            runtime.config.limits.max_routes_per_comparison,
        )
        runtime.runs.check(route_ids, request)
        code = asyncio.run(_gen(runtime, route_ids, request, output, as_json))
    raise typer.Exit(code)


async def _gen(
    runtime: Runtime, route_ids: tuple[str, ...], request: Any, output: Path | None, as_json: bool
) -> int:
    import uuid

    from bot.export import run_record
    from bot.messages import money, seconds
    from bot.runs import RunOrigin
    from routes.media import extension_for

    group = uuid.uuid4().hex[:16] if len(route_ids) > 1 else None
    origin = RunOrigin(source="cli", group_id=group)
    try:
        outcomes = await asyncio.gather(
            *(runtime.runs.run(rid, request, origin) for rid in route_ids)
        )
    finally:
        await runtime.aclose()
    failed = 0
    records = []
    for outcome in outcomes:
        run = outcome.run
        if output is not None and outcome.images:
            output.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (CLI, once)
            for i, image in enumerate(outcome.images):
                (
                    output / f"run{run.id}-{run.route_id}-{i}.{extension_for(image.mime)}"
                ).write_bytes(image.data)
        if not outcome.ok:
            failed += 1
        if as_json:
            records.append(run_record(run, runtime.runlog, runtime.redactor))
            continue
        if outcome.ok:
            paths = ", ".join(a.path for a in outcome.stored)
            typer.echo(
                f"run #{run.id} {run.route_id}: {run.images} image(s) · model "
                f"{run.model_reported or run.model_requested} · {run.size} · "
                f"{money(run.cost_usd, run.cost_basis)} · {seconds(run.latency_s)} · "
                f"response id {run.response_id} · billed to {run.billing_owner or 'unknown'}\n"
                f"  saved: {paths}"
            )
        else:
            typer.echo(
                f"run #{run.id} {run.route_id}: failed ({run.error_class}): {run.error_message}",
                err=True,
            )
    if as_json:
        typer.echo(json.dumps(records, indent=2, default=str))
    return 1 if failed else 0


@app.command()
def runs(
    limit: Annotated[int, typer.Option(help="How many of the latest runs.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array on stdout.")] = False,
) -> None:
    """The latest runs from the run log."""
    with user_errors():
        runtime = open_runtime()
        from bot.export import run_record
        from bot.messages import money, seconds

        rows = runtime.runlog.recent(limit)
        if as_json:
            data = [run_record(r, runtime.runlog, runtime.redactor) for r in rows]
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
        from bot.export import records, write_csv, write_jsonl

        writer = write_csv if format == "csv" else write_jsonl
        rows = records(runtime.runlog, runtime.redactor, bench)
        if output is None:
            count = writer(rows, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                count = writer(rows, handle)
            typer.echo(f"wrote {count} run(s) to {output}", err=True)


@app.command()
def advise(
    question: Annotated[str | None, typer.Argument(help="The question, in plain words.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON answer.")] = False,
    jsonl: Annotated[
        Path | None, typer.Option("--jsonl", help="One question per line (JSON with `q`, or text).")
    ] = None,
) -> None:
    """Which route to benchmark first, from the route board (no network, no account)."""
    from advisor import advise as run_advice

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
        from bot.benchmark import BenchError, BenchPlan, BenchRunner
        from bot.benchmark_report import build_report, write_report

        runtime = open_runtime("bench")
        options: dict[str, Any] = {
            "routes": _csv(routes),
            "families": _csv(families),
            "repeat": repeat,
            "max_cost": max_cost,
            "per_route": concurrency,
            "prompt_set": prompts,
        }
        runner = BenchRunner(runtime)
        try:
            plan = None if resume else BenchPlan(routes=tuple(runtime.route_ids))
            row, plan, items = runner.open(plan, resume=resume, source="cli", **options)
        except BenchError as exc:
            fail(str(exc))
        typer.echo(
            f"benchmark {row.id}: {len(items)} outputs on {', '.join(plan.routes)}"
            + (f", budget ${plan.max_cost:.2f}" if plan.max_cost is not None else "")
        )

        async def go() -> Any:
            await runtime.start_worker()  # a live heartbeat: no other process interrupts our runs
            with typer.progressbar(length=len(items), label="running", file=sys.stderr) as bar:
                last = [0]

                def advance(progress: Any, _item: Any, _run: Any) -> None:
                    bar.update(progress.done - last[0])
                    last[0] = progress.done

                try:
                    return await runner.run(
                        items, bench_id=row.id, max_cost=plan.max_cost, on_progress=advance
                    )
                finally:
                    await runtime.aclose()

        try:
            progress = asyncio.run(go())
        except KeyboardInterrupt:
            typer.echo(f"\ninterrupted; resume with: imageroute bench --resume {row.id}", err=True)
            raise typer.Exit(130) from None
        report = build_report(progress, runtime.runlog, runtime.assets, list(plan.routes))
        folder = out or Path("bench-reports") / progress.bench_id
        write_report(report, folder)
        ok = sum(1 for _, run in progress.outcomes if run.status == "succeeded")
        typer.echo(
            f"done {progress.bench_id}: {ok} of {len(progress.outcomes)} outputs succeeded, "
            f"{len(progress.skipped)} skipped, ${progress.spent_usd:.2f} spent"
        )
        typer.echo(f"report: {folder / 'summary.md'} (and summary.html)")
        if any(why.startswith(("budget", "route daily")) for _, why in progress.skipped):
            typer.echo(
                f"the budget held some back; raise it with: imageroute bench --resume "
                f"{progress.bench_id} --max-cost USD"
            )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (also done at every start)."""
    with user_errors():
        from storage.db import current_revision, make_engine, upgrade

        s = settings()
        engine = make_engine(s.database_url)
        upgrade(engine)
        typer.echo(f"database at revision {current_revision(engine)}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

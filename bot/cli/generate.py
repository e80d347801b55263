"""`imageroute gen`: one generation (or a comparison) from the terminal, logged like Slack's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.app import app
from bot.cli.common import fail, open_runtime, setup_logging, user_errors

if TYPE_CHECKING:
    from bot.checks import CheckReport
    from bot.core.requests import CheckedRequest
    from bot.core.runs import RunOutcome
    from bot.wiring.runtime import Runtime
    from routes.model import InputImage


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
    image: Annotated[
        list[Path] | None,
        typer.Option("--image", help="Edit this image (PNG, JPEG or WebP); repeat for several."),
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option(help="Edit mask: PNG, size of the first image, transparent where to edit."),
    ] = None,
    moderation: Annotated[str | None, typer.Option(help="low|auto, where a route has it.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also copy the images into this folder.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """Generate on one or more routes (or edit --image files); every run is logged like a Slack
    run."""
    setup_logging()
    with user_errors():
        import dataclasses

        from bot.core.requests import build_request

        options: dict[str, str] = {"prompt": prompt, "n": str(n)}
        for key, value in (
            ("size", size),
            ("quality", quality),
            ("background", background),
            ("format", format),
            ("seed", None if seed is None else str(seed)),
            ("moderation", moderation),
        ):
            if value is not None:
                options[key] = value
        # The options are checked before any setting is read: a typo costs nothing.
        request = build_request(options)
        if mask is not None and not image:
            fail("--mask needs the image it masks: add --image FILE.")
        if image:
            request = dataclasses.replace(
                request,
                input_images=tuple(_input_file(path) for path in image),
                mask=_input_file(mask) if mask is not None else None,
            )
        runtime = open_runtime()
        checked = runtime.validator.check(runtime.validator.select(route), request)
        code = asyncio.run(_gen(runtime, checked, output, as_json))
    raise typer.Exit(code)


def _input_file(path: Path) -> InputImage:
    """An image file given on the command line, read and checked like a Slack upload."""
    from routes.errors import InvalidRequest
    from routes.media import MAX_INPUT_BYTES, sniff_mime
    from routes.model import InputImage

    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise InvalidRequest(f"{path} is larger than 20 MB; edits take at most 20 MB.")
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}") from None
    mime = sniff_mime(data)
    if mime is None:
        raise InvalidRequest(f"{path} is not a PNG, JPEG or WebP image.")
    return InputImage(data=data, mime=mime, name=path.name, source=f"file:{path}")


async def _gen(
    runtime: Runtime, checked: CheckedRequest, output: Path | None, as_json: bool
) -> int:
    import uuid

    from bot.core.exports import run_record
    from bot.core.runs import RunOrigin

    route_ids = checked.route_ids
    group = uuid.uuid4().hex[:16] if len(route_ids) > 1 else None
    origin = RunOrigin(source="cli", group_id=group)
    from bot.core.spend import OverCap

    try:
        # A live heartbeat: no other process takes this run for an orphan while it runs.
        await runtime.start_worker(sweep=False)
        try:
            hold = await runtime.spend.reserve(route_ids, None, checked.request)
        except OverCap as exc:
            fail(str(exc))
        try:
            outcomes = await asyncio.gather(
                *(runtime.runs.run(rid, checked.request, origin) for rid in route_ids)
            )
        finally:
            await runtime.spend.release(hold)
        reports = [
            await runtime.checks.check(o.run, [i.data for i in o.images], checked.request)
            for o in outcomes
        ]
    finally:
        await runtime.aclose()
    if output is not None:
        await asyncio.to_thread(_copy_images, outcomes, output)
    if as_json:
        records = [
            run_record(o.run, runtime.runlog, runtime.redactor, report.rows)
            for o, report in zip(outcomes, reports, strict=True)
        ]
        typer.echo(json.dumps(records, indent=2, default=str))
    else:
        for outcome, report in zip(outcomes, reports, strict=True):
            _print(outcome, report)
    return 0 if all(o.ok for o in outcomes) else 1


def _copy_images(outcomes: list[RunOutcome], output: Path) -> None:
    from routes.media import extension_for

    for outcome in outcomes:
        run = outcome.run
        for i, image in enumerate(outcome.images):
            output.mkdir(parents=True, exist_ok=True)
            name = f"run{run.id}-{run.route_id}-{i}.{extension_for(image.mime)}"
            (output / name).write_bytes(image.data)


def _print(outcome: RunOutcome, report: CheckReport) -> None:
    from bot.core.figures import money, seconds

    run = outcome.run
    if not outcome.ok:
        typer.echo(
            f"run #{run.id} {run.route_id}: failed ({run.error_class}): {run.error_message}",
            err=True,
        )
        if outcome.kept:
            typer.echo(f"  {outcome.kept}", err=True)
        return
    paths = ", ".join(a.path for a in outcome.stored)
    typer.echo(
        f"run #{run.id} {run.route_id}: {run.images} image(s) · model "
        f"{run.model_reported or run.model_requested} · {run.size} · "
        f"{money(run.cost_usd, run.cost_basis)} · {seconds(run.latency_s)} · "
        f"response id {run.response_id} · billed to {run.billing_owner or 'unknown'}\n"
        f"  saved: {paths or 'not yet'}"
    )
    if report.rows:
        typer.echo(f"  checks: {report.text()}")
        for line in report.lines():
            for reason in line.reasons if line.status == "failed" else ():
                typer.echo(f"    {line.name}: {reason}")
    if outcome.kept:
        typer.echo(f"  {outcome.kept} (`imageroute db reconcile` stores it now)", err=True)

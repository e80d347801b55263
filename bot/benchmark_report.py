"""The benchmark report: per route and family success, latency, cost, consistency and verdicts;
a contact sheet per family, a latency/cost chart, and a Markdown summary in a folder."""

from __future__ import annotations

import io
import itertools
import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFont

from bot.benchmark import FAMILIES, BenchProgress
from storage.assets import AssetStore
from storage.runlog import RunLog, percentile
from storage.tables import Run

log = logging.getLogger(__name__)

SHEET_TILE = 256
SHEET_LABEL = 28


@dataclass(frozen=True)
class Cell:
    route_id: str
    family: str
    runs: int
    succeeded: int
    p50_s: float | None
    p95_s: float | None
    cost_per_image: float | None
    consistency: float | None  # 1 = identical outputs across repeats, None = no repeats
    survives: int
    fails: int

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.runs if self.runs else None


def _thumb(data: bytes) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("L").resize((32, 32))
    except OSError:
        return None


def consistency(images: Sequence[bytes]) -> float | None:
    """1 - mean pairwise difference of 32x32 greyscale thumbnails (0..1), over the outputs of
    one prompt's repeats on one route. None with fewer than two outputs."""
    thumbs = [t for t in (_thumb(d) for d in images) if t is not None]
    if len(thumbs) < 2:
        return None
    diffs = []
    for a, b in itertools.combinations(thumbs, 2):
        hist = ImageChops.difference(a, b).histogram()
        diffs.append(sum(i * count for i, count in enumerate(hist)) / (255 * 32 * 32))
    return 1 - statistics.fmean(diffs)


def build_cells(
    progress: BenchProgress, runlog: RunLog, assets: AssetStore
) -> tuple[list[Cell], dict[int, bytes]]:
    """Stats per (route, family) and the first output image of every run (for the sheets)."""
    images: dict[int, bytes] = {}
    by_cell: dict[tuple[str, str], list[Run]] = {}
    for item, run in progress.outcomes:
        by_cell.setdefault((item.route_id, item.prompt.family), []).append(run)
        if run.id is not None and run.status == "succeeded":
            outputs = runlog.assets(run.id, role="output")
            if outputs:
                try:
                    images[run.id] = assets.get(outputs[0].path)
                except Exception as exc:  # a missing file must not sink the whole report
                    log.warning("run %s: output not readable for the report: %s", run.id, exc)
    cells = []
    for (rid, family), runs in sorted(by_cell.items()):
        ok = [r for r in runs if r.status == "succeeded"]
        latencies = [r.latency_s for r in ok if r.latency_s is not None]
        costs = [(r.cost_usd or 0.0) / max(r.images, 1) for r in ok if r.cost_usd is not None]
        per_prompt: dict[str, list[bytes]] = {}
        for item, run in progress.outcomes:
            data = images.get(run.id) if run.id is not None else None
            if item.route_id == rid and item.prompt.family == family and data is not None:
                per_prompt.setdefault(item.prompt.id, []).append(data)
        scores = [s for s in (consistency(v) for v in per_prompt.values()) if s is not None]
        good = bad = 0
        for run in runs:
            if run.id is not None:
                verdicts = runlog.verdicts(run.id)
                good += sum(1 for v in verdicts if v.survives)
                bad += sum(1 for v in verdicts if not v.survives)
        cells.append(
            Cell(
                route_id=rid,
                family=family,
                runs=len(runs),
                succeeded=len(ok),
                p50_s=percentile(latencies, 50),
                p95_s=percentile(latencies, 95),
                cost_per_image=statistics.fmean(costs) if costs else None,
                consistency=statistics.fmean(scores) if scores else None,
                survives=good,
                fails=bad,
            )
        )
    return cells, images


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def contact_sheet(
    progress: BenchProgress, family: str, images: dict[int, bytes], route_ids: Sequence[str]
) -> bytes | None:
    """Rows = prompts (first repeat), columns = routes; a grey tile says why one is missing."""
    rows: dict[str, dict[str, Run]] = {}
    for item, run in progress.outcomes:
        if item.prompt.family == family and item.repeat == 0:
            rows.setdefault(item.prompt.id, {})[item.route_id] = run
    if not rows:
        return None
    cols = list(route_ids)
    width = len(cols) * SHEET_TILE
    height = SHEET_LABEL + len(rows) * (SHEET_TILE + SHEET_LABEL)
    sheet = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    font = _font(14)
    for c, rid in enumerate(cols):
        draw.text(
            (c * SHEET_TILE + SHEET_TILE // 2, SHEET_LABEL // 2),
            rid[:30],
            fill=(0, 0, 0),
            font=font,
            anchor="mm",
        )
    for r, (pid, runs) in enumerate(rows.items()):
        top = SHEET_LABEL + r * (SHEET_TILE + SHEET_LABEL)
        draw.text((4, top + 4), pid[:60], fill=(60, 60, 60), font=font)
        for c, rid in enumerate(cols):
            x, y = c * SHEET_TILE, top + SHEET_LABEL
            cell_run = runs.get(rid)
            data = (
                images.get(cell_run.id)
                if cell_run is not None and cell_run.id is not None
                else None
            )
            picture = None
            if data:
                try:
                    with Image.open(io.BytesIO(data)) as image:
                        picture = image.convert("RGB")
                        picture.thumbnail((SHEET_TILE - 8, SHEET_TILE - 8))
                except OSError:
                    picture = None
            if picture is not None:
                sheet.paste(
                    picture,
                    (x + (SHEET_TILE - picture.width) // 2, y + (SHEET_TILE - picture.height) // 2),
                )
            else:
                draw.rectangle(
                    (x + 4, y + 4, x + SHEET_TILE - 4, y + SHEET_TILE - 4), fill=(215, 215, 215)
                )
                why = "skipped" if cell_run is None else (cell_run.error_class or cell_run.status)
                draw.text(
                    (x + SHEET_TILE // 2, y + SHEET_TILE // 2),
                    why[:28],
                    fill=(80, 80, 80),
                    font=font,
                    anchor="mm",
                )
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


def chart(cells: Sequence[Cell]) -> bytes:
    """Per route: median latency (blue) and cost per image (orange) bars, each scaled to its max."""
    routes: dict[str, list[Cell]] = {}
    for cell in cells:
        routes.setdefault(cell.route_id, []).append(cell)
    stats = []
    for rid, items in routes.items():
        lats = [c.p50_s for c in items if c.p50_s is not None]
        costs = [c.cost_per_image for c in items if c.cost_per_image is not None]
        stats.append(
            (
                rid,
                statistics.median(lats) if lats else 0.0,
                statistics.fmean(costs) if costs else 0.0,
            )
        )
    width, bar_h, gap, left = 720, 18, 14, 160
    height = 50 + len(stats) * (2 * bar_h + gap)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font(13)
    draw.text(
        (10, 10),
        "p50 latency (s, blue) and cost per image (USD, orange) by route",
        fill="black",
        font=font,
    )
    max_lat = max((s[1] for s in stats), default=0.0) or 1.0
    max_cost = max((s[2] for s in stats), default=0.0) or 1.0
    span = width - left - 90
    for i, (rid, lat, cost) in enumerate(stats):
        y = 40 + i * (2 * bar_h + gap)
        draw.text((10, y + bar_h // 2), rid[:22], fill="black", font=font)
        draw.rectangle(
            (left, y, left + int(span * lat / max_lat), y + bar_h - 2), fill=(52, 101, 164)
        )
        draw.text(
            (left + int(span * lat / max_lat) + 6, y + 2), f"{lat:.2f}s", fill="black", font=font
        )
        y2 = y + bar_h
        draw.rectangle(
            (left, y2, left + int(span * cost / max_cost), y2 + bar_h - 2), fill=(230, 140, 40)
        )
        draw.text(
            (left + int(span * cost / max_cost) + 6, y2 + 2),
            f"${cost:.3f}",
            fill="black",
            font=font,
        )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    return {
        "pct": f"{value * 100:.0f}%",
        "s": f"{value:.2f}s",
        "usd": f"${value:.4f}",
        "ratio": f"{value:.2f}",
    }[kind]


def summary_markdown(progress: BenchProgress, cells: Sequence[Cell], files: Sequence[str]) -> str:
    lines = [
        f"# Benchmark {progress.bench_id}",
        "",
        f"{progress.done} of {progress.total} outputs done, {len(progress.skipped)} skipped, "
        f"${progress.spent_usd:.2f} spent"
        + (f", {progress.resumed} kept from an earlier attempt" if progress.resumed else "")
        + ".",
        "",
        "Judge each output by whether it survives the next real step (Slack verdict buttons,",
        "or `imageroute runs`). Consistency: 1 − mean pairwise difference of the repeats' outputs.",
        "",
        "| route | family | runs | success | p50 | p95 | cost/image | consistency | verdicts ✓/✗ |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        lines.append(
            f"| {c.route_id} | {c.family} | {c.runs} | {_fmt(c.success_rate, 'pct')} | "
            f"{_fmt(c.p50_s, 's')} | {_fmt(c.p95_s, 's')} | {_fmt(c.cost_per_image, 'usd')} | "
            f"{_fmt(c.consistency, 'ratio')} | {c.survives}/{c.fails} |"
        )
    failures = [(item, run) for item, run in progress.outcomes if run.status != "succeeded"]
    if failures:
        lines += ["", "## How routes failed or refused", ""]
        for item, run in failures:
            lines.append(
                f"- `{item.route_id}` {item.prompt.family}/{item.prompt.id}: "
                f"{run.error_class or run.status}: {run.error_message or ''}"
            )
    if progress.skipped:
        lines += ["", "## Skipped", ""]
        for item, reason in progress.skipped:
            lines.append(f"- `{item.route_id}` {item.prompt.family}/{item.prompt.id}: {reason}")
    lines += ["", "## Files", ""] + [f"- {name}" for name in files]
    lines += [
        "",
        f"Export every field: `imageroute export --format csv --bench {progress.bench_id}`",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Report:
    cells: list[Cell]
    sheets: dict[str, bytes]  # family -> PNG
    chart: bytes
    markdown: str


def build_report(
    progress: BenchProgress, runlog: RunLog, assets: AssetStore, route_ids: Sequence[str]
) -> Report:
    cells, images = build_cells(progress, runlog, assets)
    sheets = {}
    for family in FAMILIES:
        sheet = contact_sheet(progress, family, images, route_ids)
        if sheet is not None:
            sheets[family] = sheet
    files = [f"contact-{f}.png" for f in sheets] + ["chart.png"]
    return Report(cells, sheets, chart(cells), summary_markdown(progress, cells, files))


def write_report(report: Report, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for family, data in report.sheets.items():
        path = folder / f"contact-{family}.png"
        path.write_bytes(data)
        written.append(path)
    (folder / "chart.png").write_bytes(report.chart)
    (folder / "summary.md").write_text(report.markdown, encoding="utf-8")
    return [*written, folder / "chart.png", folder / "summary.md"]

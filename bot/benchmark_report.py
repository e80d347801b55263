"""The benchmark report: per route and family success, latency, cost, consistency and verdicts;
a contact sheet per family, a latency/cost chart, and a Markdown summary in a folder."""

from __future__ import annotations

import html
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
    unknown_cost: int = 0  # succeeded runs whose cost is unknown (no price on file)

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
                unknown_cost=sum(1 for r in ok if r.cost_usd is None),
            )
        )
    return cells, images


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for the sheet; a transparent output goes on a checkerboard so its transparency shows
    (plain RGB conversion would turn it black)."""
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    board = Image.new("RGB", rgba.size, (255, 255, 255))
    draw = ImageDraw.Draw(board)
    step = max(8, min(rgba.size) // 16)
    for y in range(0, rgba.height, step):
        for x in range((y // step) % 2 * step, rgba.width, 2 * step):
            draw.rectangle((x, y, x + step - 1, y + step - 1), fill=(204, 204, 204))
    board.paste(rgba, mask=rgba.getchannel("A"))
    return board


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
                        picture = _flatten(image)
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


def _route_stats(cells: Sequence[Cell]) -> list[tuple[str, float | None, float | None]]:
    """Per route: median of the families' p50 latencies and mean cost per image (None: unknown)."""
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
                statistics.median(lats) if lats else None,
                statistics.fmean(costs) if costs else None,
            )
        )
    return stats


def chart(cells: Sequence[Cell]) -> bytes:
    """Per route: p50 latency (blue) and cost per image (orange) bars, each scaled to its max.
    A route without a price says "cost unknown" instead of drawing a $0 bar."""
    stats = _route_stats(cells)
    width, bar_h, gap, left = 720, 18, 14, 160
    height = 50 + max(len(stats), 1) * (2 * bar_h + gap)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font(13)
    draw.text(
        (10, 10),
        "p50 latency (s, blue) and cost per image (USD, orange) by route",
        fill="black",
        font=font,
    )
    max_lat = max((s[1] or 0.0 for s in stats), default=0.0) or 1.0
    max_cost = max((s[2] or 0.0 for s in stats), default=0.0) or 1.0
    span = width - left - 110

    def bar(
        y: int, value: float | None, top: float, colour: tuple[int, int, int], label: str
    ) -> None:
        if value is None:
            draw.text((left, y + 2), label, fill=(120, 120, 120), font=font)
            return
        end = left + int(span * value / top)
        draw.rectangle((left, y, max(end, left + 1), y + bar_h - 2), fill=colour)
        draw.text((end + 6, y + 2), label, fill="black", font=font)

    for i, (rid, lat, cost) in enumerate(stats):
        y = 40 + i * (2 * bar_h + gap)
        draw.text((10, y + bar_h // 2), rid[:22], fill="black", font=font)
        bar(y, lat, max_lat, (52, 101, 164), "no latency" if lat is None else f"{lat:.2f}s")
        bar(
            y + bar_h,
            cost,
            max_cost,
            (230, 140, 40),
            "cost unknown" if cost is None else f"${cost:.3f}",
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


def _cost(cell: Cell) -> str:
    if cell.cost_per_image is None:
        return "unknown" if cell.unknown_cost else "—"
    text = _fmt(cell.cost_per_image, "usd")
    return f"{text} ({cell.unknown_cost} unknown)" if cell.unknown_cost else text


TABLE_HEADER = (
    "| route | family | runs | success | p50 | p95 | cost/image | consistency | verdicts ✓/✗ |",
    "|---|---|---|---|---|---|---|---|---|",
)


def table_lines(cells: Sequence[Cell]) -> list[str]:
    """The per route and family table (Markdown), also posted in the Slack thread."""
    lines = list(TABLE_HEADER)
    for c in cells:
        lines.append(
            f"| {c.route_id} | {c.family} | {c.runs} | {_fmt(c.success_rate, 'pct')} | "
            f"{_fmt(c.p50_s, 's')} | {_fmt(c.p95_s, 's')} | {_cost(c)} | "
            f"{_fmt(c.consistency, 'ratio')} | {c.survives}/{c.fails} |"
        )
    return lines


def budget_lines(progress: BenchProgress) -> list[str]:
    """What the cap was, and which routes it could not see coming (priced after the call)."""
    lines = []
    if progress.max_cost is not None:
        lines.append(
            f"Budget: ${progress.spent_usd:.2f} of ${progress.max_cost:.2f} spent "
            "(checked before each call with the route's per-image list price)."
        )
    if progress.unpriced:
        names = ", ".join(f"`{r}`" for r in sorted(progress.unpriced))
        lines.append(
            f"No per-image list price on file for {names}: their calls counted as $0 before "
            "being sent (token-priced or unpriced routes); what they cost is added once known, "
            "and shows as unknown where the provider did not say."
        )
    return lines


def summary_markdown(progress: BenchProgress, cells: Sequence[Cell], files: Sequence[str]) -> str:
    lines = [
        f"# Benchmark {progress.bench_id}",
        "",
        f"{progress.done} of {progress.total} outputs done, {len(progress.skipped)} skipped, "
        f"${progress.spent_usd:.2f} spent"
        + (f", {progress.resumed} kept from an earlier attempt" if progress.resumed else "")
        + ".",
        "",
        "Judge each output by whether it survives the next real step (the Slack verdict "
        "buttons). Consistency: 1 − mean pairwise difference of the repeats' outputs "
        "(docs/benchmark.md).",
        "",
        *table_lines(cells),
    ]
    budget = budget_lines(progress)
    if budget:
        lines += ["", *budget]
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


def summary_html(markdown: str, images: Sequence[str]) -> str:
    """The same summary as a page that shows the sheets and chart inline (no Markdown viewer
    needed): the table becomes a table, other lines paragraphs or list items."""
    body: list[str] = []
    rows: list[list[str]] = []

    def flush_table() -> None:
        if not rows:
            return
        head, *rest = rows
        body.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>")
        body.extend("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rest)
        body.append("</table>")
        rows.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                rows.append(cells)
            continue
        flush_table()
        text = _code(html.escape(line))
        if line.startswith("# "):
            body.append(f"<h1>{text[2:]}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{text[3:]}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{text[2:]}</li>")
        elif line.strip():
            body.append(f"<p>{text}</p>")
    flush_table()
    body += [f'<p><img src="{html.escape(name)}" alt="{html.escape(name)}"></p>' for name in images]
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "img{max-width:100%}"
    )
    title = html.escape(markdown.splitlines()[0].lstrip("# ")) if markdown else "Benchmark"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _code(text: str) -> str:
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


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
    files = [f"contact-{f}.png" for f in sheets] + ["chart.png", "summary.html"]
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
    images = [p.name for p in written] + ["chart.png"]
    (folder / "summary.html").write_text(summary_html(report.markdown, images), encoding="utf-8")
    return [*written, folder / "chart.png", folder / "summary.md", folder / "summary.html"]

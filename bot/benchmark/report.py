"""The benchmark report: per route and family success, latency, cost, consistency and verdicts,
as a Markdown summary (and its HTML page) in a folder beside the sheets and chart."""

from __future__ import annotations

import html
import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from bot.benchmark.plan import BenchProgress
from bot.benchmark.prompts import FAMILIES
from bot.benchmark.sheets import Cell, chart, consistency, contact_sheet
from bot.core.figures import unpriced
from storage.assets import AssetStore, AssetStoreError
from storage.runlog import RunLog, percentile
from storage.tables import Run

log = logging.getLogger(__name__)


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
                except (AssetStoreError, OSError) as exc:  # a missing file must not sink the report
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
            f"Budget: ${progress.spent_usd:.2f} of ${progress.max_cost:.2f} counted (checked "
            "before each call with the route's estimate; a run of unknown cost counts at it)."
        )
    if progress.unpriced:
        names = ", ".join(f"`{r}`" for r in sorted(progress.unpriced))
        lines.append(
            f"No price on file for {names}: run without a budget; what a call cost shows "
            "where the provider reported it, and as unknown where nothing prices it."
        )
    if progress.unpriced_runs:
        lines.append(
            f"{unpriced(progress.unpriced_runs)}: billed at a cost nothing on file gives, so "
            "they are counted beside the total, never added to it as $0."
        )
    return lines


def summary_markdown(progress: BenchProgress, cells: Sequence[Cell], files: Sequence[str]) -> str:
    lines = [
        f"# Benchmark {progress.bench_id}",
        "",
        f"{progress.done} of {progress.total} outputs done, {len(progress.skipped)} skipped, "
        f"{progress.spent_text}"
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
    needed), rendered by markdown-it with tables on and raw HTML off."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    pictures = "".join(
        f'<p><img src="{html.escape(name)}" alt="{html.escape(name)}"></p>\n' for name in images
    )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "img{max-width:100%}"
    )
    title = html.escape(markdown.splitlines()[0].lstrip("# ")) if markdown else "Benchmark"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>\n{body}{pictures}</body></html>\n"
    )


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

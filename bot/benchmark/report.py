"""The benchmark report: per route and family success, latency, cost, the acceptance checks,
repeatability and the human verdicts (with how often checks and people agree), as a Markdown
summary and one self-contained HTML page, beside the contact sheets and chart.

The counts ("14 of 16 outputs succeeded, 2 skipped") come from one function, `count_outputs`,
for the terminal, Slack, the Markdown and the page alike.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.benchmark.conversations import (
    INTRO,
    Conversation,
    conversation_lines,
    conversation_tables,
    conversations,
)
from bot.benchmark.plan import BenchItem, BenchProgress
from bot.benchmark.prompts import FAMILIES
from bot.benchmark.sheets import Cell, chart, contact_sheet, flatten_for_sheet
from bot.checks import CHECK_LABELS, CHECK_NAMES
from bot.core.figures import dollars, unpriced
from routes.media import extension_for, sniff_mime
from storage.assets import AssetStore, AssetStoreError
from storage.checks import CheckLog, summarise, verdict
from storage.runlog import RunLog, percentile
from storage.tables import Run, RunCheck

log = logging.getLogger(__name__)
THUMB = 320  # px, the longer side of the thumbnails embedded in the page


# -- counts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchCounts:
    """What became of a benchmark's planned outputs."""

    planned: int
    succeeded: int
    failed: int  # the route was called and failed (or its images could not be stored)
    refused: int  # refused before any call (an option the route cannot take): nothing billed
    skipped: int  # not run: budget, daily cap, a family the route does not serve
    kept: int  # finished by an earlier attempt of a resumed benchmark
    spent: str  # "$0.42 spent", "$0.42 spent + 2 runs unpriced" (never an unknown cost as $0)

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.refused

    def sentence(self) -> str:
        """The one sentence every surface prints."""
        parts = [f"{self.succeeded} of {self.planned} outputs succeeded"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.refused:
            parts.append(f"{self.refused} refused before any call")
        parts.append(f"{self.skipped} skipped")
        text = ", ".join(parts) + f", {self.spent}"
        if self.kept:
            text += f" ({self.kept} kept from an earlier attempt)"
        return text


def count_outputs(progress: BenchProgress) -> BenchCounts:
    runs = [run for _, run in progress.outcomes]
    refused = sum(1 for r in runs if r.status != "succeeded" and r.error_class == "unsupported")
    succeeded = sum(1 for r in runs if r.status == "succeeded")
    return BenchCounts(
        planned=progress.total,
        succeeded=succeeded,
        failed=len(runs) - succeeded - refused,
        refused=refused,
        skipped=len(progress.skipped),
        kept=progress.resumed,
        spent=progress.spent_text,
    )


# -- per output and per cell -------------------------------------------------------------------
@dataclass
class Output:
    """One finished output as the report shows it."""

    item: BenchItem
    run: Run
    image: bytes | None = None
    checks: list[RunCheck] = field(default_factory=list)
    survives: int = 0
    fails: int = 0

    @property
    def human(self) -> bool | None:
        """The people's verdict: more "survives" than "does not", or the other way round."""
        if self.survives == self.fails:
            return None
        return self.survives > self.fails

    @property
    def machine(self) -> bool | None:
        return verdict(self.checks)


def collect(
    progress: BenchProgress, runlog: RunLog, assets: AssetStore, checklog: CheckLog | None
) -> list[Output]:
    """Every finished output with its first image, its checks and its verdicts."""
    ids = [run.id for _, run in progress.outcomes if run.id is not None]
    checks = checklog.for_runs(ids) if checklog is not None else {}
    outputs = []
    for item, run in progress.outcomes:
        out = Output(item, run, checks=checks.get(run.id or 0, []))
        if run.id is not None:
            for v in runlog.verdicts(run.id):
                out.survives += v.survives
                out.fails += not v.survives
            if run.status == "succeeded":
                out.image = _first_output(run.id, runlog, assets)
        outputs.append(out)
    return outputs


def _first_output(run_id: int, runlog: RunLog, assets: AssetStore) -> bytes | None:
    stored = runlog.assets(run_id, role="output")
    if not stored:
        return None
    try:
        return assets.get(stored[0].path)
    except (AssetStoreError, OSError) as exc:  # a missing file must not sink the report
        log.warning("run %s: output not readable for the report: %s", run_id, exc)
        return None


def build_cells(outputs: Sequence[Output]) -> list[Cell]:
    """Figures per (route, family)."""
    by_cell: dict[tuple[str, str], list[Output]] = {}
    for out in outputs:
        by_cell.setdefault((out.item.route_id, out.item.prompt.family), []).append(out)
    return [_cell(rid, family, items) for (rid, family), items in sorted(by_cell.items())]


def _cell(route_id: str, family: str, outputs: Sequence[Output]) -> Cell:
    from bot.checks.pictures import ImageUnreadable, open_image
    from bot.checks.repeat import mean_similarity

    runs = [o.run for o in outputs]
    ok = [r for r in runs if r.status == "succeeded"]
    latencies = [r.latency_s for r in ok if r.latency_s is not None]
    costs = [(r.cost_usd or 0.0) / max(r.images, 1) for r in ok if r.cost_usd is not None]
    repeats: dict[str, list[bytes]] = {}
    for o in outputs:
        if o.image is not None:
            repeats.setdefault(o.item.label, []).append(o.image)
    scores = []
    for images in repeats.values():
        try:
            score = mean_similarity([open_image(i) for i in images])
        except ImageUnreadable:
            score = None
        if score is not None:
            scores.append(score)
    checks: dict[str, tuple[int, int, float | None]] = {}
    for name in CHECK_NAMES:
        summaries = [s for o in outputs for s in summarise(o.checks) if s.name == name]
        ran = [s for s in summaries if s.status != "not_run"]
        marks = [s.score for s in ran if s.score is not None]
        if summaries:
            checks[name] = (
                sum(1 for s in ran if s.status == "passed"),
                len(ran),
                statistics.fmean(marks) if marks else None,
            )
    compared = [o for o in outputs if o.human is not None and o.machine is not None]
    return Cell(
        route_id=route_id,
        family=family,
        runs=len(runs),
        succeeded=len(ok),
        p50_s=percentile(latencies, 50),
        p95_s=percentile(latencies, 95),
        cost_per_image=statistics.fmean(costs) if costs else None,
        repeatability=statistics.fmean(scores) if scores else None,
        survives=sum(o.survives for o in outputs),
        fails=sum(o.fails for o in outputs),
        unknown_cost=sum(1 for r in ok if r.cost_usd is None),
        checks=checks,
        compared=len(compared),
        agreed=sum(1 for o in compared if o.human == o.machine),
    )


# -- Markdown ----------------------------------------------------------------------------------
def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    return {
        "pct": f"{value * 100:.0f}%",
        "s": f"{value:.2f}s",
        "usd": dollars(value),
        "ratio": f"{value:.2f}",
    }[kind]


def _cost(cell: Cell) -> str:
    if cell.cost_per_image is None:
        return "unknown" if cell.unknown_cost else "—"
    text = _fmt(cell.cost_per_image, "usd")
    return f"{text} ({cell.unknown_cost} unknown)" if cell.unknown_cost else text


def check_cell(cell: Cell, name: str) -> str:
    """ "2/3 · 91%": passed of those checked, and the mean score; "—" when it never applied."""
    figures = cell.checks.get(name)
    if figures is None:
        return "—"
    passed, ran, mean = figures
    if not ran:
        return "not run"
    return f"{passed}/{ran}" + (f" · {mean * 100:.0f}%" if mean is not None else "")


def agreement(cell: Cell) -> str:
    return f"{cell.agreed}/{cell.compared}" if cell.compared else "—"


TABLE_HEADER = (
    "| route | family | runs | success | p50 | p95 | cost/image | repeat | "
    + " | ".join(CHECK_LABELS[n] for n in CHECK_NAMES if n != "repeat")
    + " | verdicts ✓/✗ | checks agree |",
    "|---" * (10 + len(CHECK_NAMES) - 1) + "|",
)


def table_lines(cells: Sequence[Cell]) -> list[str]:
    """The per route and family table (Markdown), also posted in the Slack thread."""
    lines = list(TABLE_HEADER)
    for c in cells:
        checks = " | ".join(check_cell(c, n) for n in CHECK_NAMES if n != "repeat")
        lines.append(
            f"| {c.route_id} | {c.family} | {c.runs} | {_fmt(c.success_rate, 'pct')} | "
            f"{_fmt(c.p50_s, 's')} | {_fmt(c.p95_s, 's')} | {_cost(c)} | "
            f"{_fmt(c.repeatability, 'ratio')} | {checks} | {c.survives}/{c.fails} | "
            f"{agreement(c)} |"
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


def summary_markdown(
    progress: BenchProgress,
    cells: Sequence[Cell],
    files: Sequence[str],
    steps: Sequence[Conversation] = (),
) -> str:
    counts = count_outputs(progress)
    lines = [
        f"# Benchmark {progress.bench_id}",
        "",
        counts.sentence() + ".",
        "",
        "Judge each output by whether it survives the next real step (the Slack verdict "
        "buttons). The checks columns count outputs that passed of those checked, with the "
        "mean score; repeat is the perceptual-hash similarity of a prompt's repeats; checks "
        "agree counts outputs where the checks and the people's verdict say the same "
        "(docs/checks.md).",
        "",
        *table_lines(cells),
    ]
    budget = budget_lines(progress)
    if budget:
        lines += ["", *budget]
    if steps:
        lines += ["", *conversation_lines(steps)]
    failures = [(item, run) for item, run in progress.outcomes if run.status != "succeeded"]
    if failures:
        lines += ["", "## How routes failed or refused", ""]
        for item, run in failures:
            lines.append(
                f"- `{item.route_id}` {item.prompt.family}/{item.label}: "
                f"{run.error_class or run.status}: {run.error_message or ''}"
            )
    if progress.skipped:
        lines += ["", "## Skipped", ""]
        for item, reason in progress.skipped:
            lines.append(f"- `{item.route_id}` {item.prompt.family}/{item.label}: {reason}")
    lines += ["", "## Files", ""] + [f"- {name}" for name in files]
    lines += [
        "",
        f"Export every field: `imageroute export --format csv --bench {progress.bench_id}`",
    ]
    return "\n".join(lines) + "\n"


# -- the report --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Report:
    cells: list[Cell]
    sheets: dict[str, bytes]  # family -> PNG
    chart: bytes
    markdown: str
    progress: BenchProgress | None = None
    outputs: tuple[Output, ...] = ()
    route_ids: tuple[str, ...] = ()
    # Multi-step requests (assistant family), per route: every step and what fed it.
    conversations: tuple[Conversation, ...] = ()


def build_report(
    progress: BenchProgress,
    runlog: RunLog,
    assets: AssetStore,
    route_ids: Sequence[str],
    checklog: CheckLog | None = None,
) -> Report:
    outputs = collect(progress, runlog, assets, checklog)
    cells = build_cells(outputs)
    images = {o.run.id: o.image for o in outputs if o.run.id is not None and o.image is not None}
    sheets = {}
    for family in FAMILIES:
        sheet = contact_sheet(progress, family, images, route_ids)
        if sheet is not None:
            sheets[family] = sheet
    files = [f"contact-{f}.png" for f in sheets] + ["chart.png", "summary.html"]
    steps = conversations(progress)
    return Report(
        cells,
        sheets,
        chart(cells),
        summary_markdown(progress, cells, files, steps),
        progress,
        tuple(outputs),
        tuple(route_ids),
        tuple(steps),
    )


def write_report(report: Report, folder: Path) -> list[Path]:
    """summary.md, summary.html (with images/ for the full-size outputs), the sheets and chart."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for family, data in report.sheets.items():
        path = folder / f"contact-{family}.png"
        path.write_bytes(data)
        written.append(path)
    (folder / "chart.png").write_bytes(report.chart)
    (folder / "summary.md").write_text(report.markdown, encoding="utf-8")
    full_size = _write_images(report.outputs, folder / "images")
    page = summary_html(report, full_size) if report.progress is not None else ""
    (folder / "summary.html").write_text(page, encoding="utf-8")
    return [
        *written,
        *full_size.values(),
        folder / "chart.png",
        folder / "summary.md",
        folder / "summary.html",
    ]


def _write_images(outputs: Sequence[Output], folder: Path) -> dict[int, Path]:
    paths: dict[int, Path] = {}
    for out in outputs:
        if out.image is None or out.run.id is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        ext = extension_for(sniff_mime(out.image) or "image/png")
        path = folder / f"run-{out.run.id}.{ext}"
        path.write_bytes(out.image)
        paths[out.run.id] = path
    return paths


# -- the page ----------------------------------------------------------------------------------
def thumbnail_uri(data: bytes) -> str | None:
    """A small JPEG of the output as a data: URI (transparency shown on a checkerboard)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            picture = flatten_for_sheet(opened)
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    picture.thumbnail((THUMB, THUMB))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


_STYLE = """
:root{--ink:#1d2433;--muted:#5b6475;--line:#e3e7ee;--bg:#f6f7fb;--ok:#1f7a3f;--bad:#b42318;
--warn:#9a6700;--card:#fff;--accent:#3451b2}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:var(--bg)}
header{background:#1d2433;color:#fff;padding:24px 32px}
header h1{margin:0 0 6px;font-size:22px}
header p{margin:2px 0;color:#c9d1e3}
main{padding:24px 32px;max-width:1600px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;
margin:0 0 22px}
h2{margin:0 0 12px;font-size:17px}
h3{margin:18px 0 8px;font-size:14px;color:var(--muted)}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}
thead th{position:sticky;top:0;background:#eef1f7;cursor:pointer;user-select:none}
thead th[aria-sort=ascending]::after{content:" \\25B2"}
thead th[aria-sort=descending]::after{content:" \\25BC"}
tbody tr:hover{background:#f8f9fd}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}.muted{color:var(--muted)}
.grid{display:grid;gap:14px;align-items:start}
.col{font-weight:600;padding:4px 0;border-bottom:2px solid var(--line)}
.prompt{grid-column:1/-1;margin-top:10px;color:var(--muted)}
.prompt b{color:var(--ink)}
.card{border:1px solid var(--line);border-radius:8px;overflow:hidden;background:#fbfcfe}
.card img{display:block;width:100%;height:auto;background:#ddd}
.card .body{padding:8px 10px}
.card ul{margin:4px 0;padding-left:16px}
.card li{margin:1px 0}
.missing{display:flex;align-items:center;justify-content:center;height:160px;background:#eceff4;
color:var(--muted);text-align:center;padding:10px}
.facts{color:var(--muted);font-size:12px}
.why{color:var(--bad);font-size:12px}
.list li{margin:3px 0}
code{background:#eef1f7;padding:1px 4px;border-radius:4px}
"""

_SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, column) {
    th.tabIndex = 0;
    function sort() {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.sort, y = b.cells[column].dataset.sort;
        var empty = (x === "") - (y === "");
        if (empty) { return empty; }  // "no figure" stays at the bottom either way
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
  });
});
"""


def _num(value: float | None) -> str:
    return "" if value is None else repr(round(value, 6))


def _td(text: str, sort: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<td data-sort="{_e(sort)}"{cls}>{_e(text)}</td>'


def _summary_table(cells: Sequence[Cell]) -> str:
    heads = ["route", "family", "runs", "success", "p50", "p95", "cost / image", "repeat"]
    heads += [CHECK_LABELS[n] for n in CHECK_NAMES if n != "repeat"]
    heads += ["verdicts ✓/✗", "checks agree"]
    rows = []
    for c in cells:
        rate = c.success_rate
        tds = [
            _td(c.route_id, c.route_id),
            _td(c.family, c.family),
            _td(str(c.runs), str(c.runs)),
            _td(_fmt(rate, "pct"), _num(rate), "ok" if rate == 1 else "bad" if rate == 0 else ""),
            _td(_fmt(c.p50_s, "s"), _num(c.p50_s)),
            _td(_fmt(c.p95_s, "s"), _num(c.p95_s)),
            _td(_cost(c), _num(c.cost_per_image)),
            _td(_fmt(c.repeatability, "ratio"), _num(c.repeatability)),
        ]
        for name in CHECK_NAMES:
            if name == "repeat":
                continue
            figures = c.checks.get(name)
            mean = figures[2] if figures else None
            passed_all = figures is not None and figures[1] > 0 and figures[0] == figures[1]
            css = "" if not figures or not figures[1] else "ok" if passed_all else "bad"
            tds.append(_td(check_cell(c, name), _num(mean), css))
        tds.append(_td(f"{c.survives}/{c.fails}", _num(c.survives - c.fails)))
        share = c.agreed / c.compared if c.compared else None
        tds.append(_td(agreement(c), _num(share)))
        rows.append("<tr>" + "".join(tds) + "</tr>")
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in heads)
    return (
        f'<table class="sortable" id="summary"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _card(out: Output | None, skipped: str | None, full_size: dict[int, Path]) -> str:
    from bot.core.figures import money, seconds

    if out is None:
        return f'<div class="card"><div class="missing">skipped: {_e(skipped or "")}</div></div>'
    run = out.run
    uri = thumbnail_uri(out.image) if out.image is not None else None
    if uri is not None and run.id is not None:
        target = full_size.get(run.id)
        picture = f'<img src="{uri}" alt="{_e(run.route_id)} output, run {run.id}">'
        if target is not None:
            picture = f'<a href="images/{_e(target.name)}">{picture}</a>'
    else:
        why = run.error_class or run.status
        picture = f'<div class="missing">{_e(why)}</div>'
    facts = f"run #{run.id} · {money(run.cost_usd, run.cost_basis)} · {seconds(run.latency_s)}"
    lines = []
    for summary in summarise(out.checks):
        css = {"passed": "ok", "failed": "bad"}.get(summary.status, "muted")
        text = summary.rows[0].summary if len(summary.rows) == 1 else summary.name
        reasons = [r.reason for r in summary.rows if r.reason and r.status != "passed"]
        why = f' <span class="why">{_e("; ".join(reasons))}</span>' if reasons else ""
        lines.append(f'<li class="{css}">{_e(text)}{why}</li>')
    if run.status != "succeeded":
        lines.append(f'<li class="bad">{_e(run.error_message or run.status)}</li>')
    verdicts = f" · verdicts {out.survives}/{out.fails}" if out.survives or out.fails else ""
    checks = f"<ul>{''.join(lines)}</ul>" if lines else ""
    return (
        f'<div class="card">{picture}<div class="body">{checks}'
        f'<div class="facts">{_e(facts + verdicts)}</div></div></div>'
    )


def _family_grid(report: Report, family: str, full_size: dict[int, Path]) -> str | None:
    assert report.progress is not None
    outs = [o for o in report.outputs if o.item.prompt.family == family and o.item.repeat == 0]
    skipped = {
        (item.label, item.route_id): why
        for item, why in report.progress.skipped
        if item.prompt.family == family and item.repeat == 0
    }
    prompts: dict[str, str] = {}
    for o in outs:
        prompts.setdefault(o.item.label, o.item.prompt.instruction(o.item.step))
    for item, _why in report.progress.skipped:
        if item.prompt.family == family:
            prompts.setdefault(item.label, item.prompt.instruction(item.step))
    if not prompts:
        return None
    routes = list(report.route_ids)
    by_key = {(o.item.label, o.item.route_id): o for o in outs}
    cells = [f'<div class="col">{_e(r)}</div>' for r in routes]
    for pid, text in prompts.items():
        cells.append(f'<div class="prompt"><b>{_e(pid)}</b>: {_e(text)}</div>')
        for rid in routes:
            out = by_key.get((pid, rid))
            cells.append(_card(out, skipped.get((pid, rid), "not planned"), full_size))
    style = f"grid-template-columns:repeat({max(len(routes), 1)},minmax(200px,1fr))"
    return (
        f'<section id="family-{_e(family)}"><h2>{_e(family.capitalize())}: every route side by '
        f'side</h2><div class="grid" style="{style}">{"".join(cells)}</div></section>'
    )


def _conversations(found: Sequence[Conversation]) -> str:
    """The multi-step requests as two tables: per route and prompt, then every step."""
    if not found:
        return ""
    tables = []
    for heads, rows in conversation_tables(found):
        head = "".join(f'<th scope="col">{_e(h)}</th>' for h in heads)
        body = "".join(
            "<tr>" + "".join(f"<td>{_e(value)}</td>" for value in row) + "</tr>" for row in rows
        )
        tables.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return (
        '<section id="conversations"><h2>Multi-step requests</h2>'
        f"<p class='muted'>{_e(INTRO)}</p>" + "<h3>Every step</h3>".join(tables) + "</section>"
    )


def _failures(progress: BenchProgress) -> str:
    failed = [(i, r) for i, r in progress.outcomes if r.status != "succeeded"]
    items = [
        f"<li><code>{_e(i.route_id)}</code> {_e(i.prompt.family)}/{_e(i.label)}: "
        f"<b>{_e(r.error_class or r.status)}</b>: {_e(r.error_message or '')}</li>"
        for i, r in failed
    ]
    items += [
        f"<li><code>{_e(i.route_id)}</code> {_e(i.prompt.family)}/{_e(i.label)}: "
        f"<b>skipped</b>: {_e(why)}</li>"
        for i, why in progress.skipped
    ]
    body = f'<ul class="list">{"".join(items)}</ul>' if items else "<p>None.</p>"
    return f'<section id="failures"><h2>Failures, refusals and skips</h2>{body}</section>'


def summary_html(report: Report, full_size: dict[int, Path] | None = None) -> str:
    """One self-contained page: styles and the sort script inline, thumbnails embedded (each
    links to its full-size file in images/)."""
    progress = report.progress
    assert progress is not None
    counts = count_outputs(progress)
    notes = "".join(f"<p>{_e(line)}</p>" for line in budget_lines(progress))
    grids = [_family_grid(report, f, full_size or {}) for f in FAMILIES]
    data = json.dumps({"bench": progress.bench_id, **counts.__dict__})
    title = f"Benchmark {progress.bench_id}"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p id='counts'>{_e(counts.sentence())}.</p>{notes}"
        "<p>Would each output survive the next real step? Checks run offline on every image "
        "(docs/checks.md); verdicts are people's, from Slack.</p></header><main>"
        "<section><h2>Route × family</h2><p class='muted'>Click a column to sort. Checks: "
        "passed of checked · mean score. Repeat: perceptual-hash similarity of a prompt's "
        "repeats (1 = alike).</p>"
        f"{_summary_table(report.cells)}</section>"
        + "".join(g for g in grids if g)
        + _conversations(report.conversations)
        + _failures(progress)
        + f"<section><h2>Export</h2><p><code>imageroute export --format csv --bench "
        f"{_e(progress.bench_id)}</code></p></section></main>"
        f"<script type='application/json' id='bench-data'>{_e(data)}</script>"
        f"<script>{_SORT_SCRIPT}</script></body></html>\n"
    )

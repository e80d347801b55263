"""The benchmark's pictures: a contact sheet per family and the latency/cost chart, and the
figures per route and family they are drawn from."""

from __future__ import annotations

import io
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from bot.benchmark.plan import BenchProgress
from storage.tables import Run

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
    repeatability: float | None  # pHash similarity of a prompt's repeats; None = no repeats
    survives: int
    fails: int
    unknown_cost: int = 0  # succeeded runs whose cost is unknown (no price on file)
    # Acceptance checks: name -> (outputs passed, outputs checked, mean score).
    checks: Mapping[str, tuple[int, int, float | None]] = field(default_factory=dict)
    compared: int = 0  # outputs with both a people's verdict and a checks verdict
    agreed: int = 0  # ... of which the two said the same

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.runs if self.runs else None


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def flatten_for_sheet(image: Image.Image) -> Image.Image:
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
            rows.setdefault(item.label, {})[item.route_id] = run
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
            _tile(sheet, draw, font, (c * SHEET_TILE, top + SHEET_LABEL), runs.get(rid), images)
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


def _tile(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    at: tuple[int, int],
    run: Run | None,
    images: dict[int, bytes],
) -> None:
    """One run's output fitted in its tile, or a grey tile saying why there is none."""
    x, y = at
    data = images.get(run.id) if run is not None and run.id is not None else None
    picture = None
    if data:
        try:
            with Image.open(io.BytesIO(data)) as image:
                picture = flatten_for_sheet(image)
                picture.thumbnail((SHEET_TILE - 8, SHEET_TILE - 8))
        except OSError:
            picture = None
    if picture is not None:
        offset = ((SHEET_TILE - picture.width) // 2, (SHEET_TILE - picture.height) // 2)
        sheet.paste(picture, (x + offset[0], y + offset[1]))
        return
    draw.rectangle((x + 4, y + 4, x + SHEET_TILE - 4, y + SHEET_TILE - 4), fill=(215, 215, 215))
    why = "skipped" if run is None else (run.error_class or run.status)
    draw.text(
        (x + SHEET_TILE // 2, y + SHEET_TILE // 2),
        why[:28],
        fill=(80, 80, 80),
        font=font,
        anchor="mm",
    )


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

"""Side-by-side comparison image: one labelled tile per route, in request order, each with its
caption (latency and cost) under the route's name."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

TILE = 384
LABEL_H = 56  # the route's name, then the caption
GAP = 8
MAX_COLUMNS = 4


@dataclass(frozen=True)
class Tile:
    label: str
    image: bytes | None  # None: the route returned no image (the tile says why)
    note: str = ""
    # Already decoded and scaled (see fit_tile), so a comparison can prepare each tile while
    # slower routes are still running and only compose at the end.
    picture: Image.Image | None = None
    caption: str = ""  # e.g. "0.31 s · $0.040": what this image took

    def fitted(self, picture: Image.Image | None) -> Tile:
        return Tile(self.label, self.image, self.note, picture, self.caption)


def fit_tile(tile: Tile) -> Tile:
    """The tile with its image decoded and scaled to fit; cheap to compose later."""
    if tile.picture is not None:
        return tile
    return tile.fitted(_fit(tile.image))


def montage_size(tiles: int) -> tuple[int, int]:
    columns = min(MAX_COLUMNS, max(1, tiles))
    rows = (tiles + columns - 1) // columns
    width = columns * TILE + (columns + 1) * GAP
    height = rows * (TILE + LABEL_H) + (rows + 1) * GAP
    return width, height


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def render_montage(tiles: Sequence[Tile]) -> bytes:
    """A PNG with each image fitted into a square tile and its label underneath."""
    width, height = montage_size(len(tiles))
    canvas = Image.new("RGB", (width, height), (245, 245, 245))
    draw = ImageDraw.Draw(canvas)
    label_font = _font(18)
    note_font = _font(16)
    columns = min(MAX_COLUMNS, max(1, len(tiles)))
    for index, tile in enumerate(tiles):
        col, row = index % columns, index // columns
        x = GAP + col * (TILE + GAP)
        y = GAP + row * (TILE + LABEL_H + GAP)
        picture = tile.picture if tile.picture is not None else _fit(tile.image)
        if picture is None:
            draw.rectangle((x, y, x + TILE - 1, y + TILE - 1), fill=(200, 200, 200))
            draw.text(
                (x + TILE // 2, y + TILE // 2),
                (tile.note or "no image")[:40],
                fill=(90, 90, 90),
                font=note_font,
                anchor="mm",
            )
        else:
            canvas.paste(
                picture, (x + (TILE - picture.width) // 2, y + (TILE - picture.height) // 2)
            )
        draw.text(
            (x + TILE // 2, y + TILE + LABEL_H // 4 + 2),
            tile.label[:36],
            fill=(20, 20, 20),
            font=label_font,
            anchor="mm",
        )
        if tile.caption:
            draw.text(
                (x + TILE // 2, y + TILE + 3 * LABEL_H // 4),
                tile.caption[:44],
                fill=(80, 80, 80),
                font=note_font,
                anchor="mm",
            )
    out = io.BytesIO()
    canvas.save(out, format="PNG", compress_level=3)
    return out.getvalue()


def _fit(data: bytes | None) -> Image.Image | None:
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (TILE, TILE))  # JPEG: decode at reduced size, much cheaper
            picture = image.convert("RGB")
    except (UnidentifiedImageError, OSError):
        return None
    picture.thumbnail((TILE, TILE))
    return picture

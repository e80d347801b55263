"""Small real pictures for edit tests: a photo-like PNG and a mask with a transparent hole
(the product's convention: transparent where to edit)."""

from __future__ import annotations

import io

from PIL import Image

HOLE = (16, 16, 48, 48)  # the mask's transparent square: (left, top, right, bottom)


def photo(size: tuple[int, int] = (64, 64)) -> bytes:
    """A gradient with a dark square, as PNG."""
    width, height = size
    image = Image.new("RGB", size)
    image.putdata([(4 * x % 256, 4 * y % 256, 128) for y in range(height) for x in range(width)])
    image.paste((20, 20, 20), (24, 24, 40, 40))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def holed_mask(size: tuple[int, int] = (64, 64)) -> bytes:
    """Opaque everywhere, fully transparent in HOLE: 'edit here'."""
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), HOLE)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def hole_pixels() -> set[tuple[int, int]]:
    """The (x, y) of every pixel in the hole: what a provider should repaint."""
    left, top, right, bottom = HOLE
    return {(x, y) for y in range(top, bottom) for x in range(left, right)}

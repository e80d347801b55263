"""Opening the images a check looks at, with the one error a check reports as "not run"."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError


class ImageUnreadable(Exception):
    """The bytes are not an image Pillow can decode (the check cannot run)."""


def open_image(data: bytes) -> Image.Image:
    """The decoded image (fully loaded, the file closed)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()  # decoded now: the image stays usable once the file is closed
            return opened
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageUnreadable(f"the image could not be decoded ({type(exc).__name__})") from None


def image_format(data: bytes) -> str | None:
    """png | jpeg | webp | ... as the file really is, whatever its name or MIME type says."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            return (opened.format or "").lower() or None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def flattened(
    image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)
) -> Image.Image:
    """RGB, with any transparency laid on a plain background (not turned black)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        base = Image.new("RGB", rgba.size, background)
        base.paste(rgba, mask=rgba.getchannel("A"))
        return base
    return image.convert("RGB")

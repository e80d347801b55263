"""Image file facts in one place: the type of a file from its first bytes, its extension and its
pixel count."""

from __future__ import annotations

import io

# The image types every route, the asset store and Slack uploads deal in.
IMAGE_MIMES: frozenset[str] = frozenset({"image/png", "image/jpeg", "image/webp"})

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def sniff_mime(data: bytes) -> str | None:
    """The image type from its first bytes (providers and uploads do not always say, or lie)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def extension_for(mime: str) -> str:
    """The file extension for an image type; `bin` for anything else."""
    return _EXTENSIONS.get(mime, "bin")


def image_pixels(data: bytes) -> int | None:
    """Width x height from the image header (per-megapixel prices count input images too);
    None when the bytes are not an image Pillow can read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return int(width * height)

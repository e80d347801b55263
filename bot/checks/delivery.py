"""Delivered as asked: the size, format and number of images the request asked for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.checks.model import FAILED, PASSED, Ask, CheckResult
from bot.checks.pictures import image_format, open_image
from routes.capabilities import parse_size

if TYPE_CHECKING:
    from PIL import Image

RATIO_TOLERANCE = 0.02  # an aspect-ratio route's pixels may round: 2% either way is the ratio


def _size_problem(asked: str, width: int, height: int) -> str | None:
    parsed = parse_size(asked)
    if parsed is None:
        return None
    if len(parsed) == 2:
        if (width, height) != parsed:
            return f"asked {asked}, got {width}x{height}"
        return None
    ratio_w, ratio_h = (int(x) for x in str(parsed[0]).split(":"))
    wanted = ratio_w / ratio_h
    if abs(width / height - wanted) > RATIO_TOLERANCE * wanted:
        return f"asked {asked}, got {width}x{height}"
    return None


def delivery_check(
    images: Sequence[bytes], ask: Ask, decoded: Sequence[Image.Image] | None = None
) -> CheckResult:
    """One result for the run: every image's size and format, and how many came back. The
    images are decoded here unless `decoded` holds them already (the other checks' copies)."""
    problems: list[str] = []
    if len(images) != ask.n:
        problems.append(f"asked {ask.n} image(s), got {len(images)}")
    sizes = []
    for position, data in enumerate(images):
        picture = decoded[position] if decoded is not None else open_image(data)
        sizes.append(f"{picture.width}x{picture.height}")
        which = f"image {position + 1}: " if len(images) > 1 else ""
        if ask.size:
            size_problem = _size_problem(ask.size, picture.width, picture.height)
            if size_problem:
                problems.append(which + size_problem)
        if ask.output_format:
            got = image_format(data)
            wanted = "jpeg" if ask.output_format == "jpg" else ask.output_format
            if got != wanted:
                problems.append(f"{which}asked {wanted.upper()}, got {(got or 'unknown').upper()}")
    checked = ["count"] + (["size"] if ask.size else []) + (["format"] if ask.output_format else [])
    return CheckResult(
        name="delivery",
        status=FAILED if problems else PASSED,
        summary="as asked" if not problems else problems[0],
        score=0.0 if problems else 1.0,
        threshold=1.0,
        reason="; ".join(problems) or None,
        detail={
            "checked": checked,
            "sizes": sizes,
            "asked_size": ask.size,
            "asked_format": ask.output_format,
            "asked_n": ask.n,
            "got_n": len(images),
        },
    )

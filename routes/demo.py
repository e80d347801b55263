"""The offline demo route: renders a labelled PNG from the prompt with Pillow. No network, no cost.

Deterministic: the same request gives the same bytes, so tests and demos are repeatable.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import textwrap
import time
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from routes.base import BaseRoute
from routes.capabilities import resolve_size
from routes.config import DemoRoute as DemoConfig
from routes.model import GeneratedImage, ImageRequest, ImageResult, Usage

_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def _palette(digest: bytes) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    top = (digest[0] // 2 + 40, digest[1] // 2 + 40, digest[2] // 2 + 60)
    bottom = (digest[3] // 3 + 20, digest[4] // 3 + 20, digest[5] // 3 + 30)
    return top, bottom


def render_demo_image(
    prompt: str,
    width: int,
    height: int,
    *,
    variant: int = 0,
    seed: int | None = None,
    transparent: bool = False,
    source: bytes | None = None,
    output_format: str = "png",
    compression: int | None = None,
) -> bytes:
    """A real image that is plainly a demo: a gradient from the prompt's hash, the prompt text
    and a 'DEMO IMAGE' banner. With `source`, the input image is tinted and labelled instead."""
    digest = hashlib.sha256(f"{prompt}|{seed}|{variant}".encode()).digest()
    mode = "RGBA" if transparent else "RGB"
    if source is not None:
        with Image.open(io.BytesIO(source)) as opened:
            base = opened.convert("RGB").resize((width, height))
        tint = Image.new("RGB", (width, height), _palette(digest)[0])
        image = Image.blend(base, tint, 0.25).convert(mode)
    elif transparent:
        image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        top, _ = _palette(digest)
        draw = ImageDraw.Draw(image)
        margin = min(width, height) // 6
        draw.ellipse(
            (margin, margin, width - margin, height - margin), fill=(*top, 255), outline=None
        )
    else:
        top, bottom = _palette(digest)
        # A vertical gradient built from a 1-pixel-wide column: fast at any size.
        column = Image.new("RGB", (1, 256))
        for y in range(256):
            t = y / 255
            column.putpixel((0, y), tuple(int(top[i] * (1 - t) + bottom[i] * t) for i in range(3)))
        image = column.resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    scale = max(min(width, height) / 1024, 0.1)
    banner_font = ImageFont.load_default(size=max(int(44 * scale), 8))
    text_font = ImageFont.load_default(size=max(int(36 * scale), 8))
    banner_h = max(int(96 * scale), 12)
    draw.rectangle((0, 0, width, banner_h), fill=(20, 20, 20, 230))
    draw.text(
        (int(24 * scale), int(18 * scale)),
        "DEMO IMAGE - imageroute offline renderer",
        fill=(255, 210, 0, 255),
        font=banner_font,
    )
    chars = max(int(width / max(_font_size(text_font) * 0.55, 1)), 10)
    lines = textwrap.wrap(prompt, width=chars)[:12] or ["(empty prompt)"]
    y = banner_h + int(40 * scale)
    # A dark outline keeps the prompt's text legible on every palette (the acceptance checks
    # read it back: the demo must show a prompt's quoted text as a real route should).
    outline = max(1, round(2 * scale))
    for line in lines:
        draw.text(
            (int(32 * scale), y),
            line,
            fill=(255, 255, 255, 255),
            font=text_font,
            stroke_width=outline,
            stroke_fill=(0, 0, 0, 255),
        )
        y += int(_font_size(text_font) * 1.3)
    label = f"variant {variant + 1}" + (f" - seed {seed}" if seed is not None else "")
    draw.text(
        (int(32 * scale), height - int(64 * scale)),
        label,
        fill=(230, 230, 230, 255),
        font=text_font,
    )
    buffer = io.BytesIO()
    save_args: dict[str, Any] = {}
    if output_format in ("jpeg", "webp") and compression is not None:
        save_args["quality"] = max(1, 100 - compression)
    if output_format == "jpeg" and image.mode == "RGBA":
        image = image.convert("RGB")
    image.save(buffer, format=_PIL_FORMAT[output_format], **save_args)
    return buffer.getvalue()


class DemoRoute(BaseRoute):
    """kind = "demo"."""

    config: DemoConfig

    def __init__(self, config: DemoConfig) -> None:
        super().__init__(config)

    async def generate(self, request: ImageRequest) -> ImageResult:
        t0 = time.perf_counter()
        if self.config.delay_seconds:
            await asyncio.sleep(self.config.delay_seconds)
        size = resolve_size(request.size, self._caps)
        width, height = size.width or 1024, size.height or 1024
        fmt = request.output_format or "png"
        source = request.input_images[0].data if request.input_images else None
        images = await asyncio.to_thread(
            lambda: [
                render_demo_image(
                    request.prompt,
                    width,
                    height,
                    variant=i,
                    seed=request.seed,
                    transparent=request.background == "transparent" and fmt != "jpeg",
                    source=source,
                    output_format=fmt,
                    compression=request.output_compression,
                )
                for i in range(request.n)
            ]
        )
        digest = hashlib.sha256(repr((request.prompt, request.params())).encode()).hexdigest()
        return ImageResult(
            images=tuple(GeneratedImage(data, _MIME[fmt]) for data in images),
            requested_model=self.model,
            model=self.model,
            response_id=f"demo-{digest[:16]}",
            latency_s=time.perf_counter() - t0,
            metered=Usage(images=request.n),
            metadata={"size": f"{width}x{height}", "demo": True},
        )

    async def check_auth(self) -> str | None:
        return None


def _font_size(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> float:
    return float(getattr(font, "size", 11))

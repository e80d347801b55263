"""The checks' calibration set, made here with Pillow: posters with known text and their
degraded copies, edits with a known changed region (and copies that also change the outside),
RGBA cut-outs and their flattened copies. Deterministic: seeded noise, fixed layouts."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIZE = 1024
POSTER_LINES = ("SUMMER SALE", "50% OFF EVERYTHING", "Northern Lights Jazz Festival")
POSTER_TEXT = tuple(POSTER_LINES)


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def scene(seed: int = 4, size: int = SIZE) -> Image.Image:
    """A picture with no text at all: what an unrelated output looks like to the text check."""
    return _backdrop(seed, size)


def _backdrop(seed: int, size: int = SIZE) -> Image.Image:
    """A poster background: a two-colour gradient with a few soft shapes."""
    rng = random.Random(seed)
    top = (rng.randint(10, 60), rng.randint(20, 70), rng.randint(60, 120))
    bottom = (rng.randint(60, 120), rng.randint(10, 50), rng.randint(40, 90))
    column = Image.new("RGB", (1, 256))
    for y in range(256):
        t = y / 255
        column.putpixel((0, y), tuple(int(top[i] * (1 - t) + bottom[i] * t) for i in range(3)))
    image = column.resize((size, size), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y, r = rng.randint(0, size), rng.randint(0, size), rng.randint(40, 160)
        shade = tuple(min(255, c + 25) for c in top)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=shade)
    return image.filter(ImageFilter.GaussianBlur(6))


def poster(lines: tuple[str, ...] = POSTER_LINES, seed: int = 1) -> Image.Image:
    image = _backdrop(seed)
    draw = ImageDraw.Draw(image)
    y = 180
    for i, line in enumerate(lines):
        size = 96 if i == 0 else 64 if i == 1 else 48
        draw.text((70, y), line, fill=(255, 244, 214), font=_font(size))
        y += size + 90
    return image


def blurred(image: Image.Image, radius: float = 9) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


def noisy(image: Image.Image, coverage: float = 0.6, seed: int = 3) -> Image.Image:
    """Salt-and-pepper speckle on `coverage` of the pixels (seeded, so always the same)."""
    rng = random.Random(seed)
    noise = Image.frombytes("L", image.size, rng.randbytes(image.width * image.height))
    speckle = noise.point(lambda v: 255 if v % 2 else 0).convert("RGB")
    chosen = noise.point(lambda v: 255 if v < 256 * coverage else 0)
    out = image.copy()
    out.paste(speckle, (0, 0), chosen)
    return out


def swap_letters(lines: tuple[str, ...]) -> tuple[str, ...]:
    """Neighbouring letters swapped in every word of four letters or more (SUMMER -> USMMER)."""
    out = []
    for line in lines:
        words = []
        for word in line.split():
            if len(word) >= 4:
                word = word[1] + word[0] + word[2:-2] + word[-1] + word[-2]
            words.append(word)
        out.append(" ".join(words))
    return tuple(out)


def drop_words(lines: tuple[str, ...]) -> tuple[str, ...]:
    """Every other word left out."""
    return tuple(" ".join(line.split()[::2]) for line in lines)


# -- edits -----------------------------------------------------------------------------------
EDIT_BOX = (352, 352, 672, 672)  # the region the mask opens, in source pixels


@dataclass(frozen=True)
class EditCase:
    source: bytes
    mask: bytes
    output: bytes


def product_photo(seed: int = 7, size: int = SIZE) -> Image.Image:
    """A source for edits: a textured scene (SSIM needs structure to compare)."""
    rng = random.Random(seed)
    image = _backdrop(seed, size)
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(size), rng.randrange(size)
        w, h = rng.randint(10, 120), rng.randint(10, 120)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.rectangle((x, y, x + w, y + h), outline=colour, width=3)
    draw.text((60, 60), "ACME MUG 350ml", fill="white", font=_font(56))
    return image


def edit_mask(size: int = SIZE) -> Image.Image:
    mask = Image.new("RGBA", (size, size), (0, 0, 0, 255))
    ImageDraw.Draw(mask).rectangle(EDIT_BOX, fill=(0, 0, 0, 0))
    return mask


def edited(source: Image.Image, *, outside_too: bool = False, seed: int = 11) -> Image.Image:
    """The masked box repainted; with `outside_too`, the rest of the picture redrawn as well
    (what a model that regenerates the whole image does)."""
    out = source.copy()
    patch = product_photo(seed=seed).crop(EDIT_BOX)
    out.paste(patch, EDIT_BOX[:2])
    if outside_too:
        other = product_photo(seed=seed + 1)
        keep_box = Image.new("L", out.size, 255)
        ImageDraw.Draw(keep_box).rectangle(EDIT_BOX, fill=0)
        out.paste(other, (0, 0), keep_box)
    return out


def edit_case(*, outside_too: bool = False, recompressed: bool = False) -> EditCase:
    source = product_photo()
    output = edited(source, outside_too=outside_too)
    if recompressed:  # what a provider's JPEG round trip does to an untouched outside
        buffer = io.BytesIO()
        output.save(buffer, format="JPEG", quality=85)
        output = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return EditCase(png(source), png(edit_mask()), png(output))


# -- cut-outs --------------------------------------------------------------------------------
def cutout(*, soft: bool = False, size: int = 512) -> Image.Image:
    """An RGBA sticker: an opaque disc on a transparent background (feathered when soft)."""
    scale = 4
    big = Image.new("L", (size * scale, size * scale), 0)
    margin = size * scale // 5
    ImageDraw.Draw(big).ellipse(
        (margin, margin, size * scale - margin, size * scale - margin), fill=255
    )
    alpha = big.resize((size, size), Image.Resampling.NEAREST)
    if soft:
        alpha = alpha.filter(ImageFilter.GaussianBlur(6))
    sticker = Image.new("RGBA", (size, size), (230, 120, 40, 0))
    sticker.putalpha(alpha)
    return sticker


def antialiased_cutout(size: int = 512) -> Image.Image:
    scale = 4
    big = Image.new("L", (size * scale, size * scale), 0)
    margin = size * scale // 5
    ImageDraw.Draw(big).ellipse(
        (margin, margin, size * scale - margin, size * scale - margin), fill=255
    )
    sticker = Image.new("RGBA", (size, size), (230, 120, 40, 0))
    sticker.putalpha(big.resize((size, size), Image.Resampling.LANCZOS))
    return sticker


def flattened_copy(sticker: Image.Image) -> Image.Image:
    """The same sticker on white, saved without alpha (what a route without transparency gives)."""
    base = Image.new("RGB", sticker.size, (255, 255, 255))
    base.paste(sticker, mask=sticker.getchannel("A"))
    return base


def opaque_rgba(sticker: Image.Image) -> Image.Image:
    """An RGBA file whose alpha is opaque everywhere (an alpha channel, nothing cut out)."""
    out = flattened_copy(sticker).convert("RGBA")
    return out

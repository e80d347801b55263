"""What each route and model accepts, loaded from data, and the check run before any call."""

from __future__ import annotations

import fnmatch
import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from routes.errors import InvalidRequest
from routes.media import IMAGE_MIMES, mask_problem, sniff_mime
from routes.model import ImageRequest

_SIZE = re.compile(r"^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$")
_RATIO = re.compile(r"^\s*(\d{1,3})\s*:\s*(\d{1,3})\s*$")
# A WxH is mapped onto the closest accepted aspect ratio when it is this close (log scale).
_ASPECT_TOLERANCE = 0.12


@dataclass(frozen=True)
class Capabilities:
    """The options a model accepts. Empty tuples mean 'not supported'."""

    sizes: tuple[str, ...] = ()
    aspect_ratios: tuple[str, ...] = ()
    size_multiple: int = 1
    min_side: int = 64
    max_side: int = 4096
    max_pixels: int | None = None
    min_pixels: int | None = None
    min_aspect: float = 1.0
    max_aspect: float = 4.0
    max_n: int = 1
    qualities: tuple[str, ...] = ()
    backgrounds: tuple[str, ...] = ("auto", "opaque")
    formats: tuple[str, ...] = ("png",)
    edits: bool = False
    mask: bool = False
    max_input_images: int = 0
    seed: bool = False
    negative_prompt: bool = False
    compression: bool = False
    moderation: tuple[str, ...] = ()
    # Moderation levels an edit accepts (None: the same as `moderation`).
    edit_moderation: tuple[str, ...] | None = None
    # False when an edit keeps the input's shape and takes no size.
    edit_size: bool = True
    # True when a request can continue an earlier response the provider keeps (multi-turn:
    # the Responses API's previous_response_id); elsewhere each call stands alone.
    conversation: bool = False
    max_seed: int | None = None
    max_prompt_chars: int = 4000
    default_size: str | None = None
    source: str = ""
    checked: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def transparent_background(self) -> bool:
        return "transparent" in self.backgrounds

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Capabilities:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in row.items():
            if key in ("kind", "model"):
                continue
            if key in known:
                kwargs[key] = tuple(value) if isinstance(value, list) else value
            else:
                extra[key] = value
        return cls(**kwargs, extra=extra)


@dataclass(frozen=True)
class ResolvedSize:
    """A size as a route will send it: pixels, an aspect ratio, or the provider's 'auto'."""

    width: int | None = None
    height: int | None = None
    aspect_ratio: str | None = None
    auto: bool = False

    @property
    def label(self) -> str:
        if self.auto:
            return "auto"
        if self.width and self.height:
            return f"{self.width}x{self.height}"
        return self.aspect_ratio or "auto"


@dataclass(frozen=True)
class Unsupported:
    """One option a route cannot serve; `feature` lets callers find routes that can. Features
    starting with `input:` are problems of the user's files, the same on every route."""

    feature: str
    sentence: str


@cache
def _rows() -> tuple[dict[str, Any], ...]:
    text = resources.files("routes").joinpath("data/models.toml").read_text(encoding="utf-8")
    return tuple(tomllib.loads(text)["model"])


def capabilities_for(
    kind: str, model: str, overrides: dict[str, Any] | None = None
) -> Capabilities:
    """The capability row for a kind and model id, with optional per-route overrides."""
    for row in _rows():
        if row["kind"] == kind and fnmatch.fnmatchcase(model, row["model"]):
            merged = dict(row)
            if overrides:
                merged.update(overrides)
            return Capabilities.from_row(merged)
    base: dict[str, Any] = {"source": "no capability row on file", "checked": ""}
    base.update(overrides or {})
    return Capabilities.from_row(base)


def parse_size(text: str) -> tuple[int, int] | tuple[str] | None:
    """(w, h) for 'WxH', (ratio,) for 'W:H', None when it is neither."""
    m = _SIZE.match(text)
    if m:
        return int(m.group(1)), int(m.group(2))
    m = _RATIO.match(text)
    if m and int(m.group(1)) > 0 and int(m.group(2)) > 0:
        return (f"{int(m.group(1))}:{int(m.group(2))}",)
    return None


def _ratio_value(ratio: str) -> float:
    w, h = ratio.split(":")
    return int(w) / int(h)


def _closest_ratio(value: float, ratios: tuple[str, ...]) -> str | None:
    best = min(ratios, key=lambda r: abs(math.log(_ratio_value(r) / value)))
    if abs(math.log(_ratio_value(best) / value)) <= _ASPECT_TOLERANCE:
        return best
    return None


def _size_from_ratio(ratio: float, caps: Capabilities) -> tuple[int, int]:
    # Aim for about one megapixel, rounded to the model's multiple.
    step = max(caps.size_multiple, 1)
    width = math.sqrt(1024 * 1024 * ratio)
    height = width / ratio
    return max(step, round(width / step) * step), max(step, round(height / step) * step)


def resolve_size(size: str | None, caps: Capabilities) -> ResolvedSize:
    """Map the user's size onto what the model accepts, or raise InvalidRequest."""
    if size is None or size.strip().lower() == "auto":
        if size is None and caps.default_size:
            return resolve_size(caps.default_size, caps)
        if caps.aspect_ratios:
            return ResolvedSize(aspect_ratio=caps.aspect_ratios[0])
        return ResolvedSize(auto=True)
    parsed = parse_size(size)
    if parsed is None:
        raise InvalidRequest(
            f"size={size} is not a size: use WIDTHxHEIGHT such as 1024x1024, "
            "or a ratio such as 16:9."
        )
    if caps.aspect_ratios:
        value = parsed[0] / parsed[1] if len(parsed) == 2 else _ratio_value(parsed[0])
        ratio = _closest_ratio(value, caps.aspect_ratios)
        if ratio is None:
            raise InvalidRequest(
                f"size={size} has no matching aspect ratio on this route: it accepts "
                f"{', '.join(caps.aspect_ratios)}."
            )
        return ResolvedSize(aspect_ratio=ratio)
    if len(parsed) == 1:
        w, h = _size_from_ratio(_ratio_value(parsed[0]), caps)
    else:
        w, h = parsed
    label = f"{w}x{h}"
    if caps.sizes:
        if label not in caps.sizes:
            raise InvalidRequest(
                f"size={size} is not available on this route: it accepts {', '.join(caps.sizes)}."
            )
        return ResolvedSize(width=w, height=h)
    _check_free_size(size, w, h, caps)
    return ResolvedSize(width=w, height=h)


def _check_free_size(size: str, w: int, h: int, caps: Capabilities) -> None:
    step = caps.size_multiple
    if step > 1 and (w % step or h % step):
        raise InvalidRequest(
            f"size={size} is not valid here: both sides must be multiples of {step}."
        )
    if min(w, h) < caps.min_side or max(w, h) > caps.max_side:
        raise InvalidRequest(
            f"size={size} is out of range here: each side must be between {caps.min_side} and "
            f"{caps.max_side} pixels."
        )
    if caps.max_pixels and w * h > caps.max_pixels:
        raise InvalidRequest(
            f"size={size} is too large here: at most {caps.max_pixels:,} pixels in total."
        )
    if caps.min_pixels and w * h < caps.min_pixels:
        raise InvalidRequest(
            f"size={size} is too small here: at least {caps.min_pixels:,} pixels in total "
            f"({w * h:,} asked), e.g. 1024x1024 or 1024x640."
        )
    aspect = max(w, h) / min(w, h)
    if aspect > caps.max_aspect + 1e-9:
        raise InvalidRequest(
            f"size={size} is too elongated here: the long side can be at most "
            f"{caps.max_aspect:g} times the short side."
        )


def find_unsupported(request: ImageRequest, caps: Capabilities) -> list[Unsupported]:
    """Every option in `request` this model cannot serve, each as one sentence."""
    problems = [
        *_prompt_problems(request, caps),
        *_output_problems(request, caps),
        *_setting_problems(request, caps),
        *_edit_problems(request, caps),
    ]
    try:
        resolve_size(request.size, caps)
    except InvalidRequest as exc:
        problems.append(Unsupported(f"size:{request.size}", str(exc).rstrip(".")))
    return problems


def _prompt_problems(request: ImageRequest, caps: Capabilities) -> list[Unsupported]:
    """The prompt, how many images and their quality."""
    problems: list[Unsupported] = []

    def refuse(feature: str, sentence: str) -> None:
        problems.append(Unsupported(feature, sentence))

    if len(request.prompt) > caps.max_prompt_chars:
        refuse(
            "long_prompt",
            f"the prompt is {len(request.prompt):,} characters; this route accepts at most "
            f"{caps.max_prompt_chars:,}",
        )
    if request.n > caps.max_n:
        refuse(f"n:{request.n}", f"n={request.n} is more than this route's maximum of {caps.max_n}")
    if request.quality and request.quality != "auto" and request.quality not in caps.qualities:
        accepted = ", ".join(caps.qualities) if caps.qualities else "no quality setting"
        refuse(
            f"quality:{request.quality}",
            f"quality={request.quality} is not offered here (accepted: {accepted})",
        )
    return problems


def _output_problems(request: ImageRequest, caps: Capabilities) -> list[Unsupported]:
    """The output file: background, format and compression."""
    problems: list[Unsupported] = []

    def refuse(feature: str, sentence: str) -> None:
        problems.append(Unsupported(feature, sentence))

    if request.background and request.background not in caps.backgrounds:
        if request.background == "transparent":
            refuse("background:transparent", "this model cannot make a transparent background")
        else:
            refuse(
                f"background:{request.background}",
                f"background={request.background} is not offered here",
            )
    if request.output_format and request.output_format not in caps.formats:
        refuse(
            f"format:{request.output_format}",
            f"format={request.output_format} is not offered here (accepted: "
            f"{', '.join(caps.formats)})",
        )
    if (
        request.background == "transparent"
        and request.output_format == "jpeg"
        and "transparent" in caps.backgrounds
    ):
        refuse("format:jpeg+transparent", "a transparent background needs format=png or webp")
    if request.output_compression is not None and not caps.compression:
        refuse("compression", "output compression is not offered here")
    return problems


def _setting_problems(request: ImageRequest, caps: Capabilities) -> list[Unsupported]:
    """Seed, negative prompt, moderation and continuing an earlier response."""
    problems: list[Unsupported] = []

    def refuse(feature: str, sentence: str) -> None:
        problems.append(Unsupported(feature, sentence))

    if request.seed is not None and not caps.seed:
        refuse("seed", "this route does not take a seed")
    elif request.seed is not None and caps.max_seed is not None and request.seed > caps.max_seed:
        refuse("seed", f"seed={request.seed} is above this route's maximum of {caps.max_seed:,}")
    if request.negative_prompt and not caps.negative_prompt:
        refuse("negative_prompt", "this route does not take a negative prompt")
    if request.moderation and request.moderation not in caps.moderation:
        refuse(f"moderation:{request.moderation}", "this route has no moderation setting")
    if request.previous_response_id and not caps.conversation:
        refuse(
            "conversation",
            "this route keeps no conversation: each call stands alone, so an earlier response "
            "cannot be continued",
        )
    return problems


def _edit_problems(request: ImageRequest, caps: Capabilities) -> list[Unsupported]:
    """What this route cannot do with the request's input images and mask."""
    problems: list[Unsupported] = []

    def refuse(feature: str, sentence: str) -> None:
        problems.append(Unsupported(feature, sentence))

    edit_moderation = caps.moderation if caps.edit_moderation is None else caps.edit_moderation
    moderation = request.moderation
    if request.is_edit and moderation in caps.moderation and moderation not in edit_moderation:
        refuse(
            f"edit_moderation:{moderation}",
            f"moderation={moderation} is not available on edits here: this route's edit "
            "endpoint has no moderation setting and always applies the default (auto)",
        )
    if request.input_images:
        if not caps.edits:
            refuse("edits", "this route cannot edit images")
        elif len(request.input_images) > caps.max_input_images:
            most = caps.max_input_images
            refuse("many_inputs", f"this route takes at most {most} input image(s)")
        elif request.size and not caps.edit_size:
            refuse(
                "edit_size", "an edit on this route keeps the input image's shape: leave size out"
            )
        for number, image in enumerate(request.input_images, 1):
            if sniff_mime(image.data) not in IMAGE_MIMES:
                refuse("input:type", f"input image {number} is not a PNG, JPEG or WebP image")
    return problems + _mask_problems(request, caps)


def _mask_problems(request: ImageRequest, caps: Capabilities) -> list[Unsupported]:
    """Whether this route takes a mask, and whether the mask fits the image it goes with."""
    problems: list[Unsupported] = []

    def refuse(feature: str, sentence: str) -> None:
        problems.append(Unsupported(feature, sentence))

    if request.mask is not None:
        if not caps.mask:
            refuse("mask", "this route does not take an edit mask")
        elif not request.input_images:
            refuse("mask", "a mask needs an image to edit")
        else:
            problem = mask_problem(request.mask.data, request.input_images[0].data)
            if problem:
                refuse("input:mask", problem)
    return problems

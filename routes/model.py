"""The values that cross the Route boundary: what is asked, what comes back, what it cost."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

CostBasis = Literal["tokens", "list_price", "hardware_time", "free", "unknown"]
ProbeKind = Literal["auth", "generate", "off"]


@dataclass(frozen=True)
class InputImage:
    """An image handed to a route for editing (or a mask)."""

    data: bytes
    mime: str = "image/png"
    name: str = "input.png"
    # Where the bytes came from (stored asset path, Slack file id), for the run log.
    source: str | None = None


@dataclass(frozen=True)
class ImageRequest:
    """One generation or edit, as the user asked for it, before any provider mapping."""

    prompt: str
    size: str | None = None  # "WxH" or an aspect ratio "W:H"; None = the route's default
    quality: str | None = None  # low | medium | high | auto
    n: int = 1
    background: str | None = None  # transparent | opaque | auto
    output_format: str | None = None  # png | jpeg | webp
    output_compression: int | None = None  # 0..100 for jpeg/webp
    seed: int | None = None
    negative_prompt: str | None = None
    moderation: str | None = None  # low | auto (OpenAI)
    input_images: tuple[InputImage, ...] = ()
    mask: InputImage | None = None

    @property
    def is_edit(self) -> bool:
        return bool(self.input_images)

    def params(self) -> dict[str, Any]:
        """The options as plain data for the run log (no image bytes)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("prompt", "input_images", "mask"):
                continue
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value
        return out


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime: str = "image/png"


@dataclass(frozen=True)
class Cost:
    """Cost of one call in USD, with how it was worked out. `usd` is None when unknown."""

    usd: float | None
    basis: CostBasis
    detail: str = ""

    @property
    def estimated(self) -> bool:
        # Only token-metered cost is what the provider billed; the rest is list price or a model.
        return self.basis in ("list_price", "hardware_time")

    @classmethod
    def unknown(cls, detail: str = "no price on file") -> Cost:
        return cls(usd=None, basis="unknown", detail=detail)

    @classmethod
    def free(cls, detail: str = "") -> Cost:
        return cls(usd=0.0, basis="free", detail=detail)


@dataclass(frozen=True)
class Attempt:
    """One provider call made while serving a request (retries make several)."""

    number: int
    started_at: float  # unix seconds
    latency_s: float
    ok: bool
    error_class: str | None = None
    status_code: int | None = None
    request_id: str | None = None
    message: str | None = None
    waited_s: float = 0.0  # backoff slept before this attempt


@dataclass(frozen=True)
class ImageResult:
    """What a route returned for one request."""

    images: tuple[GeneratedImage, ...]
    requested_model: str
    model: str | None  # as reported by the provider (None when it does not say)
    response_id: str | None
    latency_s: float  # around the provider call(s) of the successful attempt
    cost: Cost
    usage: dict[str, Any] | None = None
    underlying_model: str | None = None  # gateways: the model behind the gateway
    revised_prompt: str | None = None
    # Anything else the route board says is worth keeping (filtered counts, tool settings...).
    metadata: dict[str, Any] = field(default_factory=dict)
    attempts: tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one health probe of a route."""

    route_id: str
    kind: ProbeKind
    ok: bool
    latency_s: float
    checked_at: float  # unix seconds
    error_class: str | None = None
    message: str | None = None
    request_id: str | None = None
    cost: Cost | None = None

"""The values that cross the Route boundary: what is asked, what comes back, what it cost."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

CostBasis = Literal["tokens", "list_price", "hardware_time", "estimate", "free", "unknown"]
# How a pre-call estimate was worked out: a list price, the provider's published per-image
# figures for a token-priced model, the route's own pricing or estimate, hardware time.
EstimateBasis = Literal["list_price", "token_estimate", "route_override", "hardware_time", "free"]
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
    # A later turn of a conversation the provider keeps: the response this request continues
    # (Responses API `previous_response_id`; routes whose capabilities say `conversation`).
    previous_response_id: str | None = None

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
        # Token-metered cost is what the provider billed; list prices, hardware time and a
        # route's own per-image estimate are models of it.
        return self.basis in ("list_price", "hardware_time", "estimate")

    @classmethod
    def unknown(cls, detail: str = "no price on file") -> Cost:
        return cls(usd=None, basis="unknown", detail=detail)

    @classmethod
    def free(cls, detail: str = "") -> Cost:
        return cls(usd=0.0, basis="free", detail=detail)


@dataclass(frozen=True)
class Estimate:
    """What a request is expected to cost before it is sent (spend caps, benchmark budgets)."""

    usd: float
    basis: EstimateBasis
    detail: str = ""


@dataclass(frozen=True)
class TokenCount:
    """Tokens one model consumed, by the classes providers bill at different rates."""

    model: str
    text_in: int = 0
    cached_text_in: int = 0
    image_in: int = 0
    cached_image_in: int = 0
    text_out: int = 0
    image_out: int = 0

    def classes(self) -> dict[str, int]:
        return {
            "text_input": self.text_in,
            "cached_text_input": self.cached_text_in,
            "image_input": self.image_in,
            "cached_image_input": self.cached_image_in,
            "text_output": self.text_out,
            "image_output": self.image_out,
        }


@dataclass(frozen=True)
class Usage:
    """What one call consumed, as the provider reported it or the route measured it. Adapters
    report this; routes.pricing turns it into a Cost."""

    images: int = 0  # images returned (what per-image prices bill)
    tokens: tuple[TokenCount, ...] = ()  # empty: the provider reported no token usage
    megapixels: tuple[float, ...] = ()  # per returned image
    input_megapixels: tuple[float, ...] = ()  # per input image of an edit
    quality: str | None = None  # as sent, for prices tiered by quality
    pixels: int | None = None  # width x height of each image, for prices tiered by size
    seconds: float | None = None  # time the call took, for hardware-time prices
    # Billed usage the provider did not report (e.g. the Responses image tool's tokens): the
    # cost is then unknown rather than the part that was reported.
    unreported: tuple[str, ...] = ()


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
    # What the call consumed; the executor prices it into `cost` (routes.pricing).
    metered: Usage = field(default_factory=Usage)
    cost: Cost = field(default_factory=lambda: Cost.unknown("not priced yet"))
    usage: dict[str, Any] | None = None  # the provider's own usage object, for the run log
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

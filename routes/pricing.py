"""The one cost authority: usage -> Cost after a call, request -> Estimate before it.

Prices are data (routes/data/pricing.toml, or a route's own `pricing` table), each row with its
source and date. Adapters only report what a call consumed (routes.model.Usage); a route's
RoutePricing turns that into a Cost with its basis and detail, and gives the estimate that spend
caps and the benchmark budget reserve. Unknown stays unknown: a token class, a megapixel or an
image with no price on file makes the cost unknown, never $0.
"""

from __future__ import annotations

import fnmatch
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal, cast

from routes.capabilities import ResolvedSize
from routes.model import Cost, Estimate, ImageRequest, TokenCount, Usage

PriceBasis = Literal["tokens", "per_image", "per_megapixel"]
TOKEN_CLASSES: tuple[str, ...] = (
    "text_input",
    "cached_text_input",
    "text_output",
    "image_input",
    "cached_image_input",
    "image_output",
)
MEGAPIXEL = 1 << 20  # 1024 x 1024
_DEFAULT_ESTIMATE_PIXELS = 1024 * 1024
_ROW_KEYS = frozenset(
    {
        "kinds",
        "model",
        "basis",
        *(f"{c}_per_mtok" for c in TOKEN_CLASSES),
        "usd_per_image",
        "tiers",
        "per_image_estimate",
        "estimate_pixels",
        "usd_first_megapixel",
        "usd_per_extra_megapixel",
        "usd_per_input_megapixel",
        "source",
        "checked",
        "verify",
    }
)


@dataclass(frozen=True)
class PriceTier:
    """A per-image price for one quality up to a pixel count (Nova Canvas, Titan)."""

    usd: float
    quality: str | None = None
    max_pixels: int | None = None


def _float(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"pricing: {key} must be a number of USD, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class Price:
    """One price row: how a model bills, the rates, and where they were read."""

    basis: PriceBasis
    rates: Mapping[str, float] = field(default_factory=dict)  # token class -> USD per 1M
    usd_per_image: float | None = None
    tiers: tuple[PriceTier, ...] = ()
    per_image_estimate: Mapping[str, float] = field(default_factory=dict)
    estimate_pixels: int = _DEFAULT_ESTIMATE_PIXELS
    usd_first_megapixel: float | None = None
    usd_per_extra_megapixel: float | None = None
    usd_per_input_megapixel: float | None = None
    source: str = ""
    checked: str = ""
    verify: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Price:
        """A price from a data row or a route's `pricing` table; unknown keys are refused so a
        typo in a negotiated rate cannot silently price at nothing."""
        unknown = sorted(set(row) - _ROW_KEYS)
        if unknown:
            raise ValueError(f"pricing: unknown key '{unknown[0]}'")
        basis: str | None = row.get("basis")
        if basis is None:
            if "usd_first_megapixel" in row:
                basis = "per_megapixel"
            elif "usd_per_image" in row or "tiers" in row:
                basis = "per_image"
            else:
                basis = "tokens"
        if basis not in ("tokens", "per_image", "per_megapixel"):
            raise ValueError(
                f"pricing: unknown basis {basis!r}: use tokens, per_image or per_megapixel"
            )
        rates = {c: r for c in TOKEN_CLASSES if (r := _float(row, f"{c}_per_mtok")) is not None}
        tiers = tuple(
            PriceTier(
                usd=_float(tier, "usd") or 0.0,
                quality=tier.get("quality"),
                max_pixels=tier.get("max_pixels"),
            )
            for tier in row.get("tiers", ())
        )
        figures = row.get("per_image_estimate") or {}
        estimates = {str(k): v for k in figures if (v := _float(figures, str(k))) is not None}
        return cls(
            basis=cast(PriceBasis, basis),
            rates=MappingProxyType(rates),
            usd_per_image=_float(row, "usd_per_image"),
            tiers=tiers,
            per_image_estimate=MappingProxyType(estimates),
            estimate_pixels=int(row.get("estimate_pixels") or _DEFAULT_ESTIMATE_PIXELS),
            usd_first_megapixel=_float(row, "usd_first_megapixel"),
            usd_per_extra_megapixel=_float(row, "usd_per_extra_megapixel"),
            usd_per_input_megapixel=_float(row, "usd_per_input_megapixel"),
            source=str(row.get("source", "")),
            checked=str(row.get("checked", "")),
            verify=bool(row.get("verify", False)),
        )

    @property
    def citation(self) -> str:
        note = " (verify)" if self.verify else ""
        return f"{self.source}, {self.checked}{note}".strip(", ")

    def tier_for(self, quality: str | None, pixels: int | None) -> PriceTier | None:
        """The first tier for this quality (the first tier's quality when none was sent) whose
        pixel limit the image fits; None when the image is larger than every tier."""
        if not self.tiers:
            return None
        wanted = quality if quality not in (None, "auto") else self.tiers[0].quality
        for tier in self.tiers:
            if tier.quality not in (None, wanted):
                continue
            if pixels is None or tier.max_pixels is None or pixels <= tier.max_pixels:
                return tier
        return None


@cache
def _rows() -> tuple[dict[str, Any], ...]:
    text = resources.files("routes").joinpath("data/pricing.toml").read_text(encoding="utf-8")
    return tuple(tomllib.loads(text)["price"])


def price_for(kind: str, model: str, override: Mapping[str, Any] | None = None) -> Price | None:
    """The price for a model on a route kind; a route's own `pricing` table wins."""
    if override:
        return Price.from_row({"source": "route config", **override})
    for row in _rows():
        if kind in row["kinds"] and fnmatch.fnmatchcase(model, row["model"]):
            return Price.from_row(row)
    return None


def _usd(value: float) -> float:
    return round(value, 6)


def _tokens_cost(price: Price, part: TokenCount) -> tuple[float | None, str]:
    """(USD, detail) for one model's tokens, each class at its own rate; None when a class
    with tokens has no rate on file."""
    counts = {c: n for c, n in part.classes().items() if n}
    missing = [c.replace("_", " ") for c in counts if c not in price.rates]
    if missing:
        return None, f"{part.model}: no {', '.join(missing)} rate on file"
    usd = sum(n * price.rates[c] for c, n in counts.items()) / 1_000_000
    said = ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in counts.items()) or "no tokens"
    return usd, f"{part.model}: {said} tokens"


def _megapixels(pixels: float) -> float:
    return pixels / MEGAPIXEL


def _megapixel_cost(
    price: Price, outputs: Sequence[float], inputs: Sequence[float]
) -> tuple[float | None, str]:
    """(USD, detail) for FLUX.2-style pricing: a first megapixel, then each extra one."""
    if price.usd_first_megapixel is None:
        return None, "no first-megapixel price on file"
    usd = 0.0
    for mp in outputs:
        extra = max(mp - 1.0, 0.0)
        if extra > 1e-9 and price.usd_per_extra_megapixel is None:
            return None, f"a {mp:.2f} MP image needs an extra-megapixel rate, none on file"
        usd += price.usd_first_megapixel + extra * (price.usd_per_extra_megapixel or 0.0)
    if inputs:
        if price.usd_per_input_megapixel is None:
            return None, "input images are billed per megapixel; no input rate on file"
        usd += sum(inputs) * price.usd_per_input_megapixel
    detail = f"{len(outputs)} image(s) of {', '.join(f'{mp:.2f}' for mp in outputs)} MP"
    if inputs:
        detail += f" + {sum(inputs):.2f} MP of input"
    return usd, detail


class RoutePricing:
    """How one route's calls are priced: the models it calls, its own `pricing` table or
    per-image estimate, and kind-specific rules (free demo, self-hosted hardware time)."""

    def __init__(
        self,
        kind: str,
        models: Sequence[str],
        *,
        override: Mapping[str, Any] | None = None,
        estimated_usd_per_image: float | None = None,
        hourly_usd: float | None = None,
        hardware: bool = False,
        free: bool = False,
        tier: str | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self.kind = kind
        # The first model's per-image price is the one an estimate uses (the image model).
        self.models = tuple(m for m in models if m)
        self.override = dict(override) if override else None
        self._override_price = price_for(kind, "", self.override) if self.override else None
        self.estimated_usd_per_image = estimated_usd_per_image
        self.hourly_usd = hourly_usd
        self.hardware = hardware
        self.free = free and not self.override
        self.tier = tier
        self.timeout_s = timeout_s

    def price(self, model: str) -> Price | None:
        if self._override_price is not None:
            return self._override_price
        return price_for(self.kind, model)

    @property
    def primary(self) -> Price | None:
        return self.price(self.models[0]) if self.models else self._override_price

    # -- after the call ----------------------------------------------------------------------
    def cost(self, usage: Usage) -> Cost:
        """The cost of one call from what it consumed."""
        if self.free:
            return Cost.free("no provider is billed")
        if self.hardware:
            return self._hardware_cost(usage)
        cost = self._listed_cost(usage)
        if cost.usd is None and self.estimated_usd_per_image is not None:
            usd = self.estimated_usd_per_image * usage.images
            return Cost(
                usd=_usd(usd),
                basis="estimate",
                detail=f"{usage.images} x ${self.estimated_usd_per_image:g}, the route's "
                f"estimated_usd_per_image ({cost.detail})",
            )
        return cost

    def _hardware_cost(self, usage: Usage) -> Cost:
        if self.hourly_usd is None or usage.seconds is None:
            if self.estimated_usd_per_image is not None:
                usd = self.estimated_usd_per_image * usage.images
                return Cost(
                    usd=_usd(usd),
                    basis="estimate",
                    detail=f"{usage.images} x ${self.estimated_usd_per_image:g}, the route's "
                    "estimated_usd_per_image (no hourly_usd)",
                )
            return Cost.unknown("set hourly_usd on the route to price hardware time")
        usd = self.hourly_usd * usage.seconds / 3600
        return Cost(
            usd=_usd(usd),
            basis="hardware_time",
            detail=f"{usage.seconds:.2f} s x ${self.hourly_usd:g}/h hardware",
        )

    def _listed_cost(self, usage: Usage) -> Cost:
        primary = self.primary
        if primary is None:
            model = self.models[0] if self.models else self.kind
            return Cost.unknown(f"no price on file for {model}")
        if primary.basis == "per_image":
            return self._per_image_cost(primary, usage)
        if primary.basis == "per_megapixel":
            usd, detail = _megapixel_cost(primary, usage.megapixels, usage.input_megapixels)
            if usd is None or not usage.megapixels:
                return Cost.unknown(detail if usd is None else "no image size reported")
            return Cost(usd=_usd(usd), basis="list_price", detail=f"{detail}; {primary.citation}")
        if usage.unreported:
            return Cost.unknown(f"the provider did not report {', '.join(usage.unreported)}")
        if not usage.tokens:
            if primary.usd_per_image is not None:
                return self._per_image_cost(primary, usage)
            return Cost.unknown("the provider returned no token usage")
        total = 0.0
        details: list[str] = []
        for part in usage.tokens:
            price = self.price(part.model)
            if price is None or price.basis != "tokens":
                return Cost.unknown(f"no per-token price on file for {part.model}")
            usd, detail = _tokens_cost(price, part)
            if usd is None:
                return Cost.unknown(detail)
            total += usd
            details.append(f"{detail} ({price.citation})")
        return Cost(usd=_usd(total), basis="tokens", detail="; ".join(details))

    def _per_image_cost(self, price: Price, usage: Usage) -> Cost:
        if price.tiers:
            tier = price.tier_for(usage.quality, usage.pixels)
            if tier is None:
                return Cost.unknown("no price tier on file for this quality and size")
            label = " ".join(str(x) for x in (tier.quality, _pixels_label(tier.max_pixels)) if x)
            detail = f"{usage.images} x ${tier.usd:g} list price ({label}); {price.citation}"
            return Cost(usd=_usd(tier.usd * usage.images), basis="list_price", detail=detail)
        if price.usd_per_image is None:
            return Cost.unknown("no per-image price on file for this model")
        detail = f"{usage.images} x ${price.usd_per_image:g} list price; {price.citation}"
        return Cost(usd=_usd(price.usd_per_image * usage.images), basis="list_price", detail=detail)

    # -- before the call ---------------------------------------------------------------------
    def estimate(self, request: ImageRequest, size: ResolvedSize) -> Estimate | None:
        """What the request is expected to cost, or None when nothing on file says."""
        n = max(request.n, 1)
        if self.free:
            return Estimate(0.0, "free", "no provider is billed")
        if self.hardware:
            if self.hourly_usd is not None:
                usd = self.hourly_usd * self.timeout_s / 3600
                return Estimate(
                    _usd(usd),
                    "hardware_time",
                    f"at most {self.timeout_s:g} s (the route's timeout) x ${self.hourly_usd:g}/h",
                )
            return self._route_estimate(n)
        listed = self._listed_estimate(request, size, n)
        if listed is None:
            return self._route_estimate(n)
        if self.override:
            return Estimate(listed.usd, "route_override", f"{listed.detail} (route pricing)")
        return listed

    def _route_estimate(self, n: int) -> Estimate | None:
        if self.estimated_usd_per_image is None:
            return None
        return Estimate(
            _usd(self.estimated_usd_per_image * n),
            "route_override",
            f"{n} x ${self.estimated_usd_per_image:g}, the route's estimated_usd_per_image",
        )

    def _listed_estimate(
        self, request: ImageRequest, size: ResolvedSize, n: int
    ) -> Estimate | None:
        price = self.primary
        if price is None:
            return None
        pixels = size.width * size.height if size.width and size.height else None
        if price.basis == "per_image":
            cost = self._per_image_cost(
                price, Usage(images=n, quality=request.quality, pixels=pixels)
            )
            if cost.usd is None:
                return None
            return Estimate(cost.usd, "list_price", cost.detail)
        if price.basis == "per_megapixel":
            mp = _megapixels(pixels) if pixels else 1.0
            inputs = [1.0] * len(request.input_images)  # sizes unknown before the call
            usd, detail = _megapixel_cost(price, [mp] * n, inputs)
            if usd is None:
                return None
            note = " (inputs counted as 1 MP each)" if inputs else ""
            return Estimate(_usd(usd), "list_price", f"{detail}{note}; {price.citation}")
        return self._token_estimate(price, request, pixels, n)

    def _token_estimate(
        self, price: Price, request: ImageRequest, pixels: int | None, n: int
    ) -> Estimate | None:
        """The provider's published per-image figures for a token-priced model, scaled by
        pixel count; with no quality asked the highest figure, so caps err on the safe side."""
        figures = price.per_image_estimate
        if not figures and self.override and self.models:
            # A negotiated token rate rarely comes with per-image figures: the published ones
            # for the model are the closest guide.
            listed = price_for(self.kind, self.models[0])
            figures = listed.per_image_estimate if listed is not None else figures
        label: str
        if figures:
            for key in (request.quality, self.tier, "default"):
                if key and key in figures:
                    label, per_image = key, figures[key]
                    break
            else:
                label, per_image = max(figures.items(), key=lambda kv: kv[1])
        elif price.usd_per_image is not None:
            label, per_image = "list price", price.usd_per_image
        else:
            return None
        scale = pixels / price.estimate_pixels if pixels else 1.0
        usd = per_image * scale * n
        detail = f"{n} x ${per_image:g} ({label}, published per-image figure"
        if pixels and not math.isclose(scale, 1.0):
            detail += f", x{scale:.2f} for the size"
        detail += ")"
        if len(self.models) > 1:
            detail += f"; {', '.join(self.models[1:])} tokens come on top"
        return Estimate(_usd(usd), "token_estimate", f"{detail}; {price.citation}")

    def can_estimate(self) -> bool:
        """Whether a plain request on this route gets an estimate (a spend cap needs one)."""
        return self.estimate(ImageRequest(prompt="x"), ResolvedSize(auto=True)) is not None


def _pixels_label(pixels: int | None) -> str | None:
    if pixels is None:
        return None
    side = math.isqrt(pixels)
    return f"up to {side}x{side}" if side * side == pixels else f"up to {pixels:,} px"

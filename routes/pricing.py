"""Cost of a call from the dated price table (routes/data/pricing.toml) or a route's override."""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from routes.model import Cost

PriceBasis = Literal["tokens", "per_image"]


@dataclass(frozen=True)
class Price:
    basis: PriceBasis
    text_input_per_mtok: float | None = None
    image_input_per_mtok: float | None = None
    image_output_per_mtok: float | None = None
    usd_per_image: float | None = None
    source: str = ""
    checked: str = ""
    verify: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Price:
        basis = row.get("basis")
        if basis is None:
            basis = "per_image" if "usd_per_image" in row else "tokens"
        if basis not in ("tokens", "per_image"):
            raise ValueError(f"unknown price basis {basis!r}: use tokens or per_image")
        return cls(
            basis="tokens" if basis == "tokens" else "per_image",
            text_input_per_mtok=row.get("text_input_per_mtok"),
            image_input_per_mtok=row.get("image_input_per_mtok"),
            image_output_per_mtok=row.get("image_output_per_mtok"),
            usd_per_image=row.get("usd_per_image"),
            source=str(row.get("source", "")),
            checked=str(row.get("checked", "")),
            verify=bool(row.get("verify", False)),
        )

    @property
    def citation(self) -> str:
        note = " (verify)" if self.verify else ""
        return f"{self.source}, {self.checked}{note}".strip(", ")


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


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def token_cost(price: Price | None, usage: Mapping[str, Any] | None) -> Cost:
    """Cost from returned token usage (OpenAI-style `usage` object)."""
    if price is None:
        return Cost.unknown("no price on file for this model")
    if price.basis != "tokens":
        return Cost.unknown("price on file is not per token")
    if not usage:
        return Cost.unknown("the provider returned no token usage")
    details = usage.get("input_tokens_details") or {}
    input_tokens = _int(usage.get("input_tokens"))
    image_in = _int(details.get("image_tokens"))
    text_in = _int(details.get("text_tokens")) if details else input_tokens - image_in
    out = _int(usage.get("output_tokens"))
    rates = (price.text_input_per_mtok, price.image_input_per_mtok, price.image_output_per_mtok)
    if any(rate is None for rate in rates):
        return Cost.unknown("the price on file lacks a token rate")
    usd = (
        text_in * (price.text_input_per_mtok or 0.0)
        + image_in * (price.image_input_per_mtok or 0.0)
        + out * (price.image_output_per_mtok or 0.0)
    ) / 1_000_000
    detail = f"{text_in} text in, {image_in} image in, {out} out tokens; {price.citation}"
    return Cost(usd=round(usd, 6), basis="tokens", detail=detail)


def per_image_cost(price: Price | None, images: int) -> Cost:
    """List price times the number of images returned."""
    if price is None or price.usd_per_image is None:
        return Cost.unknown("no per-image price on file for this model")
    usd = price.usd_per_image * images
    detail = f"{images} x ${price.usd_per_image:g} list price; {price.citation}"
    return Cost(usd=round(usd, 6), basis="list_price", detail=detail)


def hardware_cost(hourly_usd: float | None, seconds: float) -> Cost:
    """Self-hosted: the configured hourly hardware rate times the time the call took."""
    if hourly_usd is None:
        return Cost.unknown("no hourly_usd configured for this route")
    usd = hourly_usd * seconds / 3600
    detail = f"{seconds:.2f} s x ${hourly_usd:g}/h hardware"
    return Cost(usd=round(usd, 6), basis="hardware_time", detail=detail)


def cost_for(price: Price | None, usage: Mapping[str, Any] | None, images: int) -> Cost:
    """Pick the computation the price's basis calls for."""
    if price is not None and price.basis == "per_image":
        return per_image_cost(price, images)
    return token_cost(price, usage)


def list_price_estimate(route: object, images: int = 1) -> float | None:
    """What `images` images are expected to cost on a route before the call: its per-image list
    price times the count, or None when it has none (token-priced, self-hosted, unpriced)."""
    price = getattr(route, "price", None)
    per_image = getattr(price, "usd_per_image", None) if price is not None else None
    return None if per_image is None else float(per_image) * images

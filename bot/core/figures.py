"""How money and durations read, the same in Slack and in the terminal."""

from __future__ import annotations


def money(usd: float | None, basis: str | None) -> str:
    if usd is None:
        return "cost unknown"
    if basis == "free":
        return "$0 (free)"
    text = f"${usd:.4f}" if usd < 0.01 else f"${usd:.3f}"
    if basis in ("list_price", "hardware_time"):
        text += " est."
    return text


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"

"""How money and durations read, the same in Slack and in the terminal."""

from __future__ import annotations

# How a run's cost was worked out (routes.pricing), said next to the amount.
_COST_BASIS = {
    "tokens": "from usage",
    "list_price": "list price",
    "hardware_time": "hardware time",
    "estimate": "route estimate",
}


def money(usd: float | None, basis: str | None) -> str:
    if usd is None:
        return "cost unknown"
    if basis == "free":
        return "$0 (free)"
    text = f"${usd:.4f}" if usd < 0.01 else f"${usd:.3f}"
    label = _COST_BASIS.get(basis or "")
    return f"{text} ({label})" if label else text


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def unpriced(runs: int, noun: str = "run") -> str:
    return f"{runs} {noun}{'s' if runs != 1 else ''} unpriced"


def spend(known_usd: float, unpriced_runs: int = 0, noun: str = "run") -> str:
    """Spend as people should read it: the known total, and runs of unknown cost counted
    beside it, never added as $0 ("$1.20", "$1.20 + 3 runs unpriced", "3 runs unpriced")."""
    if not unpriced_runs:
        return f"${known_usd:.2f}"
    if not known_usd:
        return unpriced(unpriced_runs, noun)
    return f"${known_usd:.2f} + {unpriced(unpriced_runs, noun)}"

"""How money and durations read, the same in Slack and in the terminal."""

from __future__ import annotations

# How a run's cost was worked out (routes.pricing), said next to the amount.
_COST_BASIS = {
    "tokens": "from usage",
    "list_price": "list price",
    "hardware_time": "hardware time",
    "estimate": "route estimate",
}


def dollars(usd: float) -> str:
    """An amount alone: "$0" when nothing was paid, else the digits it needs ("$0.0040",
    "$0.042"); a positive amount too small to show reads "<$0.0001", never "$0.0000"."""
    if usd == 0:
        return "$0"
    if round(usd, 4) == 0:
        return "<$0.0001"
    return f"${usd:.4f}" if usd < 0.01 else f"${usd:.3f}"


def money(usd: float | None, basis: str | None) -> str:
    """A cost and how it was worked out: "$0.042 (list price)", "$0 (free)", "cost unknown",
    "$0 (nothing billed)" for a request refused before any call. A zero with no basis (a
    median, a mean) is what free runs cost: it reads "$0 (free)" too."""
    if usd is None:
        return "cost unknown"
    if basis == "not_billed":
        return "$0 (nothing billed)"
    if basis == "free" or (usd == 0 and basis is None):
        return "$0 (free)"
    label = _COST_BASIS.get(basis or "")
    return f"{dollars(usd)} ({label})" if label else dollars(usd)


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def unpriced(runs: int, noun: str = "run") -> str:
    return f"{runs} {noun}{'s' if runs != 1 else ''} unpriced"


def spend(known_usd: float, unpriced_runs: int = 0, noun: str = "run") -> str:
    """Spend as people should read it: the known total, and runs of unknown cost counted
    beside it, never added as $0 ("$1.20", "$0", "$1.20 + 3 runs unpriced", "3 runs unpriced")."""
    if not unpriced_runs:
        return f"${known_usd:.2f}" if known_usd else "$0"
    if not known_usd:
        return unpriced(unpriced_runs, noun)
    return f"${known_usd:.2f} + {unpriced(unpriced_runs, noun)}"

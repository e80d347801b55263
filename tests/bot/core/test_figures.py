"""Costs read the same on every surface: a free run, a median of free runs and an empty week
read "$0", never "$0.0000"; an amount too small for four decimals is not shown as zero."""

from __future__ import annotations

import pytest

from bot.core.figures import dollars, money, spend


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        (0.0, "$0"),
        (0.00004, "<$0.0001"),
        (0.0004, "$0.0004"),
        (0.004, "$0.0040"),
        (0.042, "$0.042"),
    ],
)
def test_an_amount_has_the_digits_it_needs(usd: float, text: str) -> None:
    assert dollars(usd) == text


def test_zero_reads_free_whether_a_run_or_a_median() -> None:
    assert money(0.0, "free") == "$0 (free)"
    assert money(0.0, None) == "$0 (free)"  # a median or mean of free runs carries no basis
    assert money(0.0, "not_billed") == "$0 (nothing billed)"  # refused before any call
    assert money(0.0, "tokens") == "$0 (from usage)"
    assert money(None, None) == "cost unknown"
    assert money(0.00004, "tokens") == "<$0.0001 (from usage)"


def test_spend_reads_zero_without_pretending_to_cents() -> None:
    assert spend(0.0) == "$0"
    assert spend(1.2) == "$1.20"
    assert spend(0.0, 3) == "3 runs unpriced"

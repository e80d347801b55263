"""The route an alert offers to run on instead: the board's suggestion among healthy routes."""

from __future__ import annotations

from bot.health.fallback import board_preference, fallback_route

ROWS = {
    "oa": "openai",
    "oa2": "openai",
    "vertex": "google",
    "gw": "gateway",
    "gpu": "self-hosted",
    "demo": "openai",
    "loose": None,
}
KINDS = {rid: ("demo" if rid == "demo" else "openai") for rid in ROWS}


def test_same_row_first_then_the_rows_alternatives_in_board_order():
    healthy = dict.fromkeys(ROWS, "healthy")
    assert fallback_route("oa", ROWS, KINDS, healthy) == "oa2"
    # Without a second OpenAI route: the OpenAI row's first alternative (Google), then gateway.
    assert fallback_route("oa", ROWS, KINDS, {**healthy, "oa2": "failing"}) == "vertex"
    assert (
        fallback_route("oa", ROWS, KINDS, {**healthy, "oa2": "failing", "vertex": "degraded"})
        == "gw"
    )
    assert board_preference("openai")[:3] == ("openai", "google", "gateway")


def test_only_healthy_routes_and_never_the_demo():
    states = {"oa": "failing", "demo": "healthy", "oa2": "unknown", "loose": "healthy"}
    assert fallback_route("oa", ROWS, KINDS, states) is None
    assert fallback_route("oa", ROWS, KINDS, {**states, "gpu": "healthy"}) == "gpu"

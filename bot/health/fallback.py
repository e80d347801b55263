"""Which configured route to run on instead of a failing one: the route board's suggestion.

The board says what serves the same job (the failing route's own row first), then the row's
alternatives in the board's order, then the board's general fallback order. Only routes that are
healthy now qualify, and never the offline demo route: it cannot stand in for a provider.
"""

from __future__ import annotations

from collections.abc import Mapping

from advisor.board import load_board


def board_preference(row: str | None) -> tuple[str, ...]:
    """Board rows in the order to look for a stand-in for a route serving `row`."""
    board = load_board()
    order: list[str] = []
    if row:
        order.append(row)
        for board_row in board.rows:
            if board_row.id == row:
                order.extend(alt.route for alt in board_row.alternatives)
    order.extend(board.fallback_order)
    return tuple(dict.fromkeys(order))


def fallback_route(
    failing: str,
    rows: Mapping[str, str | None],
    kinds: Mapping[str, str],
    states: Mapping[str, str],
) -> str | None:
    """The healthy configured route to suggest instead of `failing`, or None when there is none.

    `rows` maps each configured route to its board row, `kinds` to its kind, `states` to its
    health state (healthy | failing | degraded | unknown | off)."""
    candidates = [
        rid
        for rid in rows
        if rid != failing and states.get(rid) == "healthy" and kinds.get(rid) != "demo"
    ]
    for row in board_preference(rows.get(failing)):
        for rid in candidates:
            if rows.get(rid) == row:
                return rid
    return None

"""Route advisor: answers "which route deserves our first benchmark?" from the route board.

Pure and deterministic: no I/O beyond reading its own packaged board data, no network, no
Slack. Run statistics arrive as plain `WorkspaceRoute` values.
"""

from __future__ import annotations

from advisor.advice import Advice, Alternative, Caveat, MatchedSignal, WorkspaceRoute
from advisor.board import (
    CAVEAT_IDS,
    ROUTE_IDS,
    BoardError,
    BoardRow,
    CaveatSpec,
    load_board,
)
from advisor.deciding import advise

__all__ = [
    "CAVEAT_IDS",
    "ROUTE_IDS",
    "Advice",
    "Alternative",
    "BoardError",
    "BoardRow",
    "Caveat",
    "CaveatSpec",
    "MatchedSignal",
    "WorkspaceRoute",
    "advise",
    "board_caveats",
    "board_rows",
]


def board_rows() -> tuple[BoardRow, ...]:
    """The route board's rows in board order: id, title, job, first benchmark, verify list."""
    return load_board().rows


def board_caveats() -> tuple[CaveatSpec, ...]:
    """The caveats the advisor can raise, with their stable ids, titles and texts."""
    return load_board().caveats

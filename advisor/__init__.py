"""Route advisor: answers "which route deserves our first benchmark?" from the route board.

Pure and deterministic: no I/O beyond reading its own packaged board data, no network, no
Slack. Run statistics arrive as plain `WorkspaceRoute` values and model lifecycle facts as plain
`ModelFact` values.
"""

from __future__ import annotations

from advisor.advice import (
    Advice,
    Alternative,
    AnswerScope,
    Caveat,
    MatchedSignal,
    ModelChange,
    WorkspaceRoute,
)
from advisor.board import (
    CAVEAT_IDS,
    ROUTE_IDS,
    BoardError,
    BoardRow,
    CaveatSpec,
    load_board,
)
from advisor.deciding import advise
from advisor.lifecycle import ModelFact, ModelStatus

__all__ = [
    "CAVEAT_IDS",
    "ROUTE_IDS",
    "Advice",
    "Alternative",
    "AnswerScope",
    "BoardError",
    "BoardRow",
    "Caveat",
    "CaveatSpec",
    "MatchedSignal",
    "ModelChange",
    "ModelFact",
    "ModelStatus",
    "WorkspaceRoute",
    "advise",
    "board_caveats",
    "board_models",
    "board_rows",
]


def board_rows() -> tuple[BoardRow, ...]:
    """The route board's rows in board order: id, title, job, first benchmark, verify list."""
    return load_board().rows


def board_caveats() -> tuple[CaveatSpec, ...]:
    """The caveats the advisor can raise, with their stable ids, titles and texts."""
    return load_board().caveats


def board_models() -> tuple[ModelFact, ...]:
    """The board's default model facts (source and date on each), used when none are handed in."""
    return load_board().models

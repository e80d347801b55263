"""What a benchmark runs (its stored plan and items) and how far it got."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.benchmark.prompts import FAMILIES, BenchError, BenchPrompt
from bot.core.figures import unpriced
from storage.tables import Bench, Run

DEFAULT_PER_ROUTE = 2


def plan_items(
    prompts: Sequence[BenchPrompt],
    route_ids: Sequence[str],
    families: Iterable[str] | None,
    repeat: int,
) -> list[BenchItem]:
    """Every (route, prompt, repeat) of the chosen families, or BenchError saying what is off."""
    wanted = set(families or FAMILIES)
    unknown = wanted - set(FAMILIES)
    if unknown:
        raise BenchError(f"unknown family {sorted(unknown)[0]}: use {', '.join(FAMILIES)}")
    if not route_ids:
        raise BenchError("no routes to benchmark: configure one or pass --routes")
    if not 1 <= repeat <= 10:
        raise BenchError("--repeat must be between 1 and 10")
    items = [
        BenchItem(rid, p, r, step)
        for p in prompts
        if p.family in wanted
        for rid in route_ids
        for r in range(repeat)
        for step in range(1, p.step_count + 1)
    ]
    if not items:
        raise BenchError(f"the prompt set has no prompts in {', '.join(sorted(wanted))}")
    return items


def new_bench_id() -> str:
    return f"b{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class BenchPlan:
    """What a benchmark runs; stored with its id so a resume rebuilds the same items."""

    routes: tuple[str, ...]
    families: tuple[str, ...] = FAMILIES
    repeat: int = 1
    max_cost: float | None = None
    per_route: int = DEFAULT_PER_ROUTE
    prompt_set: Path | None = None  # None: the shipped default set

    @classmethod
    def from_row(cls, row: Bench) -> BenchPlan:
        return cls(
            routes=tuple(row.routes),
            families=tuple(row.families) or FAMILIES,
            repeat=row.repeat,
            max_cost=row.max_cost_usd,
            per_route=row.per_route,
            prompt_set=Path(row.prompt_set) if row.prompt_set else None,
        )

    def with_changes(self, **changes: Any) -> BenchPlan:
        """The stored plan with the options given again on resume (None = keep)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass
class BenchItem:
    """One output to get: a prompt on a route, one repeat, and for a multi-step request one
    step (each step is its own run, continuing the step before it)."""

    route_id: str
    prompt: BenchPrompt
    repeat: int
    step: int = 1

    @property
    def conversation(self) -> str:
        """What the steps of one multi-step request share (the whole key of other items)."""
        return f"{self.route_id}:{self.prompt.id}:{self.repeat}"

    @property
    def key(self) -> str:
        return self.conversation if self.step == 1 else f"{self.conversation}:s{self.step}"

    @property
    def previous_key(self) -> str | None:
        """The key of the step this one continues (None for a first step)."""
        if self.step == 1:
            return None
        return self.conversation if self.step == 2 else f"{self.conversation}:s{self.step - 1}"

    @property
    def label(self) -> str:
        """The prompt id, with the step for a multi-step request (report rows, Slack)."""
        if self.prompt.step_count == 1:
            return self.prompt.id
        return f"{self.prompt.id} step {self.step}/{self.prompt.step_count}"


@dataclass
class BenchProgress:
    bench_id: str
    total: int
    done: int = 0
    skipped: list[tuple[BenchItem, str]] = field(default_factory=list)
    outcomes: list[tuple[BenchItem, Run]] = field(default_factory=list)
    # What the budget counts: known costs, plus runs of unknown cost at their route's estimate.
    spent_usd: float = 0.0
    resumed: int = 0  # items already finished by an earlier, interrupted attempt
    max_cost: float | None = None
    # Routes with no price on file to estimate a call by (only run without a budget).
    unpriced: set[str] = field(default_factory=set)
    known_usd: float = 0.0  # what the finished runs cost, where known
    unpriced_runs: int = 0  # finished runs that were billed at a cost nobody knows

    def count(self, run: Run) -> None:
        """Add a finished run's cost: known, or counted as unpriced (never as $0)."""
        if run.cost_usd is not None:
            self.known_usd = round(self.known_usd + run.cost_usd, 6)
        elif run.images > 0 or run.task_id is not None:
            self.unpriced_runs += 1

    @property
    def spent_text(self) -> str:
        """ "$0.42 spent", "$0.42 spent + 2 runs unpriced", "2 runs unpriced"."""
        if self.unpriced_runs and not self.known_usd:
            return unpriced(self.unpriced_runs)
        text = f"${self.known_usd:.2f} spent"
        return f"{text} + {unpriced(self.unpriced_runs)}" if self.unpriced_runs else text


ProgressCallback = Callable[[BenchProgress, BenchItem, Run | None], Awaitable[None] | None]

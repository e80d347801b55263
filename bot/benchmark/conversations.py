"""Multi-step requests in the benchmark report: each route's steps of the assistant family side
by side (what ran, what fed each step, latency and cost), and what the route made the team
orchestrate: the provider keeping the conversation, or the client sending each output back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.benchmark.plan import BenchItem, BenchProgress
from bot.core.figures import dollars
from storage.tables import Run

ORCHESTRATION = {
    "unavailable": "cannot continue past step 1: needs an edit-capable route",
    "previous_response_id": (
        "the provider keeps the conversation: each step sends only its instruction and the "
        "previous response id"
    ),
    "input_image": (
        "client-side: each step stores the previous output and sends it back as the input "
        "image of an edit (the team builds and keeps this chain)"
    ),
}


@dataclass(frozen=True)
class Step:
    """One step of a multi-step request on one route, as it ran (or why it did not)."""

    step: int
    status: str  # succeeded | failed | interrupted | skipped
    run_id: int | None = None
    follows_run: int | None = None  # the run whose output or response fed this step
    carried_by: str | None = None  # previous_response_id | input_image
    response_id: str | None = None
    previous_response_id: str | None = None
    latency_s: float | None = None
    cost_usd: float | None = None
    note: str = ""  # the error, the refusal or the reason it was skipped
    said: str | None = None  # the assistant's own words (routes that answer with text)

    @classmethod
    def from_run(cls, step: int, run: Run) -> Step:
        link: dict[str, Any] = (run.params or {}).get("step") or {}
        note = f"{run.error_class}: {run.error_message}" if run.error_class else ""
        said = (run.provider_metadata or {}).get("assistant_text")
        return cls(
            step=step,
            status=run.status,
            run_id=run.id,
            follows_run=link.get("follows_run"),
            carried_by=link.get("carried_by"),
            response_id=run.response_id,
            previous_response_id=(run.params or {}).get("previous_response_id"),
            latency_s=run.latency_s,
            cost_usd=run.cost_usd,
            note=note,
            said=str(said)[:200] if said else None,
        )


@dataclass(frozen=True)
class Conversation:
    """The steps of one multi-step prompt (one repeat) on one route."""

    route_id: str
    prompt_id: str
    repeat: int
    steps: tuple[Step, ...]
    total: int  # steps the prompt has

    @property
    def completed(self) -> int:
        return sum(1 for s in self.steps if s.status == "succeeded")

    @property
    def latency_s(self) -> float:
        """The steps' latencies added up (the user waits for them one after the other)."""
        return sum(s.latency_s or 0.0 for s in self.steps if s.status == "succeeded")

    @property
    def cost_usd(self) -> float | None:
        """What the steps cost as logged; None when a step that succeeded has no known cost."""
        if any(s.cost_usd is None for s in self.steps if s.status == "succeeded"):
            return None
        return sum(s.cost_usd or 0.0 for s in self.steps)

    @property
    def orchestration(self) -> str:
        """How the later steps were fed ("—" when none ran, e.g. step 1 failed)."""
        carried = [s.carried_by for s in self.steps if s.carried_by]
        return ORCHESTRATION.get(carried[-1], carried[-1]) if carried else "—"


def conversations(progress: BenchProgress) -> list[Conversation]:
    """Every multi-step request of the benchmark, per route and repeat, steps in order (a
    step that was skipped is listed with the reason)."""
    groups: dict[tuple[str, str, int], list[Step]] = {}
    totals: dict[tuple[str, str, int], int] = {}

    def group(item: BenchItem) -> list[Step] | None:
        if item.prompt.step_count == 1:
            return None
        key = (item.route_id, item.prompt.id, item.repeat)
        totals[key] = item.prompt.step_count
        return groups.setdefault(key, [])

    for item, run in progress.outcomes:
        steps = group(item)
        if steps is not None:
            steps.append(Step.from_run(item.step, run))
    for item, reason in progress.skipped:
        steps = group(item)
        if steps is not None:
            steps.append(Step(step=item.step, status="skipped", note=reason))
    found = []
    for (route, prompt, repeat), steps in sorted(groups.items()):
        ordered = tuple(sorted(steps, key=lambda s: s.step))
        found.append(Conversation(route, prompt, repeat, ordered, totals[route, prompt, repeat]))
    return found


def _money(value: float | None) -> str:
    return "unknown" if value is None else dollars(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


INTRO = (
    "The assistant family's steps on each route: whether the route kept the conversation or the "
    "team would have to chain the calls itself (the route board: does this job need "
    "Responses-style tool use?)."
)

Table = tuple[tuple[str, ...], list[tuple[str, ...]]]  # headings, rows


def conversation_tables(found: Sequence[Conversation]) -> tuple[Table, Table]:
    """The figures of the multi-step requests, for the Markdown and the page alike: one row per
    route and prompt, then every step with the run that fed it."""
    totals: list[tuple[str, ...]] = [
        (
            c.route_id,
            f"{c.prompt_id} #{c.repeat + 1}",
            f"{c.completed}/{c.total}",
            f"{c.latency_s:.2f}s",
            _money(c.cost_usd),
            c.orchestration,
        )
        for c in found
    ]
    steps: list[tuple[str, ...]] = []
    via = {"previous_response_id": " (response id)", "input_image": " (its output)"}
    for c in found:
        for s in c.steps:
            fed = "—"
            if s.follows_run is not None:
                fed = f"run {s.follows_run}{via.get(s.carried_by or '', '')}"
            steps.append(
                (
                    c.route_id,
                    f"{c.prompt_id} #{c.repeat + 1}",
                    f"{s.step}/{c.total}",
                    s.status,
                    str(s.run_id or "—"),
                    fed,
                    s.response_id or "—",
                    f"{s.latency_s:.2f}s" if s.latency_s is not None else "—",
                    _money(s.cost_usd) if s.run_id is not None else "—",
                    s.note or (f"said: {s.said}" if s.said else ""),
                )
            )
    step_heads = ("route", "prompt", "step", "status", "run", "fed by", "response id")
    return (
        (("route", "prompt", "steps done", "total latency", "total cost", "orchestrated"), totals),
        ((*step_heads, "latency", "cost", "note"), steps),
    )


def conversation_lines(found: Sequence[Conversation]) -> list[str]:
    """The report's section on multi-step requests (Markdown)."""
    if not found:
        return []
    lines = ["## Multi-step requests", "", INTRO]
    for heads, rows in conversation_tables(found):
        lines += ["", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines

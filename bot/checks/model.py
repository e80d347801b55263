"""What a check is asked (the request, as logged) and what it answers (a result per image)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from storage.checks import summarise, verdict
from storage.tables import Run, RunCheck

# How each check is named where people read it (stats columns, report headers).
CHECK_LABELS = {
    "text": "text",
    "edit": "kept",
    "transparency": "alpha",
    "delivery": "as asked",
    "repeat": "repeat",
}
PASSED, FAILED, NOT_RUN = "passed", "failed", "not_run"

_QUOTED = re.compile(
    r'"([^"\n]{1,300})"'  # "double"
    r"|“([^”\n]{1,300})”"  # “curly double”
    r"|«([^»\n]{1,300})»"  # «guillemets»
    # 'single' or ‘curly single’, not an apostrophe inside a word (don't, Joe's)
    r"|(?<!\w)['‘]((?:[^'’\n]|['’]\w){1,300}?)['’](?!\w)"
)


def quoted_text(prompt: str) -> tuple[str, ...]:
    """The strings a prompt quotes: the text the image is asked to show, in order, once each."""
    found: list[str] = []
    for match in _QUOTED.finditer(prompt):
        text = " ".join(next(g for g in match.groups() if g is not None).split())
        if any(ch.isalnum() for ch in text) and text not in found:
            found.append(text)
    return tuple(found)


@dataclass(frozen=True)
class Ask:
    """What the run asked for, as far as the checks are concerned."""

    texts: tuple[str, ...] = ()  # quoted strings to read back
    size: str | None = None  # the size as sent (run.size: "WxH" or "W:H"); None = not asked
    output_format: str | None = None  # png | jpeg | webp; None = not asked
    n: int = 1
    transparent: bool = False
    source: bytes | None = None  # the image an edit started from
    mask: bytes | None = None  # PNG, transparent where to edit

    @classmethod
    def of(cls, run: Run, source: bytes | None = None, mask: bytes | None = None) -> Ask:
        params = run.params or {}
        asked_size = params.get("size")
        size = run.size if asked_size and str(asked_size).lower() != "auto" else None
        return cls(
            texts=quoted_text(run.prompt),
            size=size if size and size != "auto" else None,
            output_format=params.get("output_format"),
            n=run.n,
            transparent=params.get("background") == "transparent",
            source=source,
            mask=mask,
        )


@dataclass(frozen=True)
class CheckResult:
    """One check of one image: passed or failed against its pass mark, or not run (and why)."""

    name: str
    status: str
    summary: str  # a few words with the figure: "text 96%"
    score: float | None = None
    threshold: float | None = None
    reason: str | None = None  # failed: what failed, in words; not run: why
    detail: Mapping[str, Any] = field(default_factory=dict)
    position: int = 0
    duration_s: float | None = None

    def row(self) -> RunCheck:
        return RunCheck(
            run_id=0,  # set when stored
            name=self.name,
            position=self.position,
            status=self.status,
            score=None if self.score is None else round(self.score, 4),
            threshold=self.threshold,
            summary=self.summary[:200],
            reason=self.reason,
            detail=dict(self.detail),
            duration_s=None if self.duration_s is None else round(self.duration_s, 4),
        )


def not_run(name: str, reason: str, position: int = 0) -> CheckResult:
    label = CHECK_LABELS[name]
    return CheckResult(name, NOT_RUN, f"{label} not run", reason=reason, position=position)


@dataclass(frozen=True)
class CheckLine:
    """One check over a run's images: the worst status, the mean score and what to say."""

    name: str
    status: str
    score: float | None
    summary: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class CheckReport:
    """A run's stored checks, as the lines people read."""

    rows: Sequence[RunCheck] = ()

    def lines(self) -> list[CheckLine]:
        out = []
        for summary in summarise(self.rows):
            rows = summary.rows
            text = rows[0].summary if len(rows) == 1 else _many(summary.name, rows, summary.score)
            reasons = tuple(
                (f"image {r.position + 1}: " if len(rows) > 1 else "") + r.reason
                for r in rows
                if r.reason and r.status != PASSED
            )
            out.append(CheckLine(summary.name, summary.status, summary.score, text, reasons))
        return out

    @property
    def verdict(self) -> bool | None:
        """True when every check that ran passed, False when one failed, None when none ran."""
        return verdict(self.rows)

    def text(self) -> str:
        """Plain words for a terminal: "text 96% · kept 98% outside mask"."""
        parts = []
        for line in self.lines():
            mark = {PASSED: "", FAILED: "FAILED ", NOT_RUN: ""}[line.status]
            parts.append(mark + line.summary)
        return " · ".join(parts)


def _many(name: str, rows: Sequence[RunCheck], score: float | None) -> str:
    label = CHECK_LABELS.get(name, name)
    if score is None:
        return f"{label} not run"
    return f"{label} {score:.0%} (mean of {len(rows)} images)"

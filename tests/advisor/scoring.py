"""Scores the advisor on the question files, per family: the figure the docs report.

Run: uv run python -m tests.advisor.scoring [--set families] [--failures]

A question is fully right when the route is one of the acceptable ids (or null when null is
expected), the caveats match exactly, the answer's scope matches (an in-scope answer unless the
row says "out-of-scope"/"unclear"), and no route the row lists under "vetoed" is recommended or
offered as an alternative.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from advisor import Advice, advise

DATA = Path(__file__).resolve().parents[1] / "data" / "advisor"
SETS = ("examples", "questions", "holdout", "families", "unseen")
IN_SCOPE = "advice"


@dataclass(frozen=True)
class Case:
    question: str
    family: str
    lang: str
    routes: tuple[str, ...] | None
    caveats: frozenset[str]
    scopes: tuple[str, ...]
    vetoed: frozenset[str]

    def mismatch(self, advice: Advice, *, full: bool = True) -> str | None:
        """None when the advice is right, else what was wrong, in one line.

        `full=False` checks only the route and the caveats (the older, weaker measure).
        """
        problems: list[str] = []
        if self.routes is None:
            if advice.route is not None:
                problems.append(f"route {advice.route}, expected none")
        elif advice.route not in self.routes:
            problems.append(f"route {advice.route}, expected {'/'.join(self.routes)}")
        got_caveats = frozenset(advice.caveat_ids)
        if got_caveats != self.caveats:
            problems.append(f"caveats {sorted(got_caveats)}, expected {sorted(self.caveats)}")
        if not full:
            return "; ".join(problems) or None
        scope = getattr(advice, "scope", IN_SCOPE)
        if scope not in self.scopes:
            problems.append(f"scope {scope}, expected {'/'.join(self.scopes)}")
        offered = {advice.route, *(alt.route for alt in advice.alternatives)}
        if self.vetoed & offered:
            problems.append(f"vetoed {sorted(self.vetoed & offered)} offered")
        return "; ".join(problems) or None


def load(name: str) -> list[Case]:
    cases: list[Case] = []
    for line in (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        routes = row["route"]
        cases.append(
            Case(
                question=row["q"],
                family=row.get("family", name),
                lang=row.get("lang", "en"),
                routes=None if routes is None else tuple(routes),
                caveats=frozenset(row.get("caveats", [])),
                scopes=tuple(row.get("scope", [IN_SCOPE])),
                vetoed=frozenset(row.get("vetoed", [])),
            )
        )
    return cases


@dataclass(frozen=True)
class Score:
    label: str
    right: int
    total: int
    failures: tuple[str, ...]
    route_and_caveats: int

    @property
    def ratio(self) -> float:
        return self.right / self.total if self.total else 1.0

    def line(self) -> str:
        partial = self.route_and_caveats / self.total if self.total else 1.0
        return (
            f"{self.label:<16} fully right {self.right:>4}/{self.total:<4} {self.ratio:6.1%}"
            f"   route+caveats {self.route_and_caveats:>4}/{self.total:<4} {partial:6.1%}"
        )


def score(cases: Sequence[Case], label: str) -> Score:
    failures = []
    partial = 0
    for case in cases:
        advice = advise(case.question)
        problem = case.mismatch(advice)
        if problem is not None:
            failures.append(f"[{case.family}/{case.lang}] {case.question[:100]!r}: {problem}")
        partial += case.mismatch(advice, full=False) is None
    return Score(label, len(cases) - len(failures), len(cases), tuple(failures), partial)


def by_family(cases: Sequence[Case]) -> list[Score]:
    families = list(dict.fromkeys(case.family for case in cases))
    scores = [score([c for c in cases if c.family == f], f) for f in families]
    scores.append(score(cases, "all"))
    return scores


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", dest="sets", action="append", choices=SETS)
    parser.add_argument("--failures", action="store_true", help="list every miss")
    parser.add_argument("--by-language", action="store_true", help="also split by language")
    args = parser.parse_args(argv)
    for name in args.sets or ["families"]:
        cases = load(name)
        print(f"== {name}.jsonl")
        scores = by_family(cases)
        if args.by_language:
            languages = list(dict.fromkeys(case.lang for case in cases))
            scores.extend(
                score([c for c in cases if c.lang == lang], f"lang {lang}") for lang in languages
            )
        for item in scores:
            print(item.line())
        if args.failures:
            for item in scores:
                if item.label == "all":
                    print("\n".join(f"  {failure}" for failure in item.failures))


if __name__ == "__main__":
    main()

"""Times advise() per question over every test question; prints median and p99 in microseconds.

Run: uv run python bench/bench_advisor.py [--rounds N]

The machine is shared, so the p99 of single calls mostly measures other processes; the "fastest
of N rounds" line gives each question's own cost, which is what the 1 ms budget is about.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from advisor import advise  # noqa: E402  (after the path tweak, so the script runs from anywhere)

DATA = ROOT / "tests" / "data" / "advisor"


def questions() -> list[str]:
    found: list[str] = []
    for name in (
        "examples.jsonl",
        "questions.jsonl",
        "holdout.jsonl",
        "families.jsonl",
        "unseen.jsonl",
    ):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                found.append(json.loads(line)["q"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50, help="passes over all questions")
    args = parser.parse_args()
    corpus = questions()
    for question in corpus:  # warm-up: board load, phrase index, regex compile
        advise(question)
    timings_ns: list[int] = []
    short_ns: list[int] = []  # questions of chat-message length (<= 500 characters)
    fastest = [sys.maxsize] * len(corpus)
    clock = time.perf_counter_ns
    for _ in range(args.rounds):
        for index, question in enumerate(corpus):
            start = clock()
            advise(question)
            elapsed = clock() - start
            timings_ns.append(elapsed)
            fastest[index] = min(fastest[index], elapsed)
            if len(question) <= 500:
                short_ns.append(elapsed)
    longest = max(len(q) for q in corpus)
    print(f"questions: {len(corpus)}  rounds: {args.rounds}  calls: {len(timings_ns)}")
    report("all questions", timings_ns)
    report(f"<= 500 chars ({sum(len(q) <= 500 for q in corpus)} questions)", short_ns)
    report(f"fastest of {args.rounds} rounds, per question", fastest)
    print(f"slowest call: {max(timings_ns) / 1000:.1f} µs (longest question: {longest} chars)")


def report(label: str, timings_ns: list[int]) -> None:
    ordered = sorted(timings_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    median = statistics.median(ordered)
    print(f"{label}: median {median / 1000:.1f} µs, p99 {p99 / 1000:.1f} µs per question")


if __name__ == "__main__":
    main()

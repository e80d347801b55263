"""The advisor against question sets: the issue's examples, our own sets, and a holdout.

Format (one JSON object per line): {"q": question, "route": [acceptable ids] | null,
"caveats": [ids]}, plus optional "family", "lang", "scope" (acceptable answer scopes, default
"advice") and "vetoed" (routes that must be neither the route nor an alternative). A missing
"caveats" key means no caveat is expected. Caveats must match exactly: an extra caveat is as
wrong as a missing one, because every caveat the advisor raises is shown to the user as advice.
Scoring lives in tests/advisor/scoring.py, which also prints the per-family table for the docs.
"""

from __future__ import annotations

import pytest

from advisor import CAVEAT_IDS, ROUTE_IDS, advise
from tests.advisor.scoring import SETS, Case, by_family, load, score

EXAMPLES = load("examples")


@pytest.mark.parametrize("case", EXAMPLES, ids=[c.question[:60] for c in EXAMPLES])
def test_every_issue_example_gives_the_expected_route_and_caveats(case: Case) -> None:
    assert case.mismatch(advise(case.question)) is None


# Own set: 251 questions in three batches, each scored before the rules were tuned on it:
# 167/178, 40/43 and 27/30 on first run; 100% after general fixes. The threshold leaves room
# for a deliberate trade-off when the board is edited, not for regressions to go unnoticed.
QUESTIONS_MIN_ACCURACY = 0.97
# Holdout: 42 questions written before the rules existed. First run: 40/42 (95.2%); two
# general fixes later it passes fully. 20 more written later, never seen by the rules: 19/20
# on first run, fixed in general.
HOLDOUT_MIN_ACCURACY = 0.90
# Families: 242 harder questions in six families (vetoes, priority, caveat meaning, six
# languages, indirect wording, out-of-scope), written before the rules for them existed. First
# run 113/242 (46.7%, tests/data/advisor/scores-before.txt); after general fixes 242/242.
FAMILIES_MIN_ACCURACY = 0.97
FAMILY_MIN_ACCURACY = 0.90
# Unseen: 56 questions in the same families, written at the same time as the family set and
# kept out of tuning; scored once at the end: 49/56 (87.5%, tests/data/advisor/scores-unseen.txt).
# This is the figure we claim for wording nobody rehearsed; a lower score is a regression.
UNSEEN_MIN_ACCURACY = 0.85


def test_own_question_set_accuracy() -> None:
    cases = load("questions")
    assert len(cases) >= 150
    result = score(cases, "questions")
    assert result.ratio >= QUESTIONS_MIN_ACCURACY, "\n".join(result.failures)


def test_holdout_accuracy() -> None:
    cases = load("holdout")
    assert len(cases) >= 60
    result = score(cases, "holdout")
    assert result.ratio >= HOLDOUT_MIN_ACCURACY, "\n".join(result.failures)


def test_family_set_accuracy_overall_and_per_family() -> None:
    cases = load("families")
    assert len(cases) >= 200
    scores = by_family(cases)
    families = {s.label for s in scores} - {"all"}
    assert families == {
        "veto",
        "priority",
        "caveat-meaning",
        "language",
        "indirect",
        "out-of-scope",
    }
    for item in scores:
        limit = FAMILIES_MIN_ACCURACY if item.label == "all" else FAMILY_MIN_ACCURACY
        assert item.ratio >= limit, f"{item.line()}\n" + "\n".join(item.failures)


def test_unseen_set_accuracy() -> None:
    cases = load("unseen")
    assert len(cases) >= 40
    result = score(cases, "unseen")
    assert result.ratio >= UNSEEN_MIN_ACCURACY, "\n".join(result.failures)


def test_every_language_covers_every_route_and_caveat() -> None:
    # The issue's bar: each language, each route and caveat signal, in the family set.
    cases = [c for c in load("families") if c.family == "language"]
    for lang in ("es", "de", "fr", "pt", "ja", "zh"):
        ours = [c for c in cases if c.lang == lang]
        routes = {r for c in ours if c.routes for r in c.routes}
        caveats = {cv for c in ours for cv in c.caveats}
        assert set(ROUTE_IDS) <= routes | {"self-hosted"}, lang
        assert {"openai", "google", "flux", "gateway", "self-hosted"} <= routes, lang
        assert set(CAVEAT_IDS) <= caveats, lang


def test_question_files_use_only_public_ids() -> None:
    for name in SETS:
        for case in load(name):
            assert case.routes is None or set(case.routes) <= set(ROUTE_IDS), case
            assert case.caveats <= set(CAVEAT_IDS), case
            assert case.vetoed <= set(ROUTE_IDS), case
            assert set(case.scopes) <= {"advice", "out-of-scope", "unclear"}, case


def test_sets_do_not_overlap() -> None:
    # A held-out set only means something if none of its questions is also a tuning question.
    # (Blank input is in several on purpose: it is a required edge case, not wording.)
    tuning = {c.question for name in ("examples", "questions", "families") for c in load(name)}
    for held_out in ("holdout", "unseen"):
        questions = {c.question for c in load(held_out) if c.question.strip()}
        assert not tuning & questions, held_out

"""Property tests: advise() never raises, answers with public ids only, never recommends or offers
a vetoed route, and never shows scoring internals in its plain-language answer."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from advisor import CAVEAT_IDS, ROUTE_IDS, advise

# Words and cues the rules react to, so generated text exercises negation, combos and caveats
# rather than only falling through to the default.
VOCABULARY = [
    "not", "no", "never", "without", "avoid", "isn't", "don't", "out of the question",
    "migrating from", "to", "but", "and", "or", "we", "our", "own", "GPUs", "GCP", "Vertex",
    "OpenAI", "gpt-image-2", "DALL-E", "FLUX", "BFL", "Kontext", "gateway", "OpenRouter",
    "one", "API", "key", "several", "providers", "failover", "self-host", "on-prem",
    "air-gapped", "VPC", "leave", "transparent", "alpha", "logo", "sticker", "assistant",
    "agent", "tools", "same", "flow", "403", "organization", "verified", "Responses API",
    "fine-tune", "open weights", "photoreal", "A/B", "bill", "strongest", "in flux",
    "must", "main requirement", "half our", "although", "already verified", "video", "PTO",
    "sin", "fondo transparente", "nicht", "sans", "não", "透過", "ロゴ", "ない", "谷歌云", "不能",
    "离开", "Google Cloud上で", "agnet", "transparnet",
    ",", ".", ";", "?", "!", "—", "’", "“", "”", "\n", "\t", "\x00", "🙂", "ß", "İ", "ﬁ", "、", "。",
]  # fmt: skip

ROUTES = set(ROUTE_IDS)
CAVEATS = set(CAVEAT_IDS)
HOSTED = ROUTES - {"self-hosted"}
# Words of the scoring machinery that a user must never read in `why` or a reason.
INTERNALS = re.compile(
    r"\bscores?\b|\bweights? \d|\(weight|board order|tie-break|tie on total|runner-up|\(\+\d",
    re.IGNORECASE,
)
QUOTED = re.compile(r"“[^”]*”", re.DOTALL)


def assert_well_formed(question: str) -> None:
    advice = advise(question)
    assert advice.why.strip()
    assert advice.first_benchmark.strip()
    # The user's own words are quoted “like this”; only the advisor's wording is checked.
    words = QUOTED.sub("", " ".join([advice.why, *(alt.reason for alt in advice.alternatives)]))
    assert not INTERNALS.search(words), advice.why
    json.dumps(advice.to_json())  # always serialisable
    assert advice.to_text()
    if advice.scope != "advice":
        assert advice.scope in ("out-of-scope", "unclear")
        assert advice.route is None and not advice.caveats and not advice.alternatives
        assert not advice.verify and not advice.is_default
        return
    assert advice.route is None or advice.route in ROUTES
    assert set(advice.caveat_ids) <= CAVEATS
    assert len(set(advice.caveat_ids)) == len(advice.caveat_ids)
    alternatives = [alt.route for alt in advice.alternatives]
    assert all(alt in ROUTES and alt != advice.route for alt in alternatives)
    assert not set(alternatives) & set(advice.ruled_out)
    if advice.vetoed_by:
        # A hard requirement: no hosted route is recommended or offered, ever.
        assert set(advice.ruled_out) >= HOSTED
        assert not {advice.route, *alternatives} & HOSTED
    # Only when the question rules out every other row can there be no alternative at all.
    others = ROUTES - {advice.route} - set(advice.ruled_out)
    if advice.caveat_ids and "transparency" in advice.caveat_ids:
        others.discard("openai")
    assert min(1, len(others)) <= len(alternatives) <= 2
    if advice.route is None:
        assert "transparency" in advice.caveat_ids or advice.vetoed_by
    else:
        assert advice.verify
    assert len(advice.verify) <= 5
    assert not set(advice.verify) & set(advice.verify_more)
    assert advice.is_default is False or advice.route is not None
    assert len(advice.benchmark_both) in (0, 2)
    if advice.benchmark_both:
        assert advice.benchmark_both[0] == advice.route
        assert advice.benchmark_both[1] in alternatives


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_any_text_gives_well_formed_advice(question: str) -> None:
    assert_well_formed(question)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY), max_size=40).map(" ".join))
def test_board_vocabulary_soup_gives_well_formed_advice(question: str) -> None:
    assert_well_formed(question)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=8)),
        max_size=30,
    ).map("".join)
)
def test_glued_words_and_noise_give_well_formed_advice(question: str) -> None:
    assert_well_formed(question)


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_advice_is_deterministic(question: str) -> None:
    assert advise(question) == advise(question)


def test_huge_and_hostile_inputs() -> None:
    for question in (
        "x" * 100_000,
        "we need one api and failover on gcp not openai " * 2_200,
        "agent tool " * 9_000,
        "🙂" * 50_000,
        "\x00\x01\x7f\u2028\ud800" * 20_000,  # includes a lone surrogate
        "".join(chr(c) for c in range(0x20, 0x3000)),
    ):
        assert_well_formed(question)
    assert len(advise("transparent logo " * 10_000).matched) <= 100
    # A long paste repeats the same words: `matched` lists each phrase and meaning once.
    matched = advise("we need one api and failover on gcp " * 500).matched
    keys = [(m.phrase.casefold(), m.meaning, m.counted) for m in matched]
    assert len(keys) == len(set(keys)) and len(keys) < 10

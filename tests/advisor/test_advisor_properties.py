"""Property tests: advise() never raises, and always answers with public ids only."""

from __future__ import annotations

import json

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
    ",", ".", ";", "?", "!", "—", "’", "“", "”", "\n", "\t", "\x00", "🙂", "ß", "İ", "ﬁ",
]  # fmt: skip

ROUTES = set(ROUTE_IDS)
CAVEATS = set(CAVEAT_IDS)


def assert_well_formed(question: str) -> None:
    advice = advise(question)
    assert advice.route is None or advice.route in ROUTES
    assert set(advice.caveat_ids) <= CAVEATS
    assert len(set(advice.caveat_ids)) == len(advice.caveat_ids)
    assert advice.why.strip()
    assert advice.first_benchmark.strip()
    alternatives = [alt.route for alt in advice.alternatives]
    assert all(alt in ROUTES and alt != advice.route for alt in alternatives)
    assert not set(alternatives) & set(advice.ruled_out)
    # Only when the question rules out every other row can there be no alternative at all.
    others = ROUTES - {advice.route} - set(advice.ruled_out)
    if advice.caveat_ids and "transparency" in advice.caveat_ids:
        others.discard("openai")
    assert min(1, len(others)) <= len(alternatives) <= 2
    if advice.route is None:
        assert "transparency" in advice.caveat_ids
    else:
        assert advice.verify
    assert advice.is_default is False or advice.route is not None
    json.dumps(advice.to_json())  # always serialisable
    assert advice.to_text()


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

"""Model lifecycle: the advisor names today's model, from facts handed in as plain values.

The facts below are written out literally from the product's provider notes ("Lifecycle",
re-checked 2026-11-25), the way the bot will hand in its live catalog.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from advisor import ModelFact, advise, board_models

CHECKED = date(2026, 11, 25)
GOOGLE_MIGRATION = "firebase.google.com/docs/ai-logic/imagen-models-migration"
GEMINI_DEPRECATIONS = "ai.google.dev/gemini-api/docs/deprecations"

FACTS: dict[str, ModelFact] = {
    fact.model_id: fact
    for fact in (
        ModelFact(
            "imagen-4.0-ultra-generate-001",
            "Imagen 4 Ultra",
            "retired",
            date(2026, 8, 17),
            "gemini-3-pro-image",
            GOOGLE_MIGRATION,
            CHECKED,
            "Google",
        ),
        ModelFact("gemini-3-pro-image", "Gemini 3 Pro Image", "current", None, None,
                  GEMINI_DEPRECATIONS, CHECKED, "Google"),
        ModelFact("gemini-2.5-flash-image", "Gemini 2.5 Flash Image", "retired",
                  date(2026, 10, 2), "gemini-3.1-flash-image", GEMINI_DEPRECATIONS, CHECKED,
                  "Google"),
        ModelFact("gemini-3.1-flash-image", "Gemini 3.1 Flash Image", "current", None, None,
                  GEMINI_DEPRECATIONS, CHECKED, "Google"),
        ModelFact("gpt-image-2", "GPT Image 2", "current", None, None,
                  "platform.openai.com/docs/models/gpt-image-2", CHECKED, "OpenAI"),
        ModelFact("gpt-image-1", "GPT Image 1", "retired", date(2026, 10, 23), "gpt-image-2",
                  "platform.openai.com/docs/deprecations", CHECKED, "OpenAI"),
        ModelFact("flux-pro-1.1", "FLUX1.1 [pro]", "current", None, None, "docs.bfl.ai",
                  CHECKED, "Black Forest Labs"),
        ModelFact("flux-kontext-pro", "FLUX.1 Kontext [pro]", "current", None, None,
                  "docs.bfl.ai", CHECKED, "Black Forest Labs"),
        ModelFact("flux-dev", "FLUX.1 [dev]", "current", None, None, "docs.bfl.ai", CHECKED,
                  "Black Forest Labs"),
    )
}  # fmt: skip

ARTICLE_LINE = (
    "The article named Imagen 4 Ultra; Google shut it down on 2026-08-17 and names "
    "Gemini 3 Pro Image (`gemini-3-pro-image`) as its replacement."
)


def test_google_answer_names_the_replacement_and_says_why_in_one_line() -> None:
    advice = advise("Our production stack is on Google Cloud and Vertex AI", models=FACTS)
    assert advice.route == "google"
    assert advice.first_benchmark == "Gemini 3 Pro Image (`gemini-3-pro-image`) on Vertex AI"
    assert ARTICLE_LINE in advice.why
    [change] = advice.lifecycle
    assert (change.route, change.article_model, change.model) == (
        "google",
        "imagen-4.0-ultra-generate-001",
        "gemini-3-pro-image",
    )
    assert (change.source, change.checked) == (GOOGLE_MIGRATION, "2026-11-25")
    assert advice.to_json()["lifecycle"][0]["model"] == "gemini-3-pro-image"


def test_no_text_of_the_answer_names_a_retired_model_as_something_to_use() -> None:
    advice = advise("We're on Vertex AI and want to compare models", models=FACTS)
    shown = " ".join(
        [advice.first_benchmark, *advice.verify, *advice.verify_more]
        + [alt.first_benchmark for alt in advice.alternatives]
        + [alt.reason for alt in advice.alternatives]
    )
    assert "imagen-4.0-ultra" not in shown and "Imagen 4 Ultra" not in shown


def test_a_future_shutdown_changes_one_fact_not_the_rules() -> None:
    facts = dict(FACTS)
    facts["gemini-3-pro-image"] = replace(
        facts["gemini-3-pro-image"],
        status="retired",
        shutdown=date(2027, 3, 1),
        replacement="gemini-4-pro-image",
    )
    facts["gemini-4-pro-image"] = ModelFact(
        "gemini-4-pro-image", "Gemini 4 Pro Image", "current", source="test", checked=CHECKED
    )
    advice = advise("we are on GCP", models=facts)
    assert advice.first_benchmark == "Gemini 4 Pro Image (`gemini-4-pro-image`) on Vertex AI"
    assert "its replacement today is Gemini 4 Pro Image" in advice.why


def test_an_alternatives_model_change_is_said_in_the_notes() -> None:
    advice = advise("We already use the OpenAI API", models=FACTS)
    assert [alt.route for alt in advice.alternatives] == ["google", "gateway"]
    assert "Gemini 3 Pro Image" in advice.alternatives[0].reason
    assert ARTICLE_LINE in advice.notes


def test_a_deprecated_model_is_followed_to_its_replacement_too() -> None:
    facts = dict(FACTS)
    facts["gpt-image-2"] = replace(
        facts["gpt-image-2"], status="deprecated", shutdown=date(2027, 6, 1),
        replacement="gpt-image-3",
    )  # fmt: skip
    facts["gpt-image-3"] = ModelFact("gpt-image-3", "GPT Image 3", "current", provider="OpenAI")
    advice = advise("We already use the OpenAI API", models=facts)
    assert advice.first_benchmark.startswith("GPT Image 3 (`gpt-image-3`)")
    assert "OpenAI is retiring it on 2027-06-01" in advice.why


def test_provider_ids_as_the_routes_data_spells_them_read_naturally() -> None:
    facts = dict(FACTS)
    facts["imagen-4.0-ultra-generate-001"] = replace(
        facts["imagen-4.0-ultra-generate-001"], provider="google"
    )
    assert ARTICLE_LINE in advise("we are on GCP", models=facts).why


def test_a_replacement_without_a_fact_is_named_by_its_id() -> None:
    facts = {k: v for k, v in FACTS.items() if k != "gemini-3-pro-image"}
    advice = advise("we are on GCP", models=facts)
    assert advice.first_benchmark == "gemini-3-pro-image on Vertex AI"


def test_a_cycle_in_handed_in_facts_does_not_loop() -> None:
    facts = {
        "imagen-4.0-ultra-generate-001": replace(
            FACTS["imagen-4.0-ultra-generate-001"], replacement="x"
        ),
        "x": ModelFact("x", "X", "retired", replacement="imagen-4.0-ultra-generate-001"),
    }
    advice = advise("we are on GCP", models=facts)
    assert advice.route == "google" and advice.first_benchmark


def test_without_facts_the_board_defaults_never_name_a_shut_down_model() -> None:
    advice = advise("we are on Vertex AI")
    assert advice.first_benchmark.startswith("Gemini 3 Pro Image")
    assert ARTICLE_LINE in advice.why
    defaults = {fact.model_id: fact for fact in board_models()}
    assert defaults["imagen-4.0-ultra-generate-001"].status == "retired"
    assert all(fact.source and fact.checked for fact in defaults.values())


@pytest.mark.parametrize("question", ["", "we are on GCP", "transparent logos", "on-prem"])
def test_models_is_keyword_only_and_optional(question: str) -> None:
    assert advise(question, (), models=FACTS) == advise(question, (), models=FACTS)
    with pytest.raises(TypeError):
        advise(question, (), FACTS)  # type: ignore[call-arg]

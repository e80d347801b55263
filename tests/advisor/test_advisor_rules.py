"""Unit tests for the advisor's rules: reading, negation, resolution, caveats, output shape."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from advisor import (
    CAVEAT_IDS,
    ROUTE_IDS,
    Advice,
    BoardError,
    WorkspaceRoute,
    advise,
    board_caveats,
    board_rows,
)
from advisor.board import load_board, parse_board

ADVISOR_DIR = Path(__file__).resolve().parents[2] / "advisor"


def routed(question: str) -> str | None:
    return advise(question).route


# --- reading: normalisation, word boundaries, variants -------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "We’re on Google Cloud",  # curly apostrophe
        "WE ARE ON GOOGLE CLOUD!!!",
        "we are on google-cloud",
        "Ｇｏｏｇｌｅ Ｃｌｏｕｄ project",  # full-width, folded by NFKC
        "our stack is on Vertx",  # typo
        "VertexAI project",
        "googel cloud credits",
    ],
)
def test_normalisation_and_variants_reach_the_same_signal(question: str) -> None:
    assert routed(question) == "google"


@pytest.mark.parametrize(
    "question",
    [
        "self hosted",
        "self-hosted",
        "selfhosted",
        "self-hosting",
        "we self host",
        "on prem",
        "on-prem",
        "on-premise",
        "on-premises",
        "onprem",
        "air-gapped",
        "airgapped",
    ],
)
def test_self_hosting_spelling_variants(question: str) -> None:
    assert routed(question) == "self-hosted"


@pytest.mark.parametrize("question", ["transparant background", "transparent backgrounds"])
def test_transparency_spelling_variants(question: str) -> None:
    assert advise(question).caveat_ids == ("transparency",)


def test_plurals_fold_to_the_same_signal() -> None:
    assert routed("we have our own GPU") == routed("we have our own GPUs") == "self-hosted"
    assert advise("a sticker").caveat_ids == advise("stickers").caveat_ids == ("transparency",)


@pytest.mark.parametrize(
    "question",
    [
        "our plans are in flux, what image API should we try?",  # not FLUX the model
        "iconic product imagery for our homepage",  # not an icon
        "we googled around for image APIs",  # not Google
        "we want transparent pricing",  # not transparency
        "the product is still in alpha",  # not an alpha channel
    ],
)
def test_word_boundaries_and_neutral_phrases(question: str) -> None:
    advice = advise(question)
    assert advice.route == "openai"
    assert advice.is_default
    assert advice.caveat_ids == ()


def test_phrases_do_not_match_across_clause_punctuation() -> None:
    # "Google, Cloud Run" still says Google; the point is "not" in one clause does not reach
    # into the next one.
    assert routed("we are not on AWS, we are on GCP") == "google"
    assert routed("Gemini? No. We are on OpenAI") == "openai"


# --- negation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "ruled_out"),
    [
        ("we are NOT on GCP", "google"),
        ("we don't use Google Cloud at all", "google"),
        ("self-hosting is out of the question", "self-hosted"),
        ("no GPUs of our own", "self-hosted"),
        ("without a gateway", "gateway"),
        ("we're not going to self-host", "self-hosted"),
        ("avoid OpenAI", "openai"),
        ("OpenAI is not allowed by procurement", "openai"),
        ("we're not allowed to use OpenAI", "openai"),
        ("Replicate isn't an option", None),
        ("neither Vertex nor OpenRouter", "google"),
        ("we're migrating away from Vertex", "google"),
    ],
)
def test_negation_removes_the_signal(question: str, ruled_out: str | None) -> None:
    advice = advise(question)
    assert all(m.counted != "for" for m in advice.matched if m.kind == "route")
    if ruled_out is not None:
        assert advice.route != ruled_out
        assert ruled_out not in [alt.route for alt in advice.alternatives]


def test_negated_default_moves_the_default_and_says_so() -> None:
    advice = advise("We can't use OpenAI. Which image API?")
    assert advice.route == "google"  # next row in board order
    assert advice.is_default
    assert "ruled out" in advice.why
    assert "openai" not in [alt.route for alt in advice.alternatives]


def test_negation_reaches_the_first_thing_only_plus_coordinated_list() -> None:
    # "isn't verified" is about verification, not about OpenAI.
    advice = advise("Our organisation isn't verified with OpenAI yet")
    assert advice.route == "openai"
    assert advice.caveat_ids == ("org-verification",)
    # "not X or Y" negates both.
    assert routed("we don't use GCP or OpenRouter, we use BFL") == "flux"


def test_migration_negates_the_source_not_the_destination() -> None:
    advice = advise("moving from DALL-E to Imagen on Vertex")
    assert advice.route == "google"
    against = [m.phrase for m in advice.matched if m.counted == "against"]
    assert against == ["DALL-E"]


def test_negation_that_means_a_requirement_counts_for_the_row() -> None:
    # Denying the cloud or data egress is a self-hosting requirement, not its absence.
    assert routed("nothing may go to a third-party API") == "self-hosted"
    assert routed("data must not leave our VPC") == "self-hosted"
    assert routed("we don't want vendor lock-in") == "gateway"


def test_asking_about_avoiding_is_not_avoiding() -> None:
    assert routed("is there any reason to avoid LiteLLM?") == "gateway"


def test_negated_caveat_trigger_raises_no_caveat() -> None:
    assert advise("we don't need transparent backgrounds").caveat_ids == ()
    assert advise("no assistant or tools involved, one-shot generation").caveat_ids == ()


def test_weak_negated_hint_does_not_rule_a_row_out() -> None:
    advice = advise("no assistant involved, just product shots")
    assert advice.route == "openai"  # the default is not pushed away by a negated hint


# --- several constraints ----------------------------------------------------------------------


def test_strong_platform_beats_weak_job_hints() -> None:
    advice = advise("photoreal product renders with readable labels; our data is on BigQuery")
    assert advice.route == "google"
    assert "“photoreal” points to flux" in advice.why
    assert advice.alternatives[0].route == "flux"  # the runner-up is kept as an alternative
    assert "“photoreal”" in advice.alternatives[0].reason


def test_hard_constraint_beats_platform() -> None:
    advice = advise("We're on Google Cloud but everything must run air-gapped")
    assert advice.route == "self-hosted"
    assert advice.vetoed_by == ("air-gapped",)
    assert "google" in advice.ruled_out
    assert "google" not in [alt.route for alt in advice.alternatives]
    assert "You said “air-gapped”: no hosted route can meet that" in advice.why


def test_route_beats_model_name() -> None:
    assert routed("self-hosted FLUX dev") == "self-hosted"
    assert routed("FLUX via OpenRouter") == "gateway"
    assert routed("FLUX through Black Forest Labs") == "flux"


def test_true_tie_says_benchmark_both() -> None:
    advice = advise("We're on GCP and we use the OpenAI SDK")
    assert advice.benchmark_both == ("openai", "google")
    assert advice.route == "openai"
    assert "benchmark both" in advice.why
    assert "“GCP”" in advice.why and "“OpenAI SDK”" in advice.why
    assert advice.alternatives[0].route == "google"
    assert "benchmark both" in advice.alternatives[0].reason
    assert advice.to_json()["benchmark_both"] == ["openai", "google"]


def test_naming_a_provider_is_not_a_tie_with_a_job_description() -> None:
    advice = advise("We're on GCP and want photorealism")  # a platform vs a job of equal pull
    assert advice.benchmark_both == ()


def test_listing_providers_for_one_access_layer_is_the_gateway() -> None:
    advice = advise("We want a single API key for OpenAI, Google and FLUX models")
    assert advice.route == "gateway"
    assert "targets" in advice.why


def test_min_score_keeps_a_lone_weak_hint_from_overriding_the_default() -> None:
    advice = advise("we have a couple of GPUs somewhere, which image API should we try?")
    assert advice.route == "openai" and advice.is_default
    assert "self-hosted" in [alt.route for alt in advice.alternatives]


# --- default ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "Which image API should we try first?",
        "what should marketing use for product visuals?",
        "We are a small team and want to automate some of our seasonal content.",
    ],
)
def test_default_is_openai_and_flagged(question: str) -> None:
    advice = advise(question)
    assert advice.route == "openai"
    assert advice.is_default
    assert advice.scope == "advice"
    assert "default" in advice.why and "not a verdict" in advice.why
    assert "gpt-image-2" in advice.first_benchmark
    assert advice.caveat_ids == ()


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "hello?", "🙂", "asdf qwerty", "?!?!"])
def test_not_understood_well_enough_to_advise(question: str) -> None:
    advice = advise(question)
    assert (advice.route, advice.scope, advice.is_default) == (None, "unclear", False)
    assert advice.caveats == () and advice.alternatives == () and advice.verify == ()
    assert "e.g." in advice.why  # it shows how to ask


def test_empty_question_says_it_is_empty() -> None:
    assert advise("").why.startswith("The question is empty")


def test_a_script_the_advisor_does_not_read_is_said_plainly() -> None:
    advice = advise("Какой API для генерации изображений выбрать?")
    assert advice.scope == "unclear"
    assert "English, Spanish, German, French, Portuguese, Japanese and Chinese" in advice.why


def test_signal_backed_answer_is_not_flagged_default() -> None:
    assert not advise("We already use the OpenAI API").is_default


# --- caveats ----------------------------------------------------------------------------------


def test_transparency_only_gives_no_route_and_what_to_benchmark_instead() -> None:
    advice = advise("we need app icons with transparent backgrounds")
    assert advice.route is None
    assert advice.caveat_ids == ("transparency",)
    assert "No route fits as asked" in advice.first_benchmark
    assert "background-removal" in advice.first_benchmark
    assert "openai" not in [alt.route for alt in advice.alternatives]
    assert advice.in_workspace == ()


def test_transparency_with_platform_keeps_the_platform() -> None:
    advice = advise("we're on GCP and need transparent PNG stickers")
    assert advice.route == "google"
    assert advice.caveat_ids == ("transparency",)
    assert "alpha" in advice.first_benchmark


def test_transparency_on_an_explicit_openai_platform_never_recommends_gpt_image_2_for_it() -> None:
    advice = advise("We're an OpenAI shop and need logos with transparent backgrounds")
    assert advice.route == "openai"
    assert advice.caveat_ids == ("transparency",)
    assert advice.first_benchmark.startswith("Not gpt-image-2")


def test_transparency_asked_of_the_model_itself_gives_no_route() -> None:
    assert routed("Can GPT Image 2 make transparent stickers?") is None


def test_responses_tool_caveat() -> None:
    advice = advise("our assistant calls tools and then draws the image in the same flow")
    assert (advice.route, advice.caveat_ids) == ("openai", ("responses-tool",))
    assert "Images API" in advice.caveats[0].text
    # an "agent platform" alone is not a tool-using assistant flow
    assert advise("Gemini Enterprise Agent Platform project").caveat_ids == ()


def test_org_verification_is_not_a_reason_to_switch() -> None:
    advice = advise("gpt-image-2 gives 403: organization must be verified. Move to Imagen?")
    assert advice.route == "openai"
    assert advice.caveat_ids == ("org-verification",)
    assert "not a reason" in advice.caveats[0].text


def test_caveats_come_in_board_order() -> None:
    advice = advise(
        "our OpenAI agent calls tools to make transparent icons, but gets a 403 org verification"
    )
    assert advice.caveat_ids == CAVEAT_IDS


# --- notes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["We use DALL-E 3", "still on gpt-image-1", "GPT Image 1.5?"])
def test_stale_page_note(question: str) -> None:
    advice = advise(question)
    assert advice.route == "openai"
    assert any("stale" in note for note in advice.notes)


def test_no_stale_note_for_gpt_image_2() -> None:
    assert not any("stale" in note for note in advise("gpt-image-2 pricing").notes)


def test_gateway_claims_note() -> None:
    notes = advise("OpenRouter for images?").notes
    assert any("gateway's own claims" in note for note in notes)
    assert not any("claims" in note for note in advise("We use Vertex").notes)


def test_strongest_question_note() -> None:
    advice = advise("what's the strongest image API right now?")
    assert advice.is_default
    assert any("wrong question" in note for note in advice.notes)


# --- alternatives and workspace ---------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "we are on GCP",
        "self-hosted FLUX on our own GPUs with OpenRouter fallback",
        "transparent logos",
        "We can't use OpenAI",
        "one API for OpenAI, Google and FLUX, no self-hosting",
    ],
)
def test_alternatives_never_repeat_the_route_and_have_reasons(question: str) -> None:
    advice = advise(question)
    routes = [alt.route for alt in advice.alternatives]
    assert advice.route not in routes
    assert len(routes) == len(set(routes))
    assert 1 <= len(routes) <= 2
    assert all(alt.reason and alt.first_benchmark for alt in advice.alternatives)


WORKSPACE = (
    WorkspaceRoute("openai-prod", "openai", "openai", "healthy", 120, 0.97, 8.2, 0.04),
    WorkspaceRoute("openai-agent", "openai-responses", "openai", "degraded", 10, 0.8, 20.0, 0.1),
    WorkspaceRoute("vertex", "google-imagen", "google", "failing", 30, 0.5, None, None),
    WorkspaceRoute("bfl", "bfl", "flux", None, 0, None, None, None),
)


def test_workspace_routes_of_the_recommended_row_pass_through_unchanged() -> None:
    advice = advise("We already use the OpenAI API", WORKSPACE)
    assert advice.in_workspace == WORKSPACE[:2]
    for alt in advice.alternatives:
        assert all(ws.board == alt.route for ws in alt.in_workspace)
    text = advice.to_text()
    assert "openai-prod (openai): healthy, 120 runs, 97% success, p50 8.2 s" in text
    assert "vertex" not in advice.to_json()["in_workspace"]


def test_workspace_with_no_route_for_the_row() -> None:
    advice = advise("we're on prem", WORKSPACE)
    assert advice.in_workspace == ()
    assert "no configured route serves the self-hosted row yet" in advice.to_text()


def test_workspace_is_ignored_when_no_route_fits() -> None:
    assert advise("transparent stickers", WORKSPACE).in_workspace == ()


# --- output shape -----------------------------------------------------------------------------


def test_to_json_contract_fields() -> None:
    data = advise("We're on GCP and need transparent product shots").to_json()
    assert data["route"] == "google"
    assert data["caveats"] == ["transparency"]
    assert isinstance(data["why"], str) and "“GCP”" in data["why"]
    assert isinstance(data["verify"], list) and all(isinstance(v, str) for v in data["verify"])
    assert all(set(alt) >= {"route", "reason"} for alt in data["alternatives"])
    assert data["is_default"] is False
    assert {"first_benchmark", "notes", "matched", "in_workspace", "scores"} <= set(data)
    matched = data["matched"][0]
    assert set(matched) == {
        "phrase",
        "meaning",
        "kind",
        "route",
        "weight",
        "negated",
        "negated_by",
        "counted",
    }


def test_to_json_for_no_route() -> None:
    data = advise("alpha-channel stickers").to_json()
    assert data["route"] is None
    assert data["caveats"] == ["transparency"]


def test_why_quotes_the_question_as_written() -> None:
    advice = advise("Our infra runs on GKE and Cloud Run")
    assert "“GKE”" in advice.why


def test_google_row_names_the_current_model_and_why_it_differs_from_the_article() -> None:
    advice = advise("we are on Vertex")
    assert advice.first_benchmark == "Gemini 3 Pro Image (`gemini-3-pro-image`) on Vertex AI"
    assert (
        "The article named Imagen 4 Ultra; Google shut it down on 2026-08-17 and names "
        "Gemini 3 Pro Image (`gemini-3-pro-image`) as its replacement." in advice.why
    )
    assert "imagen-4.0-ultra" not in " ".join([advice.first_benchmark, *advice.verify])


def test_advice_is_frozen() -> None:
    advice = advise("")
    with pytest.raises(AttributeError):
        advice.route = "google"  # type: ignore[misc]
    assert isinstance(advice, Advice)


# --- board data -------------------------------------------------------------------------------


def test_board_rows_in_board_order_with_benchmarks() -> None:
    rows = board_rows()
    assert tuple(row.id for row in rows) == ROUTE_IDS
    by_id = {row.id: row for row in rows}
    # The board keeps the article's models and logic, dated; texts name models by placeholder.
    assert by_id["openai"].model == "gpt-image-2"
    assert by_id["google"].model == "imagen-4.0-ultra-generate-001"
    assert by_id["flux"].model == "flux-pro-1.1"
    assert all(str(row.as_of) == "2026-05-20" for row in rows)
    assert all("{model}" in row.first_benchmark for row in rows if row.model)
    assert all(row.job and row.verify for row in rows)
    assert tuple(c.id for c in board_caveats()) == CAVEAT_IDS


def test_board_is_loaded_once() -> None:
    assert load_board() is load_board()


def test_board_phrases_are_short_rules_not_memorised_questions() -> None:
    # Rules must generalise: no phrase in the board may be a whole question.
    longest = max(
        len(phrase.split())
        for signal in load_board().signals
        for phrase in (*signal.trigger.phrases, *(p for g in signal.trigger.all_of for p in g))
    )
    assert longest <= 5


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("weight = 3", "weight = 9"), "weight"),
        (('default_route = "openai"', 'default_route = "dalle"'), "default_route"),
        (("[routes.flux]", "[routes.fluxx]"), "routes must be exactly"),
        (('counts_when = "either"', 'counts_when = "sometimes"'), "counts_when"),
        (("schema = 2", "schema = 2\n[[["), "not valid TOML"),
        (('weight = 4\nveto = "always"', 'weight = 4\nveto = "sometimes"'), "veto"),
        (('status = "retired"', 'status = "gone"'), "status"),
        (('replacement = "gemini-3-pro-image"', 'replacement = "nano-banana-9"'), "replacement"),
        (
            ('first_benchmark = "{model} on Vertex AI"', 'first_benchmark = "{modle} on Vertex"'),
            "placeholder",
        ),
        (("as_of = 2026-05-20\njob", 'as_of = "May"\njob'), "as_of"),
    ],
)
def test_malformed_board_is_rejected_with_the_key_named(
    edit: tuple[str, str], message: str
) -> None:
    text = (ADVISOR_DIR / "board.toml").read_text(encoding="utf-8")
    assert edit[0] in text
    with pytest.raises(BoardError, match=message):
        parse_board(text.replace(edit[0], edit[1], 1))


def test_advisor_imports_nothing_of_ours_and_no_io_libraries() -> None:
    allowed_stdlib = set(sys.stdlib_module_names)
    forbidden = {"socket", "http", "urllib", "subprocess", "requests", "httpx", "sqlite3"}
    for path in ADVISOR_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "advisor" or top in allowed_stdlib, (path.name, name)
                assert top not in forbidden, (path.name, name)

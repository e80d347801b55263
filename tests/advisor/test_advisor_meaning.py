"""The advisor on hard requirements, stated priorities, caveat meaning, languages and scope."""

from __future__ import annotations

import pytest

from advisor import advise

HOSTED = {"openai", "google", "flux", "gateway"}


def offered(question: str) -> set[str | None]:
    advice = advise(question)
    return {advice.route, *(alt.route for alt in advice.alternatives)}


# --- vetoes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "requirement"),
    [
        ("We're an OpenAI shop, but product photos may never leave our building.", "leave"),
        ("Love FLUX's look, yet no third-party server may see our renders.", "third-party"),
        ("GCP for everything else; this one runs fully offline.", "offline"),
        ("Our policy: inference only on hardware we own.", "hardware we own"),
        ("Compliance forbids sending client photos to any cloud service.", "cloud service"),
        (
            "We want OpenRouter fallback, but no request may leave our network.",
            "no request may leave",
        ),
    ],
)
def test_a_hard_requirement_vetoes_every_hosted_route(question: str, requirement: str) -> None:
    advice = advise(question)
    assert advice.route == "self-hosted"
    assert not offered(question) & HOSTED  # never recommended, never an alternative
    assert set(advice.ruled_out) >= HOSTED
    assert any(requirement in quote for quote in advice.vetoed_by)
    assert "no hosted route can meet that" in advice.why
    assert advice.verify[0].startswith("Your requirement (")


def test_veto_keeps_the_transparency_caveat_and_says_which_requirement() -> None:
    advice = advise("Sprites need transparent backgrounds, and the art can't leave our build farm.")
    assert (advice.route, advice.caveat_ids) == ("self-hosted", ("transparency",))
    assert advice.vetoed_by == ("can't leave our build farm",)
    assert "You said “can't leave our build farm”" in advice.why


def test_under_a_veto_the_assistant_caveat_speaks_of_your_own_route() -> None:
    advice = advise("An agent that calls tools and then draws, and it all has to stay on-prem.")
    assert advice.caveat_ids == ("responses-tool",)
    assert "which your requirement rules out" in advice.caveats[0].text


def test_a_denied_or_past_requirement_is_no_veto() -> None:
    assert advise("We don't need anything offline; we're on Vertex.").route == "google"
    assert advise("We used to be air-gapped but moved to Google Cloud.").route == "google"
    assert advise("Data residency is not a concern; we want OpenAI.").route == "openai"


def test_any_vendor_is_not_a_multi_provider_need() -> None:
    advice = advise("Self-hosting is off the table; our data can go to any reputable vendor.")
    assert advice.route == "openai" and advice.is_default


def test_own_hardware_vetoes_only_when_stated_as_a_rule() -> None:
    assert advise("We own a rack of GPUs; we're on GCP too.").vetoed_by == ()
    assert advise("We must run it on our own GPUs; we're on GCP too.").route == "self-hosted"


def test_self_hosting_ruled_out_together_with_every_hosted_route_leaves_no_route() -> None:
    advice = advise("Nothing may leave our network, and self-hosting is out of the question.")
    assert advice.route is None
    assert advice.alternatives == ()
    assert "no route fits as asked" in advice.why


# --- priority -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "route"),
    [
        (
            "Half our stack is on GCP, but the main requirement is switching between models.",
            "gateway",
        ),
        (
            "We're on Google Cloud, but procurement insists on one invoice for a dozen models.",
            "gateway",
        ),
        ("We happen to use GCP; what matters most is photorealism.", "flux"),
        ("Our devs like OpenAI, but the mandate is everything on Vertex AI.", "google"),
        ("Although our website is on GCP, the top priority is avoiding vendor lock-in.", "gateway"),
    ],
)
def test_the_stated_need_outranks_a_background_platform(question: str, route: str) -> None:
    advice = advise(question)
    assert advice.route == route
    assert "what matters most" in advice.why or "after “but”" in advice.why


def test_a_platform_without_priority_cues_still_beats_job_hints() -> None:
    assert advise("We're on GCP and would like photoreal renders").route == "google"


# --- caveats by meaning ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "Our culture is very transparent; which image API for marketing?",
        "We're transparent with customers about AI images.",
        "Transparent pricing matters; we use Vertex.",
        "No cutouts, just full-bleed lifestyle photos.",
        "Still in alpha; which image API first?",
    ],
)
def test_transparent_that_is_not_about_an_image_background_raises_nothing(question: str) -> None:
    assert "transparency" not in advise(question).caveat_ids


@pytest.mark.parametrize(
    "question",
    [
        "transparnet bakgrounds for our emoji",  # typos
        "PNGs with an alpha layer",
        "product shots on a see-through background",
        "graphics with their backgrounds knocked out",
    ],
)
def test_transparency_phrased_many_ways(question: str) -> None:
    assert "transparency" in advise(question).caveat_ids


def test_already_verified_clears_the_verification_caveat_and_its_check() -> None:
    advice = advise("Our org already passed OpenAI's verification; which image model?")
    assert advice.route == "openai" and advice.caveat_ids == ()
    everything = " ".join([*advice.verify, *advice.verify_more])
    assert "Organization verification" not in everything
    assert "is not raised and its check is dropped" in advice.why


def test_an_error_that_persists_after_verification_still_raises_it() -> None:
    advice = advise("We are already verified but gpt-image-2 still returns 403.")
    assert advice.caveat_ids == ("org-verification",)


def test_a_verification_step_raises_it() -> None:
    advice = advise("gpt-image-2 asks us to complete a verification step first")
    assert advice.caveat_ids == ("org-verification",)
    assert advice.verify[0].startswith("Verify the organization that owns billing")


@pytest.mark.parametrize(
    "question",
    [
        "our agnet calls tools and should produce a picture",  # a typo in the key term
        "a support bot that renders an image in the chat through a function call",
        "the assistant decides mid-conversation when to draw",
        "tool-calling agent that draws",
    ],
)
def test_tool_calling_and_in_chat_rendering_raise_the_responses_caveat(question: str) -> None:
    assert "responses-tool" in advise(question).caveat_ids


def test_a_travel_agent_is_not_an_ai_agent() -> None:
    assert advise("The travel agent company plans tours and needs hotel images").caveat_ids == ()


# --- languages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "route", "caveats"),
    [
        ("Sin conexión a internet, todo en servidores propios.", "self-hosted", ()),
        ("Necesitamos una sola API para varios modelos de imagen.", "gateway", ()),
        ("Wir nutzen kein OpenAI, sondern Google Cloud.", "google", ()),
        (
            "Unser Assistent ruft Werkzeuge auf und erzeugt dann ein Bild.",
            "openai",
            ("responses-tool",),
        ),
        ("Nous n'utilisons pas Google Cloud, tout est chez OpenAI.", "openai", ()),
        ("Não usamos OpenAI; estamos no Google Cloud.", "google", ()),
        ("透過背景のPNGロゴが必要です。", None, ("transparency",)),
        ("本番環境はGoogle Cloud上でVertex AIを使っています。", "google", ()),
        ("数据不能离开我们的机房。", "self-hosted", ()),
        ("调用gpt-image-2返回403，提示组织需要验证。", "openai", ("org-verification",)),
    ],
)
def test_other_languages(question: str, route: str | None, caveats: tuple[str, ...]) -> None:
    advice = advise(question)
    assert (advice.route, advice.caveat_ids) == (route, caveats)


def test_spanish_imagen_is_the_noun_not_the_google_model() -> None:
    assert advise("Queremos generar una imagen de producto").route != "google"
    assert advise("Queremos probar Imagen 4 en Vertex").route == "google"


@pytest.mark.parametrize(
    "question",
    ["ＧＯＯＧＬＥ ＣＬＯＵＤ上で", "Google Cloud上で", "google-cloud", "GÓOGLE CLOUD"],
)
def test_width_case_and_accents_are_folded(question: str) -> None:
    assert advise(question).route == "google"


def test_cjk_phrases_match_inside_running_text_without_spaces() -> None:
    advice = advise("弊社はステッカー用の透過PNGが欲しい")
    assert advice.caveat_ids == ("transparency",)


# --- scope ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "Which API should we use to generate short video clips?",
        "Can I take PTO next Friday?",
        "We're on GCP: which vector database for embeddings?",
        "動画を生成するAPIはどれがいい？",
        "写一首关于春天的诗",
    ],
)
def test_out_of_scope_questions_get_no_route_and_say_so(question: str) -> None:
    advice = advise(question)
    assert (advice.route, advice.scope) == (None, "out-of-scope")
    assert advice.why.startswith("This is outside what I advise on")
    assert advice.to_json()["scope"] == "out-of-scope"


def test_an_image_question_that_mentions_video_is_in_scope() -> None:
    advice = advise("Thumbnails for our video platform; we're on GCP.")
    assert (advice.route, advice.scope) == ("google", "advice")


# --- the answer -----------------------------------------------------------------------------


def test_why_quotes_the_users_words_and_hides_internals() -> None:
    advice = advise("photoreal product renders; our data is on BigQuery")
    assert "“BigQuery”" in advice.why and "“photoreal”" in advice.why
    for internal in ("score", "weight", "board order", "tie"):
        assert internal not in advice.why
    assert {"scores", "matched"} <= set(advice.to_json())  # the internals stay in the JSON


def test_verify_puts_what_the_question_asked_about_first() -> None:
    advice = advise("We're on Vertex and care about SynthID watermarking and quota.")
    assert advice.verify[0].startswith("Quota")
    assert advice.verify[1].startswith("Watermarking")
    assert 3 <= len(advice.verify) <= 5
    assert len(advice.verify) + len(advice.verify_more) == 6  # the rest is kept, not lost


def test_verify_for_a_transparent_need_starts_with_the_alpha_checks() -> None:
    advice = advise("We're on GCP and need transparent PNG stickers")
    assert advice.verify[0].startswith("Alpha output")


def test_a_conditional_check_goes_last_when_its_condition_was_not_raised() -> None:
    advice = advise("We already use the OpenAI API")
    assert not any(item.startswith("Responses API") for item in advice.verify)
    assert advice.verify_more[-1].startswith("Responses API")


def test_matched_lists_each_phrase_once() -> None:
    matched = advise("GCP GCP GCP, we are on GCP and GCP again").matched
    assert [m.phrase for m in matched] == ["GCP"]

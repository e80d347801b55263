"""What a route's model status reads like, as of a fixed day, and the advisor's live catalog:
both built from routes/data/lifecycle.toml (nothing of ours mocked)."""

from __future__ import annotations

from datetime import date

from advisor import ModelFact, advise
from bot.core.lifecycle import model_facts, route_model_statuses, statuses_text
from routes.config import RouteConfigBase, parse_config

TODAY = date(2026, 11, 25)


def _route(table: str, today: date = TODAY) -> RouteConfigBase:
    return next(iter(parse_config(table, "r.toml", {}, today=today).routes.values()))


def test_each_model_a_route_calls_has_its_status_date_and_way_forward() -> None:
    asst = _route(
        '[routes.asst]\nkind = "openai-responses"\nmodel = "gpt-5"\n'
        'image_model = "gpt-image-1-mini"\napi_key = "k"\n'
    )
    text, image = route_model_statuses(asst, TODAY)
    assert (text.status, text.shutdown, text.replacement) == (
        "deprecated",
        date(2026, 12, 11),
        "gpt-5.4",
    )
    assert image.label == "deprecated: shuts down 2026-12-01; use gpt-image-2"
    assert statuses_text((text, image)) == (
        "gpt-5 deprecated: shuts down 2026-12-11; use gpt-5.4; "
        "gpt-image-1-mini deprecated: shuts down 2026-12-01; use gpt-image-2"
    )
    # The same route after its models' dates: retired (the config itself is then refused).
    [after] = route_model_statuses(_route('[routes.o]\nkind = "openai"\n'), date(2027, 1, 1))
    assert after.label == "current"


def test_a_retired_model_kept_on_purpose_names_its_replacement_and_kind() -> None:
    imagen = _route(
        '[routes.g]\nkind = "google-imagen"\nmodel = "imagen-4.0-ultra-generate-001"\n'
        'allow_retired_model = true\napi_key = "k"\n'
    )
    [status] = route_model_statuses(imagen, TODAY)
    assert status.needs_attention and status.allowed_retired
    assert status.label == (
        "retired on 2026-08-17, kept by allow_retired_model; use gemini-3-pro-image "
        '(kind = "gemini-image")'
    )
    demo = _route('[routes.d]\nkind = "demo"\n')
    assert route_model_statuses(demo, TODAY) == ()
    assert statuses_text(()) == "no provider lifecycle"
    gateway = _route(
        '[routes.gw]\nkind = "gateway"\nmodel = "x/own-model"\nbase_url = "http://x"\n'
    )
    [unknown] = route_model_statuses(gateway, TODAY)
    assert (unknown.status, unknown.label) == ("unknown", "no lifecycle on file")


def test_the_advisor_gets_every_model_on_file_as_of_the_day() -> None:
    facts = model_facts(TODAY)
    imagen = facts["imagen-4.0-ultra-generate-001"]
    assert isinstance(imagen, ModelFact)
    assert (imagen.status, imagen.shutdown, imagen.replacement, imagen.provider) == (
        "retired",
        date(2026, 8, 17),
        "gemini-3-pro-image",
        "google",
    )
    assert facts["gpt-image-1.5"].status == "deprecated"
    assert model_facts(date(2026, 12, 2))["gpt-image-1.5"].status == "retired"
    # A shutdown that passes needs no edit: the status is worked out against the day.
    answer = advise("we're all in on Google Cloud", models=facts)
    assert answer.route == "google" and "gemini-3-pro-image" in answer.first_benchmark

"""Model lifecycle as data: statuses worked out from shutdown dates, the routes file refusing
shut-down models and warning about deprecated ones, and a provider's 'model not found' on a
shut-down model told as such, through the executor and the probe the product uses."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli_app
from routes.base import Route
from routes.config import (
    BedrockRoute,
    BflRoute,
    ConfigError,
    GeminiImageRoute,
    GoogleImagenRoute,
    OpenAIResponsesRoute,
    OpenAIRoute,
    parse_config,
)
from routes.errors import ModelRetiredError
from routes.lifecycle import catalog, forward_model, lifecycle_for
from routes.model import ImageRequest
from routes.registry import build_route
from tests.fakes.openai import OpenAIFake
from tests.routes.conftest import Executor

# Every model the adapters know by name (the provider notes and the route board).
KNOWN_MODELS = (
    "gpt-image-2",
    "gpt-image-1.5",
    "gpt-image-1-mini",
    "chatgpt-image-latest",
    "gpt-image-1",
    "dall-e-3",
    "dall-e-2",
    "imagen-4.0-generate-001",
    "imagen-4.0-fast-generate-001",
    "imagen-4.0-ultra-generate-001",
    "gemini-2.5-flash-image",
    "gemini-3-pro-image",
    "gemini-3.1-flash-image",
    "gemini-3-pro-image-preview",
    "gemini-3.1-flash-image-preview",
    "flux-2-pro",
    "flux-2-max",
    "flux-2-flex",
    "flux-2-klein-4b",
    "flux-2-klein-9b",
    "flux-pro-1.1",
    "flux-pro-1.1-ultra",
    "flux-kontext-pro",
    "flux-kontext-max",
    "amazon.nova-canvas-v1:0",
    "amazon.titan-image-generator-v2:0",
    "stability.stable-image-core-v1:1",
    "stability.stable-image-ultra-v1:1",
    "stability.sd3-5-large-v1:0",
)
TODAY = date(2026, 11, 25)


def test_every_model_the_adapters_know_has_a_dated_sourced_row() -> None:
    for model_id in KNOWN_MODELS:
        row = lifecycle_for(model_id)
        assert row is not None, model_id
        assert row.source and row.checked <= date.today()
    for row in catalog().values():
        assert row.status(TODAY) in ("current", "deprecated", "retired")
        if row.replacement:
            assert lifecycle_for(row.replacement) is not None, row.model_id


def test_status_turns_from_deprecated_to_retired_on_the_shutdown_date() -> None:
    row = lifecycle_for("gpt-image-1.5")
    assert row is not None
    assert row.status(date(2026, 11, 30)) == "deprecated"
    assert row.status(date(2026, 12, 1)) == "retired"
    current = lifecycle_for("gpt-image-2")
    assert current is not None and current.status(date(2030, 1, 1)) == "current"


def test_replacements_are_followed_to_a_current_model() -> None:
    def forward(model_id: str) -> str | None:
        row = forward_model(model_id, TODAY)
        return row.model_id if row is not None else None

    assert forward("dall-e-3") == "gpt-image-2"
    assert forward("imagen-4.0-ultra-generate-001") == "gemini-3-pro-image"
    assert forward("imagen-4.0-generate-preview-06-06") == "gemini-3.1-flash-image"
    assert forward_model("gpt-image-2", TODAY) is None
    assert forward_model("amazon.nova-canvas-v1:0", TODAY) is None  # AWS names none


def test_snapshots_and_gateway_aliases_find_their_model() -> None:
    assert lifecycle_for("gpt-image-2-2026-04-21") is lifecycle_for("gpt-image-2")
    assert lifecycle_for("openai/gpt-image-1") is lifecycle_for("gpt-image-1")
    assert lifecycle_for("gpt-image-1-mini") is not lifecycle_for("gpt-image-1")
    assert lifecycle_for("my-own-finetune") is None


def test_every_kind_defaults_to_a_current_model() -> None:
    for cls in (OpenAIRoute, OpenAIResponsesRoute, GeminiImageRoute, BflRoute, BedrockRoute):
        row = lifecycle_for(cls.default_model)
        assert row is not None and row.status(TODAY) == "current", cls.default_model
    assert OpenAIResponsesRoute.model_fields["image_model"].default == "gpt-image-2"
    assert GoogleImagenRoute.default_model == ""  # no Imagen model is served any more


# -- the routes file --------------------------------------------------------------------------


def test_a_shut_down_model_is_refused_naming_the_replacement() -> None:
    text = '[routes.google]\nkind = "google-imagen"\nmodel = "imagen-4.0-ultra-generate-001"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, "r.toml", today=TODAY)
    message = str(info.value)
    assert "\n" not in message
    assert "route 'google'" in message and "imagen-4.0-ultra-generate-001" in message
    assert "2026-08-17" in message
    assert 'use gemini-3-pro-image (kind = "gemini-image")' in message
    assert "allow_retired_model = true" in message


def test_gemini_flash_image_warns_before_its_date_and_is_refused_after() -> None:
    text = '[routes.nano]\nkind = "gemini-image"\nmodel = "gemini-2.5-flash-image"\napi_key = "k"\n'
    before = parse_config(text, "r.toml", today=date(2026, 10, 1))
    assert before.warnings == (
        "r.toml: route 'nano': model gemini-2.5-flash-image (Gemini 2.5 Flash Image) shuts "
        "down on 2026-10-02; use gemini-3.1-flash-image instead",
    )
    with pytest.raises(ConfigError, match=r"shut down on 2026-10-02; use gemini-3\.1-flash-image"):
        parse_config(text, "r.toml", today=date(2026, 10, 2))


def test_allow_retired_model_keeps_the_route_with_a_warning() -> None:
    text = (
        '[routes.nova]\nkind = "bedrock"\nmodel = "amazon.nova-canvas-v1:0"\n'
        "allow_retired_model = true\n"
    )
    config = parse_config(text, "r.toml", today=TODAY)
    assert "nova" in config.routes
    [line] = config.warnings
    assert "amazon.nova-canvas-v1:0" in line and "kept because allow_retired_model" in line


def test_a_route_on_two_deprecated_models_gets_one_line_naming_both() -> None:
    text = (
        '[routes.asst]\nkind = "openai-responses"\nmodel = "gpt-5"\n'
        'image_model = "gpt-image-1-mini"\napi_key = "k"\n'
    )
    [line] = parse_config(text, "r.toml", today=TODAY).warnings
    assert line.startswith("r.toml: route 'asst': model gpt-5 (GPT-5) shuts down on 2026-12-11")
    assert "; model gpt-image-1-mini (GPT Image 1 mini) shuts down on 2026-12-01" in line


def test_the_responses_route_checks_its_image_model_too() -> None:
    text = '[routes.a]\nkind = "openai-responses"\nimage_model = "gpt-image-1"\n'
    with pytest.raises(ConfigError, match=r"gpt-image-1 .*use gpt-image-2"):
        parse_config(text, "r.toml", today=TODAY)


def test_a_disabled_route_is_not_refused() -> None:
    text = (
        '[routes.demo]\nkind = "demo"\n'
        '[routes.old]\nkind = "openai"\nmodel = "dall-e-3"\nenabled = false\n'
    )
    assert parse_config(text, "r.toml", today=TODAY).warnings == ()


def test_google_imagen_without_a_model_says_where_google_went() -> None:
    with pytest.raises(ConfigError, match=r'needs a model: .*kind = "gemini-image"'):
        parse_config('[routes.g]\nkind = "google-imagen"\napi_key = "k"\n', "r.toml")


SETTINGS_ENV = ("IMAGEROUTE_CONFIG", "DATABASE_URL", "ASSET_STORE", "SLACK_BOT_TOKEN")


@pytest.fixture
def in_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_imageroute_gen_refuses_a_routes_file_naming_imagen_4_ultra(in_folder: Path) -> None:
    (in_folder / "imageroute.toml").write_text(
        '[routes.demo]\nkind = "demo"\n'
        '[routes.google]\nkind = "google-imagen"\nmodel = "imagen-4.0-ultra-generate-001"\n'
        'api_key = "k"\n'
    )
    result = CliRunner().invoke(cli_app, ["gen", "--route", "demo", "a lighthouse"])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "route 'google'" in line and "gemini-3-pro-image" in line


def test_imageroute_gen_prints_one_line_per_route_kept_on_a_shut_down_model(
    in_folder: Path,
) -> None:
    (in_folder / "imageroute.toml").write_text(
        '[routes.demo]\nkind = "demo"\n'
        '[routes.old]\nkind = "openai"\nmodel = "gpt-image-1"\napi_key = "k"\n'
        "allow_retired_model = true\n"
    )
    result = CliRunner().invoke(cli_app, ["gen", "--route", "demo", "a lighthouse"])
    assert result.exit_code == 0, result.output
    old = [line for line in result.stderr.splitlines() if "route 'old'" in line]
    assert len(old) == 1 and old[0].startswith("imageroute: warning: ")
    assert "gpt-image-1 (GPT Image 1) was shut down on 2026-10-23; use gpt-image-2" in old[0]


def test_names_on_file_carry_no_brackets_and_nicknames_stay_apart() -> None:
    # Every surface puts the name beside the id in brackets ("id (name)", "name (`id`)").
    bracketed = [m for m, row in catalog().items() if "(" in row.name or ")" in row.name]
    assert not bracketed
    row = lifecycle_for("gemini-3-pro-image")
    assert row is not None and (row.name, row.aka) == ("Gemini 3 Pro Image", "Nano Banana Pro")


def test_imageroute_gen_names_a_shut_down_gemini_model_in_one_pair_of_brackets(
    in_folder: Path,
) -> None:
    (in_folder / "imageroute.toml").write_text(
        '[routes.demo]\nkind = "demo"\n'
        '[routes.banana]\nkind = "gemini-image"\nmodel = "gemini-2.5-flash-image"\n'
        'api_key = "k"\nallow_retired_model = true\n'
    )
    result = CliRunner().invoke(cli_app, ["gen", "--route", "demo", "a lighthouse"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stderr.splitlines() if "route 'banana'" in line]
    assert (
        "gemini-2.5-flash-image (Gemini 2.5 Flash Image) was shut down on 2026-10-02; "
        "use gemini-3.1-flash-image instead" in line
    )


# -- the provider says the model is gone --------------------------------------------------------


def _openai_route(fake: OpenAIFake, model: str, extra: str = "") -> Route:
    text = (
        f'[routes.o]\nkind = "openai"\nmodel = "{model}"\napi_key = "sk-wire-1"\n'
        f'base_url = "{fake.url}"\nretries = 2\n{extra}'
    )
    return build_route(parse_config(text, "r.toml").routes["o"])


def _retired_openai_route(fake: OpenAIFake) -> Route:
    # The strict OpenAI fake answers gpt-image-1 as OpenAI does since its shutdown: 404.
    return _openai_route(fake, "gpt-image-1", "allow_retired_model = true\n")


async def test_a_404_on_a_shut_down_model_names_the_replacement(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    with pytest.raises(ModelRetiredError) as info:
        await executor(_retired_openai_route(openai_fake)).generate(
            ImageRequest(prompt="a lighthouse")
        )
    error = info.value
    assert error.error_class == "model_retired" and not error.retryable
    assert "shut down on 2026-10-23; use gpt-image-2 instead" in error.sentence()
    assert error.request_id == "req_err_404"
    assert len(openai_fake.calls("generations")) == 1  # never retried
    assert len(error.attempts) == 1


async def test_the_probe_reports_a_shut_down_model_as_its_own_reason(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    probe = await executor(_retired_openai_route(openai_fake)).probe("auth")
    assert not probe.ok and probe.error_class == "model_retired"
    assert "use gpt-image-2" in (probe.message or "")
    assert openai_fake.calls("models") and not openai_fake.calls("generations")


async def test_a_404_on_a_current_model_stays_a_bad_request(
    openai_fake: OpenAIFake, executor: Executor
) -> None:
    # A key without access to gpt-image-2 gets the same 404 model_not_found: not a shutdown.
    openai_fake.models.discard("gpt-image-2")
    probe = await executor(_openai_route(openai_fake, "gpt-image-2")).probe("auth")
    assert not probe.ok and probe.error_class == "bad_request"
    assert "shut down" not in (probe.message or "")


def test_the_routes_doc_lists_every_model_on_file() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "routes.md").read_text()
    missing = [m for m in catalog() if f"| `{m}` |" not in doc]
    assert not missing, f"docs/routes.md lifecycle table lacks {missing}"

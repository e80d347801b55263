"""`imageroute doctor` as a team setting up runs it: the routes file against the lifecycle and
price data, free credential checks on the provider fakes, the Slack token on the Slack fake,
S3 on moto, the database; one line per problem with its fix, exit 1 if any, no secret shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner, Result

from bot.cli import app as cli_app
from storage.db import make_engine, upgrade
from tests.fakes.openai import OpenAIFake
from tests.fakes.slack import SlackFake

EXAMPLE = Path(__file__).resolve().parents[3] / "imageroute.example.toml"
# Everything the tests' environment might carry that doctor reads.
CLEARED = (
    "IMAGEROUTE_CONFIG",
    "DATABASE_URL",
    "ASSET_STORE",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_API_URL",
    "OPENAI_API_KEY",
    "GATEWAY_API_KEY",
    "GOOGLE_CLOUD_PROJECT",
    "GEMINI_API_KEY",
    "BFL_API_KEY",
)
KEY = "sk-doctor-good-0001"
BAD_KEY = "sk-doctor-wrong-9999"


@pytest.fixture
def in_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(api_key=KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def slack() -> Iterator[SlackFake]:
    fake = SlackFake().start()
    yield fake
    fake.stop()


def doctor() -> Result:
    return CliRunner().invoke(cli_app, ["doctor"])


def lines(result: Result, level: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(level + " ")]


def test_the_example_config_without_credentials_lists_each_missing_one_and_exits_1(
    in_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEROUTE_CONFIG", str(EXAMPLE))
    result = doctor()
    assert result.exit_code == 1, result.output
    problems = lines(result, "problem")
    for name, readers in (
        ("OPENAI_API_KEY", ("route 'openai'", "route 'assistant'")),
        ("GATEWAY_API_KEY", ("route 'gateway'",)),
        ("GOOGLE_CLOUD_PROJECT", ("route 'gemini'",)),
        ("BFL_API_KEY", ("route 'flux'",)),
    ):
        [line] = [p for p in problems if f" {name}: " in p]  # exactly one line each
        assert "not set" in line and f"Fix: export {name}=" in line
        assert all(reader in line for reader in readers)
    assert result.stdout.strip().endswith(f"{len(problems)} problem(s) found.")
    # Every route's model is current; nothing was probed that costs money.
    assert "route 'flux': bfl, model flux-2-pro (current)" in result.stdout
    [bedrock] = [n for n in lines(result, "note") if "route 'bedrock'" in n]
    assert "no free credential check" in bedrock and "imageroute probe --route bedrock" in bedrock
    # The ComfyUI route names no workflow file of its own: it builds on the built-in workflow
    # (its example host is not reachable from here, which doctor says as such).
    assert "ok       route 'comfy': self-hosted" in result.stdout
    assert "workflow" not in result.stdout


def test_the_demo_config_passes(in_folder: Path) -> None:
    result = doctor()
    assert result.exit_code == 0, result.output
    assert lines(result, "problem") == []
    assert "ok       routes file: built-in demo config: 1 route(s) enabled" in result.stdout
    assert "route 'demo'" in result.stdout and "credentials accepted" in result.stdout
    assert "asset store file://./data/assets: wrote, read back and deleted" in result.stdout
    assert result.stdout.strip().endswith("No problems found.")
    assert list((in_folder / "data" / "assets").iterdir()) == []  # the check cleaned up


def test_credentials_are_checked_with_the_free_probe_and_never_shown(
    in_folder: Path, openai_fake: OpenAIFake
) -> None:
    base = f"{openai_fake.server.url}/v1"
    (in_folder / "imageroute.toml").write_text(
        f'[routes.good]\nkind = "openai"\napi_key = "{KEY}"\nbase_url = "{base}"\n'
        f'[routes.bad]\nkind = "openai"\napi_key = "{BAD_KEY}"\nbase_url = "{base}"\n'
        '[routes.aws]\nkind = "bedrock"\nregion = "us-east-1"\n'
        'endpoint_url = "http://127.0.0.1:9"\n'
    )
    result = doctor()
    assert result.exit_code == 1
    assert "route 'good': openai, model gpt-image-2 (current); credentials accepted" in (
        result.stdout
    )
    [bad] = [p for p in lines(result, "problem") if "route 'bad'" in p]
    assert "credential check failed (auth)" in bad and "Fix: check the route's key" in bad
    assert KEY not in result.output and BAD_KEY not in result.output
    # Only the free model lookups reached OpenAI: no image was generated, so nothing was paid.
    assert openai_fake.calls("generations") == [] and len(openai_fake.calls("models")) == 2
    assert any("route 'aws'" in n and "not probed" in n for n in lines(result, "note"))


def test_the_slack_token_and_its_scopes_are_checked_against_the_manifest(
    in_folder: Path, slack: SlackFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_API_URL", slack.api_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "a-signing-secret")
    result = doctor()
    assert result.exit_code == 0, result.output
    assert "Slack: token accepted: bot imageroute in workspace Fake Team" in result.stdout
    assert "all 5 scopes of bot/manifest.yml granted" in result.stdout
    assert len(slack.calls("auth.test")) == 1

    slack.scopes.remove("usergroups:read")
    result = doctor()
    assert result.exit_code == 1
    [line] = lines(result, "problem")
    assert "lacks scope(s) usergroups:read" in line and "reinstall the app" in line

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-revoked-token-0002")
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    result = doctor()
    assert result.exit_code == 1
    problems = lines(result, "problem")
    assert any("auth.test refused SLACK_BOT_TOKEN (invalid_auth)" in p for p in problems)
    assert any("neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET" in p for p in problems)
    assert "xoxb-revoked-token-0002" not in result.output and slack.token not in result.output


def test_an_s3_asset_store_is_written_read_and_cleaned_on_moto(
    in_folder: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="team-images")
    monkeypatch.setenv("ASSET_STORE", "s3://team-images/imageroute")
    result = doctor()
    assert result.exit_code == 0, result.output
    assert "asset store s3://team-images/imageroute: wrote, read back and deleted" in result.stdout
    assert s3.list_objects_v2(Bucket="team-images").get("KeyCount") == 0

    monkeypatch.setenv("ASSET_STORE", "s3://no-such-bucket/x")
    result = doctor()
    assert result.exit_code == 1
    [line] = lines(result, "problem")
    assert "asset store s3://no-such-bucket/x: write, read or delete failed" in line
    assert "the bucket exists" in line


def test_routes_file_problems_each_get_a_line_with_the_fix(in_folder: Path) -> None:
    (in_folder / "imageroute.toml").write_text(
        '[routes.old]\nkind = "openai"\nmodel = "gpt-image-1"\napi_key = "k"\n'
        'base_url = "http://127.0.0.1:9/v1"\n'
        '[routes.kept]\nkind = "bedrock"\nmodel = "amazon.nova-canvas-v1:0"\n'
        "allow_retired_model = true\n"
        '[routes.capped]\nkind = "gateway"\nmodel = "x/unknown"\nbase_url = "http://127.0.0.1:9"\n'
        "daily_spend_usd = 5.0\n"
        '[routes.unpriced]\nkind = "self-hosted"\nflavor = "automatic1111"\n'
        'base_url = "http://127.0.0.1:9"\n'
    )
    result = doctor()
    assert result.exit_code == 1
    problems = lines(result, "problem")
    [old] = [p for p in problems if "route 'old'" in p]
    assert "gpt-image-1 (GPT Image 1) was shut down on 2026-10-23; use gpt-image-2" in old
    [capped] = [p for p in problems if "route 'capped'" in p]
    assert "daily_spend_usd but no price on file" in capped and "estimated_usd_per_image" in capped
    unpriced = [p for p in problems if "route 'unpriced'" in p and "no price on file" in p]
    assert len(unpriced) == 1 and "never as $0" in unpriced[0]
    # A route kept on a shut-down model on purpose is a note, with its status beside it.
    assert any("route 'kept'" in n and "allow_retired_model" in n for n in lines(result, "note"))
    assert "retired on 2026-09-30, kept by allow_retired_model" in result.stdout


def test_the_database_is_checked_without_showing_its_password(
    in_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://team:pw-s3cret@127.0.0.1:9/images")
    result = doctor()
    assert result.exit_code == 1
    [line] = [p for p in lines(result, "problem") if "database" in p]
    assert "cannot connect" in line and "Fix: check DATABASE_URL" in line
    assert "pw-s3cret" not in result.output and "team:***@127.0.0.1:9" in line

    # A database migrated by a newer imageroute: this version must not use it.
    url = f"sqlite:///{in_folder}/newer.db"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099_future'")
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    result = doctor()
    [line] = [p for p in lines(result, "problem") if "database" in p]
    assert "0099_future, which this version of imageroute does not know" in line

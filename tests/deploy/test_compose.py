"""deploy/compose.yaml is a valid Compose file (the Compose Specification's JSON schema, as
shipped in check-jsonschema: vendored there from compose-spec/compose-spec
schema/compose-spec.json) and starts what the product needs in the right order: migrations
once before any replica, two HTTP replicas behind the proxy, a prober, health checks on
/healthz, secrets only through deploy/.env."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

import jsonschema
import pytest

from bot.wiring.settings import Settings
from routes.config import load_config
from tests.deploy.conftest import DEPLOY, load_yaml

# How long a stopping bot lets runs in flight finish (IMAGEROUTE_DRAIN_SECONDS, its default).
DRAIN_SECONDS = Settings.model_fields["imageroute_drain_seconds"].default

COMPOSE_SCHEMA = "compose-spec.json"  # check_jsonschema/builtin_schemas/vendor/


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml("compose.yaml")
    return loaded


def test_compose_file_matches_the_compose_specification(compose) -> None:
    vendor = files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / COMPOSE_SCHEMA).read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_a_broken_compose_file_is_refused_by_the_same_check(compose) -> None:
    """The validation can fail: a misspelt key and a wrong type are both caught."""
    vendor = files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / COMPOSE_SCHEMA).read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(compose))
    broken["services"]["bot"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["prober"]["healtcheck"] = {}
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))
    assert len(errors) >= 2


def test_migrations_run_once_before_the_replicas_take_traffic(compose) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in ("bot", "prober"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
    assert services["bot"]["depends_on"]["minio-setup"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["proxy"]["depends_on"]["bot"]["condition"] == "service_healthy"


def test_two_http_replicas_and_one_prober_with_health_checks(compose) -> None:
    services = compose["services"]
    bot, prober = services["bot"], services["prober"]
    assert bot["deploy"]["replicas"] == 2
    assert bot["command"][:2] == ["serve", "--http"] and "--no-probes" in bot["command"]
    port = bot["command"][bot["command"].index("--port") + 1]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(bot["healthcheck"]["test"])
    assert prober["command"][0] == "prober" and "deploy" not in prober
    prober_port = prober["command"][prober["command"].index("--port") + 1]
    assert f"http://127.0.0.1:{prober_port}/healthz" in " ".join(prober["healthcheck"]["test"])
    # SIGTERM drains runs in flight for DRAIN_SECONDS: the stop grace period leaves room for it.
    grace = int(re.fullmatch(r"(\d+)s", bot["stop_grace_period"]).group(1))  # type: ignore[union-attr]
    assert grace > DRAIN_SECONDS
    for name in ("migrate", "bot", "prober"):
        env = services[name]["environment"]
        assert (
            env["DATABASE_URL"].startswith("postgresql+psycopg://")
            and "@postgres:" in env["DATABASE_URL"]
        )
        assert env["ASSET_STORE"].startswith("s3://") and env["AWS_ENDPOINT_URL"] == (
            "http://minio:9000"
        )
        assert services[name]["env_file"] == [{"path": ".env", "required": True}]


def test_the_proxy_balances_over_the_replicas_and_keeps_metrics_inside(compose) -> None:
    conf = (DEPLOY / "nginx" / "imageroute.conf").read_text()
    bot_port = compose["services"]["bot"]["command"][3]
    assert re.search(rf"server bot:{bot_port}\b", conf)
    assert "location = /slack/events" in conf and "location = /healthz" in conf
    assert "X-Request-Id $request_id" in conf
    assert "non_idempotent" not in conf  # a POST that reached a replica is never sent twice
    assert "/metrics" not in conf.split("# /metrics stays inside")[0]
    mounted = compose["services"]["proxy"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mounted).resolve() == (DEPLOY / "nginx" / "imageroute.conf").resolve()


def test_secrets_come_only_from_the_env_file(compose) -> None:
    """Every ${VAR} compose.yaml reads is in .env.example; no secret value is written in it."""
    text = (DEPLOY / "compose.yaml").read_text()
    example = (DEPLOY / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.M))
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]+)", text))
    assert used <= listed, used - listed
    for secret in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "S3_SECRET_KEY"):
        assert f"${{{secret}:?" in text  # required, and never given a default
    assert not re.search(r"xox[bpa]-[0-9]", text + example)
    for line in example.splitlines():
        if re.match(r"^(SLACK_|POSTGRES_PASSWORD|MINIO_ROOT_PASSWORD|S3_SECRET)", line):
            assert "replace" in line, line  # placeholders only


def test_the_routes_file_the_services_mount_loads(compose) -> None:
    mount = compose["services"]["bot"]["volumes"][0]
    source, target, _mode = mount.split(":")
    assert target == compose["services"]["bot"]["environment"]["IMAGEROUTE_CONFIG"]
    config = load_config(DEPLOY / source)
    assert "demo" in config.enabled_routes

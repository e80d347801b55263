"""deploy/kubernetes/ validates against the Kubernetes API schemas (strict: no unknown field)
shipped in the kubernetes-validate package, for the oldest and the newest version it knows of
the ones we support, and wires together: Services select their Deployments, probes point at the
ports the containers serve, every pod reads the same Secret and ConfigMap."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from bot.wiring.settings import Settings
from tests.deploy.conftest import DEPLOY, load_all

# How long a stopping bot lets runs in flight finish (IMAGEROUTE_DRAIN_SECONDS, its default).
DRAIN_SECONDS = Settings.model_fields["imageroute_drain_seconds"].default

FILES = ("configmap.yaml", "secret.example.yaml", "migrate-job.yaml", "bot.yaml", "prober.yaml")
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name in FILES:
        for doc in load_all(f"kubernetes/{name}"):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def test_every_manifest_file_is_checked() -> None:
    present = {p.name for p in (DEPLOY / "kubernetes").glob("*.yaml")}
    assert present == set(FILES)


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_match_the_kubernetes_schemas(manifests, version: str) -> None:
    for key, doc in manifests.items():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{key} on Kubernetes {version}: {exc.message}")


def test_a_broken_manifest_is_refused_by_the_same_check(manifests) -> None:
    bot = copy.deepcopy(manifests[("Deployment", "imageroute-bot")])
    bot["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bot, VERSIONS[0], strict=True)
    bot = copy.deepcopy(manifests[("Deployment", "imageroute-bot")])
    bot["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bot, VERSIONS[0], strict=True)


def container(doc: dict[str, Any]) -> dict[str, Any]:
    [only] = doc["spec"]["template"]["spec"]["containers"]
    return dict(only)


def port_number(c: dict[str, Any], name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    [port] = [p for p in c["ports"] if p["name"] == name_or_number]
    return int(port["containerPort"])


def test_the_bot_is_ready_only_when_healthz_says_so(manifests) -> None:
    bot = manifests[("Deployment", "imageroute-bot")]
    c = container(bot)
    assert c["args"][:2] == ["serve", "--http"] and "--no-probes" in c["args"]
    served = int(c["args"][c["args"].index("--port") + 1])
    probe = c["readinessProbe"]["httpGet"]
    assert probe["path"] == "/healthz" and port_number(c, probe["port"]) == served
    assert "tcpSocket" in c["livenessProbe"]  # a database outage does not restart pods
    assert bot["spec"]["replicas"] >= 2
    assert bot["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > DRAIN_SECONDS + 5
    annotations = bot["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == served


def test_one_prober_with_its_status_port(manifests) -> None:
    prober = manifests[("Deployment", "imageroute-prober")]
    c = container(prober)
    assert prober["spec"]["replicas"] == 1 and c["args"][0] == "prober"
    served = int(c["args"][c["args"].index("--port") + 1])
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert port_number(c, c["readinessProbe"]["httpGet"]["port"]) == served
    annotations = prober["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == served


def test_the_migration_job_upgrades_the_database(manifests) -> None:
    job = manifests[("Job", "imageroute-migrate")]
    assert container(job)["args"] == ["db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_services_select_their_pods_and_pods_share_settings(manifests) -> None:
    for name in ("imageroute-bot", "imageroute-prober"):
        service = manifests[("Service", name)]
        deployment = manifests[("Deployment", name)]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        c = container(deployment)
        [target] = [p["targetPort"] for p in service["spec"]["ports"]]
        assert target in [p["name"] for p in c["ports"]]
    secret_keys = set(manifests[("Secret", "imageroute-secrets")]["stringData"])
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"} <= secret_keys
    settings = manifests[("ConfigMap", "imageroute-settings")]["data"]
    for key in (
        ("Deployment", "imageroute-bot"),
        ("Deployment", "imageroute-prober"),
        ("Job", "imageroute-migrate"),
    ):
        c = container(manifests[key])
        refs = {next(iter(ref.values()))["name"] for ref in c["envFrom"]}
        assert refs == {"imageroute-settings", "imageroute-secrets"}, key
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert settings["IMAGEROUTE_CONFIG"].rsplit("/", 1)[0] in mounts


def test_the_configmap_carries_the_deployment_routes_file(manifests) -> None:
    routes = manifests[("ConfigMap", "imageroute-routes")]["data"]["imageroute.toml"]
    assert routes == (DEPLOY / "imageroute.toml").read_text()


def test_the_example_secret_holds_placeholders_only(manifests) -> None:
    for value in manifests[("Secret", "imageroute-secrets")]["stringData"].values():
        assert "replace" in value, value

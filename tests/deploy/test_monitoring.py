"""The example alerting rules and the Grafana dashboard use only metrics the bot and the
prober export: every PromQL expression is parsed (promql-parser) and each metric it selects is
held to the names a Metrics registry exposes. The Prometheus config scrapes the compose
services on the ports they serve, and loads the rule file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import promql_parser
import pytest

from bot.wiring.metrics import Metrics
from tests.deploy.conftest import DEPLOY, load_yaml

# Grafana's variables are not PromQL: each is replaced by a value of its kind before parsing.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1d",
    "${datasource}": "prometheus",
    "$route": ".*",
}


def exported() -> dict[str, str]:
    """Sample name -> family name, for every family a process exports."""
    names: dict[str, str] = {}
    for family in Metrics("bot").registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        for suffix in suffixes.get(family.type, [""]):
            names[family.name + suffix] = family.name
    return names


def selected(expr: str) -> set[str]:
    """The metric names an expression selects (vector and matrix selectors)."""
    found: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def rule_expressions() -> Iterator[tuple[str, str]]:
    rules = load_yaml("prometheus/alerts.yaml")
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield rule["alert"], rule["expr"]


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    dashboard = json.loads((DEPLOY / "grafana" / "imageroute.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            yield panel["title"], expr
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
            assert match, variable["definition"]
            yield f"variable {variable['name']}", match.group(1)


def test_every_alert_rule_uses_exported_metrics() -> None:
    names = exported()
    rules = list(rule_expressions())
    assert {"ImagerouteRouteFailing", "ImagerouteRouteLatencyDegraded"} <= {a for a, _ in rules}
    assert any("spend" in alert.lower() for alert, _ in rules)
    for alert, expr in rules:
        used = selected(expr)
        assert used, alert
        assert used <= names.keys(), f"{alert} uses {used - names.keys()}"


def test_every_dashboard_panel_uses_exported_metrics() -> None:
    names = exported()
    for title, expr in dashboard_expressions():
        used = selected(expr)
        assert used, title
        assert used <= names.keys(), f"{title!r} uses {used - names.keys()}"


def test_the_dashboard_shows_every_product_metric() -> None:
    names = exported()
    shown = {names[n] for _, expr in dashboard_expressions() for n in selected(expr)}
    product = {f for f in names.values() if f.startswith("imageroute_")} - {"imageroute_build_info"}
    assert product <= shown, product - shown


def test_an_unknown_metric_would_be_caught() -> None:
    assert selected('sum by (route) (rate(imageroute_runz_total{status="failed"}[5m]))') == {
        "imageroute_runz_total"
    }
    assert "imageroute_runz_total" not in exported()
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (route) (rate(imageroute_runs_total[5m]")


def test_prometheus_scrapes_the_services_and_loads_the_rules() -> None:
    config = load_yaml("prometheus/prometheus.yml")
    compose = load_yaml("compose.yaml")
    mount = next(
        v for v in compose["services"]["prometheus"]["volumes"] if "prometheus.yml" not in v
    )
    source, target = mount.split(":")[:2]
    assert source == "./prometheus"
    assert config["rule_files"] == [f"{target}/alerts.yaml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    bot_sd = jobs["imageroute-bot"]["dns_sd_configs"][0]
    bot_cmd = compose["services"]["bot"]["command"]
    assert bot_sd["names"] == ["bot"] and bot_sd["port"] == int(
        bot_cmd[bot_cmd.index("--port") + 1]
    )
    prober_cmd = compose["services"]["prober"]["command"]
    port = prober_cmd[prober_cmd.index("--port") + 1]
    assert jobs["imageroute-prober"]["static_configs"][0]["targets"] == [f"prober:{port}"]


def test_grafana_provisions_the_dashboard_from_where_compose_mounts_it() -> None:
    compose = load_yaml("compose.yaml")
    provider = load_yaml("grafana/provisioning/dashboards/imageroute.yaml")["providers"][0]
    mounts = compose["services"]["grafana"]["volumes"]
    [dashboard] = [m for m in mounts if m.startswith("./grafana/imageroute.json")]
    assert dashboard.split(":")[1].startswith(provider["options"]["path"] + "/")
    datasource = load_yaml("grafana/provisioning/datasources/prometheus.yaml")["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"

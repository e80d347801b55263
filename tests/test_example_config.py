"""imageroute.example.toml parses and shows every key every route kind accepts."""

from __future__ import annotations

import typing
from pathlib import Path

from routes.config import (
    ROUTE_KINDS,
    CheckSettings,
    LimitSettings,
    ProbeSettings,
    RouteConfig,
    RouteConfigBase,
    load_config,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "imageroute.example.toml"
ENV = {
    "OPENAI_API_KEY": "sk-example",
    "GATEWAY_API_KEY": "gw-example",
    "GOOGLE_CLOUD_PROJECT": "example-project",
    "GEMINI_API_KEY": "gm-example",
    "BFL_API_KEY": "bfl-example",
}


def _kind_classes() -> dict[str, type[RouteConfigBase]]:
    union = typing.get_args(typing.get_args(RouteConfig)[0])
    return {typing.get_args(cls.model_fields["kind"].annotation)[0]: cls for cls in union}


def test_example_parses_and_covers_every_kind():
    config = load_config(EXAMPLE, env=ENV)
    kinds = {r.kind for r in config.routes.values()}
    assert kinds == set(ROUTE_KINDS)


def test_example_shows_every_key():
    raw_text = EXAMPLE.read_text(encoding="utf-8")
    config = load_config(EXAMPLE, env=ENV)
    classes = _kind_classes()
    assert set(classes) == set(ROUTE_KINDS)
    # Keys every kind shares need to appear once; a kind's own keys on a route of that kind.
    common_shown = {"id"}.union(*(r.model_fields_set for r in config.routes.values()))
    assert set(RouteConfigBase.model_fields) <= common_shown
    for kind, cls in classes.items():
        shown: set[str] = set(RouteConfigBase.model_fields)
        for route in config.routes.values():
            if route.kind == kind:
                shown |= route.model_fields_set
        # Keys only in comments count too (alternatives such as express-mode api_key).
        missing = {name for name in set(cls.model_fields) - shown if f"# {name} =" not in raw_text}
        assert not missing, f"imageroute.example.toml lacks {sorted(missing)} for kind {kind}"
    assert config.probes.model_fields_set == set(ProbeSettings.model_fields)
    assert config.limits.model_fields_set == set(LimitSettings.model_fields)
    assert config.checks.model_fields_set == set(CheckSettings.model_fields)

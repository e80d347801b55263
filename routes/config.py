"""The routes file (TOML): parsing, ${VAR} expansion and validation into typed route configs."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from routes.lifecycle import check_route
from routes.pricing import RoutePricing

BoardRow = Literal["openai", "google", "flux", "gateway", "self-hosted"]
BOARD_ROWS: tuple[str, ...] = ("openai", "google", "flux", "gateway", "self-hosted")
ProbeMode = Literal["auth", "generate", "off"]

_ROUTE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
RESERVED_IDS = frozenset({"all"})


class ConfigError(Exception):
    """The routes file cannot be used; the message names the file, route and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProbeSettings(_Strict):
    interval_seconds: float = Field(300, gt=0)
    failure_threshold: int = Field(2, ge=1)
    success_threshold: int = Field(1, ge=1)
    repeat_alert_minutes: float = Field(60, gt=0)
    latency_slo_seconds: float = Field(60, gt=0)
    jitter_seconds: float = Field(15, ge=0)


class LimitSettings(_Strict):
    """Workspace-wide guardrails (per-route ones live on the route)."""

    max_routes_per_comparison: int = Field(6, ge=1)
    user_daily_spend_usd: float | None = Field(None, ge=0)


class CheckSettings(_Strict):
    """Pass marks of the automatic acceptance checks (docs/checks.md), each 0..1."""

    enabled: bool = True
    text_min_accuracy: float = Field(0.9, ge=0, le=1)
    edit_min_kept_outside_mask: float = Field(0.9, ge=0, le=1)
    edit_min_changed_inside_mask: float = Field(0.05, ge=0, le=1)
    edit_min_kept_overall: float = Field(0.5, ge=0, le=1)
    transparency_min_share: float = Field(0.01, ge=0, le=1)
    repeat_min_similarity: float = Field(0.5, ge=0, le=1)


class RouteConfigBase(_Strict):
    """Keys every route kind accepts."""

    id: str
    kind: str
    model: str = ""
    billing_owner: str | None = None
    route_owner: str | None = None
    board: BoardRow | None = None
    probe: ProbeMode = "auth"
    timeout_seconds: float = Field(120, gt=0)
    max_concurrency: int = Field(4, ge=1)
    retries: int = Field(2, ge=0, le=10)
    enabled: bool = True
    description: str | None = None
    # Price override, same keys as routes/data/pricing.toml rows.
    pricing: dict[str, Any] | None = None
    # Capability overrides, same keys as routes/data/models.toml rows.
    capabilities: dict[str, Any] | None = None
    # Guardrails: empty lists mean "everyone, everywhere".
    allowed_channels: list[str] = Field(default_factory=list)
    allowed_usergroups: list[str] = Field(default_factory=list)
    # The Slack user group on call for this route (e.g. "S0123ABCD"): its health alerts mention it.
    oncall: str | None = Field(None, pattern=r"^S[A-Z0-9]{2,}$")
    daily_spend_usd: float | None = Field(None, ge=0)
    # What one image is taken to cost when no price is on file (a spend cap needs a price):
    # used for the cap and for the run's cost, which is then marked as estimated.
    estimated_usd_per_image: float | None = Field(None, ge=0)
    # Keep calling a model the lifecycle data says was shut down (e.g. a private contract).
    allow_retired_model: bool = False

    # Per-kind defaults, not settings: ClassVars so the routes file cannot set them.
    default_model: ClassVar[str] = ""
    default_board: ClassVar[str | None] = None
    # Why a kind has no default model, said when a route of that kind names none.
    no_default_model: ClassVar[str | None] = None

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ROUTE_ID.match(value) or value in RESERVED_IDS or value.startswith("board"):
            raise ValueError(
                "route ids use lowercase letters, digits, - and _ (at most 40), and 'all' or "
                "'board...' are reserved"
            )
        return value

    @property
    def model_id(self) -> str:
        return self.model or self.default_model

    @property
    def board_row(self) -> str | None:
        return self.board or self.default_board

    def lifecycle_models(self) -> tuple[str, ...]:
        """The provider model ids this route calls, to check against the lifecycle data."""
        return (self.model_id,) if self.model_id else ()

    def route_pricing(self) -> RoutePricing:
        """How this route's calls are priced (routes.pricing is the one cost authority)."""
        return RoutePricing(
            self.kind,
            self.priced_models(),
            override=self.pricing,
            estimated_usd_per_image=self.estimated_usd_per_image,
            timeout_s=self.timeout_seconds,
            **self.pricing_options(),
        )

    def priced_models(self) -> tuple[str, ...]:
        """The models whose price rows apply, the one whose per-image price estimates first."""
        return (self.model_id,)

    def pricing_options(self) -> dict[str, Any]:
        """Kind-specific pricing rules (free, hardware time, an image-size tier)."""
        return {}

    def secrets(self) -> list[str]:
        """Every secret value in this config, so redaction can find them in any text."""
        found: list[str] = []
        for value in self.__dict__.values():
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, dict):
                found.extend(
                    v.get_secret_value() for v in value.values() if isinstance(v, SecretStr)
                )
        return [s for s in found if s]


class DemoRoute(RouteConfigBase):
    kind: Literal["demo"]
    delay_seconds: float = Field(0.0, ge=0, le=600)
    default_model: ClassVar[str] = "imageroute-demo-1"
    base_url: str | None = None  # accepted for symmetry; the demo route never calls out

    def lifecycle_models(self) -> tuple[str, ...]:
        return ()

    def priced_models(self) -> tuple[str, ...]:
        return ()

    def pricing_options(self) -> dict[str, Any]:
        return {"free": True}


class OpenAIRoute(RouteConfigBase):
    kind: Literal["openai"]
    api_key: SecretStr | None = None
    base_url: str | None = None
    organization: str | None = None
    default_model: ClassVar[str] = "gpt-image-2"
    default_board: ClassVar[str | None] = "openai"


class OpenAIResponsesRoute(RouteConfigBase):
    kind: Literal["openai-responses"]
    api_key: SecretStr | None = None
    base_url: str | None = None
    organization: str | None = None
    image_model: str = "gpt-image-2"
    default_model: ClassVar[str] = "gpt-5.4"
    default_board: ClassVar[str | None] = "openai"

    def lifecycle_models(self) -> tuple[str, ...]:
        return (self.model_id, self.image_model)

    def priced_models(self) -> tuple[str, ...]:
        # The image tool's model first: its per-image figures are the estimate; the text
        # model's tokens are billed on top and priced from their own rows.
        return (self.image_model, self.model_id)


class GatewayRoute(RouteConfigBase):
    kind: Literal["gateway"]
    api_key: SecretStr | None = None
    base_url: str
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    underlying_model: str | None = None
    default_board: ClassVar[str | None] = "gateway"

    def lifecycle_models(self) -> tuple[str, ...]:
        # The gateway's own alias ("openai/gpt-image-2") finds the provider's model.
        return (self.underlying_model or self.model_id,) if self.model_id else ()


class GoogleImagenRoute(RouteConfigBase):
    """Imagen on Vertex AI: `api_key` (express mode) or `project` + `location` (application
    default credentials). The extras are Imagen's own request parameters; unset = Google's
    default."""

    kind: Literal["google-imagen"]
    api_key: SecretStr | None = None
    project: str | None = None
    location: str | None = None  # default us-central1 with a project
    base_url: str | None = None
    safety_filter_level: (
        Literal["block_low_and_above", "block_medium_and_above", "block_only_high", "block_none"]
        | None
    ) = None
    person_generation: Literal["dont_allow", "allow_adult", "allow_all"] | None = None
    # Google's default is true; a seed only works with the watermark off, so a request with a
    # seed turns it off unless this says true (then seeds are refused).
    add_watermark: bool | None = None
    image_size: Literal["1K", "2K"] | None = None
    # Google shut down every Imagen model, so this kind has no current model to default to.
    default_model: ClassVar[str] = ""
    default_board: ClassVar[str | None] = "google"
    no_default_model: ClassVar[str | None] = (
        "Google shut down every Imagen model (Imagen 4 on 2026-08-17); use kind = "
        '"gemini-image" with model = "gemini-3-pro-image" on Vertex AI, or name the Imagen '
        "model and set allow_retired_model = true if your account still has access"
    )


class GeminiImageRoute(RouteConfigBase):
    """Gemini image output via generate_content: the Gemini API with `api_key`, or Vertex AI with
    `project` + `location` (default credentials) or `api_key` + `vertexai = true` (express)."""

    kind: Literal["gemini-image"]
    api_key: SecretStr | None = None
    project: str | None = None
    location: str | None = None  # default global with a project
    base_url: str | None = None
    vertexai: bool | None = None  # None: Vertex AI when a project is set, else the Gemini API
    image_size: Literal["1K", "2K", "4K"] | None = None
    default_model: ClassVar[str] = "gemini-3-pro-image"
    default_board: ClassVar[str | None] = "google"

    def pricing_options(self) -> dict[str, Any]:
        return {"tier": self.image_size}  # per-image figures differ at 1K/2K and 4K


class BflRoute(RouteConfigBase):
    kind: Literal["bfl"]
    api_key: SecretStr | None = None
    base_url: str = "https://api.bfl.ai"
    poll_interval_seconds: float = Field(0.5, gt=0, le=30)
    default_model: ClassVar[str] = "flux-2-pro"  # BFL's current line
    default_board: ClassVar[str | None] = "flux"


class BedrockRoute(RouteConfigBase):
    kind: Literal["bedrock"]
    region: str | None = None
    endpoint_url: str | None = None
    base_url: str | None = None
    profile: str | None = None
    # Nova Canvas and Titan Image reached end of life; Stability models are served.
    default_model: ClassVar[str] = "stability.stable-image-core-v1:1"
    default_board: ClassVar[str | None] = "flux"


class SelfHostedRoute(RouteConfigBase):
    kind: Literal["self-hosted"]
    flavor: Literal["automatic1111", "comfyui", "openai"]
    base_url: str
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    workflow: str | None = None
    hardware: str | None = None
    model_version: str | None = None
    deployment_hash: str | None = None
    serving_config: str | None = None
    hourly_usd: float | None = Field(None, ge=0)
    default_model: ClassVar[str] = "self-hosted"
    default_board: ClassVar[str | None] = "self-hosted"

    def lifecycle_models(self) -> tuple[str, ...]:
        return ()  # the operator's own weights: no provider lifecycle

    def pricing_options(self) -> dict[str, Any]:
        # A `pricing` table replaces hardware time.
        return {"hourly_usd": self.hourly_usd, "hardware": self.pricing is None}


RouteConfig = Annotated[
    DemoRoute
    | OpenAIRoute
    | OpenAIResponsesRoute
    | GatewayRoute
    | GoogleImagenRoute
    | GeminiImageRoute
    | BflRoute
    | BedrockRoute
    | SelfHostedRoute,
    Field(discriminator="kind"),
]
ROUTE_KINDS: tuple[str, ...] = (
    "demo",
    "openai",
    "openai-responses",
    "gateway",
    "google-imagen",
    "gemini-image",
    "bfl",
    "bedrock",
    "self-hosted",
)
_route_adapter: TypeAdapter[RouteConfig] = TypeAdapter(RouteConfig)


class AppConfig(BaseModel):
    """Everything the routes file configures."""

    model_config = ConfigDict(frozen=True)

    routes: dict[str, RouteConfig]
    probes: ProbeSettings = ProbeSettings()
    limits: LimitSettings = LimitSettings()
    checks: CheckSettings = CheckSettings()
    source: str = "built-in demo config"
    # One line each, for the caller to print or log at start-up (deprecated models...).
    warnings: tuple[str, ...] = ()

    @property
    def enabled_routes(self) -> dict[str, RouteConfig]:
        return {rid: r for rid, r in self.routes.items() if r.enabled}

    def secrets(self) -> list[str]:
        return [s for r in self.routes.values() for s in r.secrets()]


BUILTIN_CONFIG = """
[routes.demo]
kind = "demo"
billing_owner = "nobody (offline demo)"
route_owner = "imageroute built-in demo renderer"
probe = "generate"
"""


def _expand(value: Any, env: Mapping[str, str], prefix: str, key: str = "") -> Any:
    """Replace ${VAR} (or ${VAR:-default}) in every string value."""
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if env.get(name):
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{prefix}: key '{key}' refers to ${{{name}}}, which is not set in the environment"
            )

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {
            k: _expand(v, env, prefix, f"{key}.{k}" if key else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand(v, env, prefix, key) for v in value]
    return value


def _describe(error: ValidationError, prefix: str) -> str:
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"] if not isinstance(p, int)]
    # The discriminated union puts the kind name first in the location; drop it.
    if loc and loc[0] in ROUTE_KINDS:
        loc = loc[1:]
    key = ".".join(loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{prefix}: unknown key '{key}'"
    if kind == "missing":
        return f"{prefix}: missing required key '{key}'"
    if kind == "union_tag_invalid":
        return f"{prefix}: kind must be one of {', '.join(ROUTE_KINDS)}"
    if kind == "union_tag_not_found":
        return f"{prefix}: missing required key 'kind' (one of {', '.join(ROUTE_KINDS)})"
    where = f"key '{key}'" if key else "value"
    return f"{prefix}: {where}: {first['msg']}"


@dataclass(frozen=True)
class UnsetVariable:
    """A ${VAR} the routes file reads (without a default) that the environment does not set."""

    name: str
    route_id: str | None  # None: a [probes] or [limits] key
    key: str
    enabled: bool


def unset_variables(text: str, env: Mapping[str, str] | None = None) -> list[UnsetVariable]:
    """Every ${VAR} without a default that `env` leaves unset, with the route and key reading
    it (what `imageroute doctor` lists as missing credentials). Unparseable text: none."""
    env = os.environ if env is None else env
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []
    found: list[UnsetVariable] = []
    routes = raw.get("routes")
    for route_id, table in routes.items() if isinstance(routes, dict) else ():
        if isinstance(table, dict):
            enabled = table.get("enabled", True) is not False
            for key, name in _references(table, ""):
                if not env.get(name):
                    found.append(UnsetVariable(name, str(route_id), key, enabled))
    for section in ("probes", "limits", "checks"):
        for key, name in _references(raw.get(section, {}), section):
            if not env.get(name):
                found.append(UnsetVariable(name, None, key, True))
    return found


def _references(value: Any, key: str) -> list[tuple[str, str]]:
    """(key, variable) for each ${VAR} without a default in a value, nested ones included."""
    if isinstance(value, str):
        return [(key, m.group(1)) for m in _VAR.finditer(value) if m.group(2) is None]
    if isinstance(value, dict):
        return [
            ref for k, v in value.items() for ref in _references(v, f"{key}.{k}" if key else str(k))
        ]
    if isinstance(value, list):
        return [ref for v in value for ref in _references(v, key)]
    return []


def parse_config(
    text: str,
    source: str,
    env: Mapping[str, str] | None = None,
    *,
    today: date | None = None,
    refusals: list[str] | None = None,
) -> AppConfig:
    """Parse routes-file text; every problem is a ConfigError naming source, route and key.

    Routes on models the lifecycle data says are shut down (as of `today`) are refused;
    deprecated ones come back as warnings on the config. With a `refusals` list (a check that
    wants every problem, `imageroute doctor`), a route that would be refused for its model or
    its missing price is kept and the refusal line appended to the list instead."""
    env = os.environ if env is None else env
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(raw) - {"routes", "probes", "limits", "checks"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown section [{sorted(unknown)[0]}] "
            "(expected routes, probes, limits, checks)"
        )
    routes_raw = raw.get("routes", {})
    if not isinstance(routes_raw, dict) or not routes_raw:
        raise ConfigError(f"{source}: no routes: add at least one [routes.<id>] table")
    routes: dict[str, RouteConfig] = {}
    for route_id, table in routes_raw.items():
        prefix = f"{source}: route '{route_id}'"
        if not isinstance(table, dict):
            raise ConfigError(f"{prefix}: must be a table")
        expanded = _expand(table, env, prefix)
        try:
            routes[route_id] = _route_adapter.validate_python({**expanded, "id": route_id})
        except ValidationError as exc:
            raise ConfigError(_describe(exc, prefix)) from None
    sections: dict[str, Any] = {}
    sections_models: tuple[tuple[str, type[_Strict]], ...] = (
        ("probes", ProbeSettings),
        ("limits", LimitSettings),
        ("checks", CheckSettings),
    )
    for name, model in sections_models:
        try:
            sections[name] = model.model_validate(
                _expand(raw.get(name, {}), env, f"{source}: [{name}]")
            )
        except ValidationError as exc:
            raise ConfigError(_describe(exc, f"{source}: [{name}]")) from None
    user_cap = sections["limits"].user_daily_spend_usd is not None
    warnings: list[str] = []
    for route in routes.values():
        try:
            warnings.extend(_route_warnings(route, source, today, user_cap))
        except ConfigError as exc:
            if refusals is None:
                raise
            refusals.append(str(exc))
    return AppConfig(routes=routes, source=source, warnings=tuple(warnings), **sections)


def _route_warnings(
    route: RouteConfigBase, source: str, today: date | None, user_cap: bool
) -> tuple[str, ...]:
    """Lifecycle and price checks of one enabled route: warnings, or a ConfigError for a
    refusal (a shut-down model; a spend cap with no price to keep it by)."""
    if not route.enabled:
        return ()
    if not route.model_id and route.no_default_model:
        raise ConfigError(
            f"{source}: route '{route.id}': kind {route.kind} needs a model: "
            f"{route.no_default_model}"
        )
    check = check_route(
        route.id, route.lifecycle_models(), allow_retired=route.allow_retired_model, today=today
    )
    if check.refusal is not None:
        raise ConfigError(f"{source}: {check.refusal}")
    try:
        pricing = route.route_pricing()
    except ValueError as exc:  # a typo in the route's own `pricing` table
        raise ConfigError(f"{source}: route '{route.id}': {exc}") from None
    if (route.daily_spend_usd is not None or user_cap) and not pricing.can_estimate():
        cap = "a daily_spend_usd" if route.daily_spend_usd is not None else "[limits] user caps"
        raise ConfigError(
            f"{source}: route '{route.id}' has {cap} but no price on file for "
            f"{route.model_id or route.kind}: add a `pricing` table, or set "
            "estimated_usd_per_image (what one image is taken to cost) so the cap can be kept"
        )
    return tuple(f"{source}: {line}" for line in check.warnings)


def load_config(
    path: str | Path | None, env: Mapping[str, str] | None = None, *, today: date | None = None
) -> AppConfig:
    """Load the routes file; with no path, ./imageroute.toml if present, else the demo config."""
    if path is None:
        default = Path("imageroute.toml")
        if not default.exists():
            return parse_config(BUILTIN_CONFIG, "built-in demo config", env, today=today)
        path = default
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: routes file not found (IMAGEROUTE_CONFIG)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read routes file: {exc.strerror}") from None
    return parse_config(text, str(path), env, today=today)

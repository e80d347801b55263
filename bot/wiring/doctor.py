"""`imageroute doctor`: a team's setup checked end to end, one line per problem with its fix.

What it checks: the routes file against the lifecycle and price data (shut-down and deprecated
models, capped routes without a price, routes nothing prices), every ${VAR} the file reads,
each route's credentials with its free auth probe (a kind with no free check is said so and
never probed: a generate probe costs money), the Slack token (`auth.test`, and its scopes
against bot/manifest.yml), the database (connection and migrations) and the asset store
(write, read and delete a small object). Nothing it prints carries a secret: route errors go
through the redactor and database URLs lose their password.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from botocore.exceptions import BotoCoreError, ClientError
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy.engine import make_url

from bot.core.lifecycle import route_model_statuses, statuses_text
from bot.core.redaction import Redactor
from bot.slack.poster import make_client
from bot.wiring.settings import Settings
from routes.base import Route
from routes.config import (
    BUILTIN_CONFIG,
    AppConfig,
    ConfigError,
    RouteConfigBase,
    parse_config,
    unset_variables,
)
from routes.executor import RouteExecutor
from routes.model import ProbeResult
from routes.registry import build_route
from storage.assets import AssetStoreError, open_asset_store
from storage.db import DatabaseError, current_revision, known_revisions, make_engine, ping

Level = Literal["ok", "note", "problem"]
# Longest wait for one route's free credential check.
PROBE_SECONDS = 20.0
# What a failed credential check most likely needs, by error class.
_FIX_BY_ERROR = {
    "auth": "check the route's key or credentials (and that they may use this model)",
    "quota": "add credits or raise the quota at the provider",
    "rate_limit": "wait and run imageroute doctor again; the provider is rate-limiting this key",
    "model_retired": "change the route's model in the routes file",
    "bad_request": "check the route's model and settings in the routes file",
    "timeout": "check the route's base_url and that the host answers from here",
    "provider_down": "check the route's base_url and that the host answers from here",
}
# Stands in for an unset ${VAR} so every other check of its route can still run.
_PLACEHOLDER = "unset-for-doctor"


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked and how it stands."""

    level: Level
    subject: str
    text: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.text.rstrip('.')}. Fix: {self.fix}" if self.fix else self.text
        return f"{self.level:<8} {self.subject}: {text}"


async def diagnose(settings: Settings, *, today: date | None = None) -> list[Finding]:
    """Every check, in the order a team sets up: routes file, routes, Slack, database, assets."""
    findings, config, unprobed = _routes_file(settings.imageroute_config, today)
    redact = Redactor([*settings.secrets(), *(config.secrets() if config else ())])
    if config is not None:
        data = _routes_data(config, unprobed, today)
        findings += _by_route(config, data, await _credentials(config, unprobed, redact))
    findings += await _slack(settings)
    findings += await asyncio.to_thread(_database, settings.database_url)
    findings += await asyncio.to_thread(_asset_store, settings.asset_store, redact)
    return findings


# -- the routes file ---------------------------------------------------------------------------
def _read_routes_file(path: Path | None) -> tuple[str, str]:
    """(text, source) as load_config reads them: the file, ./imageroute.toml, or the demo."""
    if path is None:
        if not Path("imageroute.toml").exists():
            return BUILTIN_CONFIG, "built-in demo config"
        path = Path("imageroute.toml")
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read routes file: {exc.strerror}") from None


def _routes_file(
    path: Path | None, today: date | None
) -> tuple[list[Finding], AppConfig | None, dict[str, bool]]:
    """The file's findings, the config (None when it cannot be parsed at all), and the routes
    not to probe: one missing a variable (True: its data is still checked) or refused for its
    model or price (False: reported already)."""
    try:
        text, source = _read_routes_file(path)
    except ConfigError as exc:
        fix = "point IMAGEROUTE_CONFIG at your routes file (see imageroute.example.toml)"
        return [Finding("problem", "routes file", str(exc), fix)], None, {}
    findings: list[Finding] = []
    unset = unset_variables(text)
    unprobed = {v.route_id: True for v in unset if v.route_id}
    for name in dict.fromkeys(v.name for v in unset):
        readers = [v for v in unset if v.name == name]
        where = ", ".join(
            f"route '{v.route_id}' ({v.key}{'' if v.enabled else ', disabled'})"
            if v.route_id
            else v.key
            for v in readers
        )
        findings.append(
            Finding(
                "problem",
                name,
                f"not set; the routes file reads it for {where}",
                f"export {name}=... in the environment imageroute runs in"
                + ("" if any(v.enabled for v in readers) else ", or delete the disabled route"),
            )
        )
    env = {**os.environ, **{v.name: _PLACEHOLDER for v in unset}}
    refusals: list[str] = []
    try:
        config = parse_config(text, source, env, today=today, refusals=refusals)
    except ConfigError as exc:
        return [*findings, Finding("problem", "routes file", str(exc))], None, unprobed
    enabled = config.enabled_routes
    findings.insert(0, Finding("ok", "routes file", f"{source}: {len(enabled)} route(s) enabled"))
    for refusal in refusals:
        route_id = _route_named(refusal, enabled)
        unprobed[route_id or ""] = False
        findings.append(Finding("problem", f"route '{route_id}'", _after_route(refusal)))
    for line in config.warnings:
        level: Level = "note" if "kept because allow_retired_model" in line else "problem"
        subject = f"route '{_route_named(line, enabled)}'"
        findings.append(Finding(level, subject, _after_route(line)))
    return findings, config, unprobed


def _routes_data(
    config: AppConfig, unprobed: dict[str, bool], today: date | None
) -> dict[str, list[Finding]]:
    """Per enabled route not refused: its model status and whether anything prices it."""
    return {
        rid: _route_data(route, today)
        for rid, route in config.enabled_routes.items()
        if unprobed.get(rid, True)
    }


def _by_route(config: AppConfig, *parts: dict[str, list[Finding]]) -> list[Finding]:
    """Each route's findings together: one ok line saying what is fine, then its notes and
    problems, one per line."""
    out: list[Finding] = []
    for rid in config.enabled_routes:
        found = [f for part in parts for f in part.get(rid, [])]
        fine = [f.text for f in found if f.level == "ok"]
        if fine:
            out.append(Finding("ok", f"route '{rid}'", "; ".join(fine)))
        out += [f for f in found if f.level != "ok"]
    return out


def _route_data(route: RouteConfigBase, today: date | None) -> list[Finding]:
    """A route's model status and whether anything on file prices its calls."""
    subject = f"route '{route.id}'"
    statuses = statuses_text(route_model_statuses(route, today))
    found = [Finding("ok", subject, f"{route.kind}, model {route.model_id or 'none'} ({statuses})")]
    if not route.route_pricing().can_estimate():
        found.append(
            Finding(
                "problem",
                subject,
                f"no price on file for {route.model_id or route.kind}: its runs will show "
                "'cost unknown' and be counted as unpriced, never as $0",
                "add a `pricing` table or estimated_usd_per_image to the route",
            )
        )
    return found


def _route_named(line: str, routes: Iterable[str]) -> str | None:
    for rid in routes:
        if f"route '{rid}'" in line:
            return rid
    return None


def _after_route(line: str) -> str:
    """A routes-file line without its 'source: route 'x': ' prefix (the subject says it)."""
    marker = "': "
    return line.split(marker, 1)[1] if marker in line else line


# -- credentials -------------------------------------------------------------------------------
async def _credentials(
    config: AppConfig, unprobed: dict[str, bool], redact: Redactor
) -> dict[str, list[Finding]]:
    """Each enabled route's free credential check, all at once; kinds with none are named."""
    ids = [rid for rid in config.enabled_routes if rid not in unprobed]
    results = await asyncio.gather(*(_credential(config.routes[rid], redact) for rid in ids))
    return dict(zip(ids, results, strict=True))


async def _credential(config: RouteConfigBase, redact: Redactor) -> list[Finding]:
    subject = f"route '{config.id}'"
    try:
        route = build_route(config)
    except ConfigError as exc:
        fix = "correct the route in the routes file (imageroute.example.toml explains each key)"
        return [Finding("problem", subject, redact(_after_route(str(exc))), fix)]
    try:
        if not route.has_free_auth_check:
            return [
                Finding(
                    "note",
                    subject,
                    f"kind {route.kind} has no free credential check, so it was not probed "
                    "(a generate probe costs one image); check it when ready to pay for one: "
                    f"imageroute probe --route {route.id}",
                )
            ]
        return [_probed(subject, await _probe(route), redact)]
    finally:
        await route.aclose()


async def _probe(route: Route) -> ProbeResult | str:
    """The route's auth probe, or why it could not run (an SDK error outside the route's
    error mapping, such as missing Google application default credentials)."""
    executor = RouteExecutor(route)
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            return await executor.probe("auth")
    except TimeoutError:
        return f"no answer within {PROBE_SECONDS:g} s"
    # A check must report whatever the provider's SDK raises, not stop the whole doctor.
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


def _probed(subject: str, result: ProbeResult | str, redact: Redactor) -> Finding:
    if isinstance(result, str):
        first = redact(result).splitlines()[0] if result else "failed"
        return Finding(
            "problem",
            subject,
            f"credential check failed: {first}",
            "check the route's credentials (for Google: application default credentials or "
            "GOOGLE_APPLICATION_CREDENTIALS)",
        )
    if result.ok:
        return Finding(
            "ok", subject, f"credentials accepted ({result.latency_s:.2f} s, free check)"
        )
    error = result.error_class or "error"
    message = redact(result.message or "").splitlines()[0] if result.message else ""
    return Finding(
        "problem",
        subject,
        f"credential check failed ({error}): {message}".rstrip(": "),
        _FIX_BY_ERROR.get(error, "check the route's settings in the routes file"),
    )


# -- Slack -------------------------------------------------------------------------------------
def manifest_scopes() -> tuple[str, ...]:
    """The bot scopes bot/manifest.yml asks for."""
    text = resources.files("bot").joinpath("manifest.yml").read_text(encoding="utf-8")
    manifest = yaml.safe_load(text)
    return tuple(manifest["oauth_config"]["scopes"]["bot"])


async def _slack(settings: Settings) -> list[Finding]:
    if settings.slack_bot_token is None:
        return [
            Finding(
                "note",
                "Slack",
                "SLACK_BOT_TOKEN is not set, so Slack was not checked (imageroute serve "
                "needs it; the CLI does not)",
            )
        ]
    found: list[Finding] = []
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        found.append(
            Finding(
                "problem",
                "Slack",
                "neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is set: imageroute serve "
                "cannot receive anything",
                "set SLACK_APP_TOKEN (xapp-, Socket Mode) or SLACK_SIGNING_SECRET "
                "(for serve --http) from the app's settings",
            )
        )
    client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else "error"
        return [
            *found,
            Finding(
                "problem",
                "Slack",
                f"auth.test refused SLACK_BOT_TOKEN ({error})",
                "copy the Bot User OAuth Token (xoxb-) from the app's OAuth & Permissions "
                "page, after installing the app to the workspace",
            ),
        ]
    except (SlackClientError, OSError) as exc:
        return [
            *found,
            Finding(
                "problem",
                "Slack",
                f"could not reach {settings.slack_api_url} ({type(exc).__name__})",
                "check the network, or SLACK_API_URL if you set it",
            ),
        ]
    found.append(
        Finding(
            "ok",
            "Slack",
            f"token accepted: bot {response.get('user')} in workspace {response.get('team')}",
        )
    )
    return found + _scopes(response.headers.get("x-oauth-scopes"))


def _scopes(granted_header: str | None) -> list[Finding]:
    wanted = manifest_scopes()
    if granted_header is None:
        return [Finding("note", "Slack", "Slack did not list the token's scopes; not compared")]
    granted = {s.strip() for s in granted_header.split(",") if s.strip()}
    missing = [s for s in wanted if s not in granted]
    if missing:
        return [
            Finding(
                "problem",
                "Slack",
                f"the token lacks scope(s) {', '.join(missing)} that bot/manifest.yml asks for",
                "add them under OAuth & Permissions (or update the app from bot/manifest.yml) "
                "and reinstall the app",
            )
        ]
    return [Finding("ok", "Slack", f"all {len(wanted)} scopes of bot/manifest.yml granted")]


# -- database and asset store ------------------------------------------------------------------
def _database(url: str) -> list[Finding]:
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  # an unparseable URL is reported by make_engine below
        shown = "DATABASE_URL"
    subject = f"database {shown}"
    fix = "check DATABASE_URL and that the database server is up and reachable from here"
    try:
        engine = make_engine(url)
    except DatabaseError as exc:
        return [Finding("problem", "database", str(exc), fix)]
    try:
        reached = ping(engine)
        if reached != "ok":
            return [Finding("problem", subject, f"cannot connect ({reached})", fix)]
        current = current_revision(engine)
    finally:
        engine.dispose()
    head, known = known_revisions()
    if current == head:
        return [Finding("ok", subject, f"connected, migrations at {head} (the newest)")]
    if current is None:
        return [Finding("note", subject, "connected, empty: the first start creates the tables")]
    if any(rev not in known for rev in current.split(",")):
        return [
            Finding(
                "problem",
                subject,
                f"at migration {current}, which this version of imageroute does not know "
                "(a newer version migrated it)",
                "run the imageroute version that migrated it, or upgrade this one",
            )
        ]
    return [
        Finding(
            "note",
            subject,
            f"connected, at migration {current}; every start applies the newer ones (up to "
            f"{head}), or run imageroute db upgrade",
        )
    ]


def _asset_store(url: str, redact: Redactor) -> list[Finding]:
    subject = f"asset store {url}"
    fix = (
        "check ASSET_STORE and its permissions (S3: the bucket exists and the credentials may "
        "put, get and delete objects)"
    )
    data = b"imageroute doctor check\n"
    try:
        store = open_asset_store(url)
        stored = store.put(f"imageroute-doctor-{uuid.uuid4().hex[:12]}.txt", data, "text/plain")
        if store.get(stored.path) != data:
            return [Finding("problem", subject, "read back something other than was written", fix)]
        store.delete(stored.path)
    except (AssetStoreError, OSError, BotoCoreError, ClientError) as exc:
        text = redact(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
        return [Finding("problem", subject, f"write, read or delete failed: {text}", fix)]
    return [Finding("ok", subject, "wrote, read back and deleted a small object")]


def problems(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "problem"]

"""bot/manifest.yml and the listeners the bot registers must agree, and every Web API method the
code calls must be covered by a declared scope."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import yaml

from tests.bot.conftest import BotHarness

ROOT = Path(__file__).resolve().parents[3]
MANIFEST = ROOT / "bot" / "manifest.yml"

# Web API method (as the SDK spells it) -> the bot scope it needs.
SCOPE_FOR = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_getPermalink": None,  # no scope needed
    "files_upload_v2": "files:write",
    "files_info": "files:read",
    "usergroups_users_list": "usergroups:read",
    "views_open": None,
    "views_publish": None,
    "views_update": None,
    "auth_test": None,
    "users_info": "users:read",
    "conversations_info": "channels:read",
}


def _manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return data


async def test_manifest_declares_exactly_what_the_bot_registers(start_harness):
    h: BotHarness = await start_harness()
    bot = h.bot
    manifest = _manifest()
    features, settings = manifest["features"], manifest["settings"]
    commands = {c["command"] for c in features["slash_commands"]}
    assert commands == bot.registered["command"]
    shortcuts = {s["callback_id"] for s in features.get("shortcuts", [])}
    assert shortcuts == bot.registered.get("shortcut", set())
    assert all(s["type"] == "message" for s in features["shortcuts"])
    events = set(settings["event_subscriptions"]["bot_events"])
    assert events == bot.registered.get("event", set())
    if bot.registered.get("action") or bot.registered.get("view") or shortcuts:
        assert settings["interactivity"]["is_enabled"] is True
    if "app_home_opened" in events:
        assert features["app_home"]["home_tab_enabled"] is True
    assert settings["socket_mode_enabled"] is True  # `imageroute serve` defaults to Socket Mode


def test_every_web_api_call_in_the_code_has_its_scope():
    scopes = set(_manifest()["oauth_config"]["scopes"]["bot"])
    pattern = re.compile(
        r"\.(chat_\w+|files_\w+|views_\w+|users_\w+|usergroups_\w+|conversations_\w+|auth_test)\("
    )
    used: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        used.update(pattern.findall(path.read_text(encoding="utf-8")))
    assert used, "the scan found no Web API calls at all"
    unknown = used - SCOPE_FOR.keys()
    assert not unknown, f"add the scope for {unknown} to SCOPE_FOR and the manifest"
    needed = {SCOPE_FOR[m] for m in used if SCOPE_FOR[m]} | {"commands"}
    assert needed <= scopes, f"missing scopes: {needed - scopes}"
    assert scopes <= needed, f"scopes nothing uses: {scopes - needed}"


async def test_each_declared_command_and_shortcut_is_answered(start_harness):
    h = await start_harness()
    manifest = _manifest()
    for command in manifest["features"]["slash_commands"]:
        response = await h.command(command["command"], "help")
        assert response.status_code == 200, command["command"]
        assert response.text, f"{command['command']} gave an empty answer to help"
    for shortcut in manifest["features"]["shortcuts"]:
        payload = {
            "type": "message_action",
            "callback_id": shortcut["callback_id"],
            "trigger_id": f"t.{time.time()}",
            "user": {"id": "U0USER0001"},
            "team": {"id": "T0TEAM"},
            "channel": {"id": "C0TEST0001"},
            "message_ts": "1.2",
            "message": {"ts": "1.2", "text": "no image here"},
        }
        response = await h.interact(payload)
        # Bolt answers 404 for a request no listener matched.
        assert response.status_code == 200, shortcut["callback_id"]
    await h.settle()

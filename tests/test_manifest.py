"""The manifest must ask for exactly the scopes the code needs and register the command it serves."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from bot.check import REQUIRED_BOT_SCOPES

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = yaml.safe_load((ROOT / "app-manifest.yml").read_text(encoding="utf-8"))

# Web API methods the code may call -> the bot scope each needs (Slack's method docs).
SCOPE_OF_METHOD = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "views_open": None,  # needs only a trigger_id
    "views_update": None,
    "views_publish": None,
    "auth_test": None,
    "usergroups_list": "usergroups:read",
    "usergroups_users_list": "usergroups:read",
}


def called_web_api_methods() -> set[str]:
    """Every ``<client>.<method>(`` call in bot/ whose method name is a Slack Web API method."""
    called: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                if name.startswith(("chat_", "views_", "usergroups_", "auth_", "users_", "conversations_")):
                    called.add(name)
    return called


def registered_commands() -> set[str]:
    commands: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "command"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                commands.add(str(node.args[0].value))
    return commands


def test_every_called_method_is_known_and_its_scope_granted() -> None:
    called = called_web_api_methods()
    assert {"chat_postMessage", "chat_update", "views_open", "usergroups_list"} <= called
    unknown = called - SCOPE_OF_METHOD.keys()
    assert not unknown, f"add these methods' scopes to SCOPE_OF_METHOD: {unknown}"
    needed = {SCOPE_OF_METHOD[m] for m in called} - {None}
    granted = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert needed | {"commands"} == granted, "the manifest asks for more or fewer scopes than the code uses"
    assert granted == REQUIRED_BOT_SCOPES, "atlas-chatops check verifies the same scopes"


def test_manifest_registers_the_command_the_code_serves() -> None:
    manifest_commands = {c["command"] for c in MANIFEST["features"]["slash_commands"]}
    assert manifest_commands == registered_commands() == {"/atlas"}
    command = MANIFEST["features"]["slash_commands"][0]
    assert command["usage_hint"] and command["description"]


def test_manifest_shape() -> None:
    assert MANIFEST["_metadata"]["major_version"] == 1
    assert MANIFEST["display_information"]["name"]
    assert MANIFEST["features"]["bot_user"]["display_name"]
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["settings"]["socket_mode_enabled"] is True


def registered_events() -> set[str]:
    events: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "event"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                events.add(str(node.args[0].value))
    return events


def test_manifest_subscribes_to_the_events_the_code_handles_and_enables_the_home_tab() -> None:
    assert set(MANIFEST["settings"]["event_subscriptions"]["bot_events"]) == registered_events() == {"app_home_opened"}
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True

"""Signed requests shaped exactly as Slack sends them to the bot's ``/slack/events`` endpoint.

Builders return the raw body bytes (what Slack puts on the wire, and what the signature covers);
:func:`sign` returns the headers. Field sets follow Slack's payload reference and the fixtures in
bolt-python's ``tests/scenario_tests_async`` (slash commands are form fields; interactivity is one form
field, ``payload``, holding JSON).

Defaults describe one consistent workspace: team ``T0APP`` (domain ``atlas-test``), app ``A0ATLAS`` whose
bot is ``U0ATLASBOT`` / ``B0ATLASBOT`` -- the same identities :class:`tests.fakes.fake_slack.FakeSlack`
reports from ``auth.test``. Default ``trigger_id`` values start with ``trigger-`` so the fake accepts them
once in ``views.open``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

import httpx

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "SlackClient",
    "block_actions",
    "block_suggestion",
    "event_callback",
    "external_select_value",
    "plain_text_value",
    "sign",
    "slash_command",
    "static_select_value",
    "view_block_actions",
    "view_submission",
]

JsonDict = dict[str, Any]

APP_ID: Final = "A0ATLAS"
TEAM_ID: Final = "T0APP"
TEAM_DOMAIN: Final = "atlas-test"
BOT_USER_ID: Final = "U0ATLASBOT"
BOT_ID: Final = "B0ATLASBOT"
# The deprecated verification token Slack still includes in every payload; Bolt ignores it.
VERIFICATION_TOKEN: Final = "verification-token"
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"

_sequence = itertools.count(1)


def _next_id() -> int:
    return next(_sequence)


def _default_trigger_id() -> str:
    # Real ones look like "1234567890.1234567890.abcdef..."; the prefix marks it as minted by tests.
    return f"trigger-{int(time.time())}.{_next_id()}.{secrets.token_hex(8)}"


def _default_response_url(team_id: str, kind: str) -> str:
    return f"https://hooks.slack.com/{kind}/{team_id}/{_next_id()}/placeholder"


def _action_ts() -> str:
    return f"{time.time():.6f}"


def _enterprise(enterprise_id: str | None) -> JsonDict | None:
    return None if enterprise_id is None else {"id": enterprise_id, "name": f"{enterprise_id} Org"}


def _team(team_id: str, team_domain: str, enterprise_id: str | None) -> JsonDict:
    team: JsonDict = {"id": team_id, "domain": team_domain}
    if enterprise_id is not None:
        team["enterprise_id"] = enterprise_id
        team["enterprise_name"] = f"{enterprise_id} Org"
    return team


def _user(user_id: str, user_name: str | None, team_id: str) -> JsonDict:
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _plain_text(text: str) -> JsonDict:
    return {"type": "plain_text", "text": text, "emoji": True}


def _interactive_body(payload: JsonDict) -> bytes:
    # Interactivity arrives form-encoded with one field, ``payload``, holding JSON.
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode("utf-8")


# ---------------------------------------------------------------------- signing


def sign(
    body: bytes,
    signing_secret: str,
    timestamp: int | None = None,
    *,
    content_type: str = FORM_CONTENT_TYPE,
) -> dict[str, str]:
    """Headers Slack sends with ``body``: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``.

    ``timestamp`` defaults to now; pass an old one to exercise Bolt's 5-minute replay window.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(ts).encode("ascii") + b":" + body
    digest = hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={digest}",
    }


# ---------------------------------------------------------------------- slash commands


def slash_command(
    text: str,
    *,
    user_id: str,
    channel_id: str,
    team_id: str = TEAM_ID,
    command: str = "/atlas",
    trigger_id: str | None = None,
    response_url: str | None = None,
    user_name: str | None = None,
    channel_name: str | None = None,
    api_app_id: str = APP_ID,
    enterprise_id: str | None = None,
    team_domain: str = TEAM_DOMAIN,
    is_enterprise_install: bool = False,
    token: str = VERIFICATION_TOKEN,
) -> bytes:
    """A slash command body: form fields in the order Slack documents them.

    ``enterprise_id`` / ``enterprise_name`` appear only for Enterprise Grid workspaces, as on the wire.
    """
    fields: list[tuple[str, str]] = [
        ("token", token),
        ("team_id", team_id),
        ("team_domain", team_domain),
    ]
    if enterprise_id is not None:
        fields += [("enterprise_id", enterprise_id), ("enterprise_name", f"{enterprise_id} Org")]
    fields += [
        ("channel_id", channel_id),
        ("channel_name", channel_name or channel_id.lower()),
        ("user_id", user_id),
        ("user_name", user_name or user_id.lower()),
        ("command", command),
        ("text", text),
        ("api_app_id", api_app_id),
        ("is_enterprise_install", "true" if is_enterprise_install else "false"),
        ("response_url", response_url or _default_response_url(team_id, "commands")),
        ("trigger_id", trigger_id or _default_trigger_id()),
    ]
    return urlencode(fields).encode("utf-8")


# ---------------------------------------------------------------------- block_actions


def block_actions(
    *,
    user_id: str,
    team_id: str = TEAM_ID,
    channel_id: str,
    message_ts: str,
    action_id: str,
    value: str,
    block_id: str = "actions",
    trigger_id: str | None = None,
    message_blocks: list[JsonDict] | None = None,
    message_text: str = "",
    user_team_id: str | None = None,
    user_name: str | None = None,
    channel_name: str | None = None,
    button_text: str = "Button",
    style: str | None = None,
    response_url: str | None = None,
    api_app_id: str = APP_ID,
    enterprise_id: str | None = None,
    team_domain: str = TEAM_DOMAIN,
    is_ephemeral: bool = False,
    state_values: Mapping[str, Mapping[str, JsonDict]] | None = None,
    thread_ts: str | None = None,
    action_ts: str | None = None,
    token: str = VERIFICATION_TOKEN,
) -> bytes:
    """A button click on a message the bot posted (``container.type == "message"``).

    ``user_team_id`` sets ``user.team_id`` apart from ``team.id``, as for Slack Connect users. Without
    ``message_blocks`` the message holds one actions block with the clicked button, so the payload is
    self-consistent.
    """
    button: JsonDict = {
        "type": "button",
        "action_id": action_id,
        "text": _plain_text(button_text),
        "value": value,
    }
    if style is not None:
        button["style"] = style
    blocks = (
        message_blocks
        if message_blocks is not None
        else [{"type": "actions", "block_id": block_id, "elements": [button]}]
    )
    message: JsonDict = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": api_app_id,
        "team": team_id,
        "ts": message_ts,
        "text": message_text,
        "blocks": blocks,
    }
    if thread_ts is not None:
        message["thread_ts"] = thread_ts
    action: JsonDict = {
        "action_id": action_id,
        "block_id": block_id,
        "text": _plain_text(button_text),
        "value": value,
        "type": "button",
        "action_ts": action_ts or _action_ts(),
    }
    if style is not None:
        action["style"] = style
    payload: JsonDict = {
        "type": "block_actions",
        "user": _user(user_id, user_name, user_team_id or team_id),
        "api_app_id": api_app_id,
        "token": token,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id or _default_trigger_id(),
        "team": _team(team_id, team_domain, enterprise_id),
        "enterprise": _enterprise(enterprise_id),
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name or channel_id.lower()},
        "message": message,
        "state": {"values": {k: dict(v) for k, v in (state_values or {}).items()}},
        "response_url": response_url or _default_response_url(team_id, "actions"),
        "actions": [action],
    }
    return _interactive_body(payload)


# ---------------------------------------------------------------------- view_submission


def plain_text_value(value: str | None) -> JsonDict:
    """State of a ``plain_text_input``; ``None`` is what Slack sends for an empty optional field."""
    return {"type": "plain_text_input", "value": value}


def static_select_value(value: str | None, text: str | None = None) -> JsonDict:
    """State of a ``static_select``; ``None`` means nothing selected."""
    return {"type": "static_select", "selected_option": _option(value, text)}


def external_select_value(value: str | None, text: str | None = None) -> JsonDict:
    """State of an ``external_select``; ``None`` means nothing selected."""
    return {"type": "external_select", "selected_option": _option(value, text)}


def _option(value: str | None, text: str | None) -> JsonDict | None:
    if value is None:
        return None
    return {"text": _plain_text(text if text is not None else value), "value": value}


def _input_blocks(values: Mapping[str, Mapping[str, JsonDict]]) -> list[JsonDict]:
    # The modal's blocks, rebuilt from its state so block_id/action_id/type agree with ``values``.
    blocks: list[JsonDict] = []
    for block_id, actions in values.items():
        for action_id, state in actions.items():
            blocks.append(
                {
                    "type": "input",
                    "block_id": block_id,
                    "label": {"type": "plain_text", "text": block_id, "emoji": True},
                    "optional": False,
                    "dispatch_action": False,
                    "element": {"type": state.get("type", "plain_text_input"), "action_id": action_id},
                }
            )
    return blocks


def _view(
    *,
    view_id: str,
    team_id: str,
    callback_id: str,
    private_metadata: str,
    blocks: list[JsonDict],
    values: Mapping[str, Mapping[str, JsonDict]],
    hash: str,
    title: str,
    submit: str | None,
    close: str | None,
    root_view_id: str | None,
    external_id: str,
    api_app_id: str,
) -> JsonDict:
    view: JsonDict = {
        "id": view_id,
        "team_id": team_id,
        "type": "modal",
        "blocks": blocks,
        "private_metadata": private_metadata,
        "callback_id": callback_id,
        "state": {"values": {k: dict(v) for k, v in values.items()}},
        "hash": hash,
        "title": _plain_text(title),
        "clear_on_close": False,
        "notify_on_close": False,
        "close": _plain_text(close) if close is not None else None,
        "submit": _plain_text(submit) if submit is not None else None,
        "previous_view_id": None,
        "root_view_id": root_view_id or view_id,
        "app_id": api_app_id,
        "external_id": external_id,
        "app_installed_team_id": team_id,
        "bot_id": BOT_ID,
    }
    return view


def view_submission(
    *,
    user_id: str,
    team_id: str = TEAM_ID,
    callback_id: str,
    private_metadata: str = "",
    values: Mapping[str, Mapping[str, JsonDict]],
    view_id: str = "V0ATLASMODAL",
    hash: str = "1700000000.AbCdEf12",
    trigger_id: str | None = None,
    blocks: list[JsonDict] | None = None,
    title: str = "Atlas",
    submit: str | None = "Submit",
    close: str | None = "Cancel",
    user_team_id: str | None = None,
    user_name: str | None = None,
    api_app_id: str = APP_ID,
    enterprise_id: str | None = None,
    team_domain: str = TEAM_DOMAIN,
    root_view_id: str | None = None,
    external_id: str = "",
    response_urls: list[JsonDict] | None = None,
    token: str = VERIFICATION_TOKEN,
) -> bytes:
    """A modal submission. ``values`` is ``{block_id: {action_id: state}}``, states from the helpers above.

    Without ``blocks`` the view holds one input block per value, matching ``state.values``.
    """
    payload: JsonDict = {
        "type": "view_submission",
        "team": _team(team_id, team_domain, enterprise_id),
        "user": _user(user_id, user_name, user_team_id or team_id),
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": trigger_id or _default_trigger_id(),
        "view": _view(
            view_id=view_id,
            team_id=team_id,
            callback_id=callback_id,
            private_metadata=private_metadata,
            blocks=blocks if blocks is not None else _input_blocks(values),
            values=values,
            hash=hash,
            title=title,
            submit=submit,
            close=close,
            root_view_id=root_view_id,
            external_id=external_id,
            api_app_id=api_app_id,
        ),
        "response_urls": response_urls or [],
        "is_enterprise_install": False,
        "enterprise": _enterprise(enterprise_id),
    }
    return _interactive_body(payload)


# ---------------------------------------------------------------------- block_actions inside a view


def view_block_actions(
    *,
    user_id: str,
    team_id: str = TEAM_ID,
    view: Mapping[str, Any],
    action_id: str,
    block_id: str,
    value: str | None = None,
    selected_option: JsonDict | None = None,
    state_values: Mapping[str, Mapping[str, JsonDict]] | None = None,
    trigger_id: str | None = None,
    user_team_id: str | None = None,
    user_name: str | None = None,
    api_app_id: str = APP_ID,
    enterprise_id: str | None = None,
    team_domain: str = TEAM_DOMAIN,
    token: str = VERIFICATION_TOKEN,
) -> bytes:
    """An interaction inside a view the bot opened or published (``container.type == "view"``).

    ``view`` is the view as Slack stores it (``views.open``/``views.publish`` answers it: ``id``,
    ``hash``, ``type`` modal or home, ``private_metadata``, ``blocks``). A button sends ``value``; a
    select sends ``selected_option``. Such payloads carry no ``channel`` and no ``response_url``.
    """
    action: JsonDict = {"action_id": action_id, "block_id": block_id, "action_ts": _action_ts()}
    if selected_option is not None:
        action |= {"type": "static_select", "selected_option": selected_option}
    else:
        action |= {"type": "button", "value": value or "", "text": _plain_text("Button")}
    shown: JsonDict = {
        "id": view["id"],
        "team_id": team_id,
        "type": view.get("type", "modal"),
        "blocks": view.get("blocks", []),
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "state": {"values": {k: dict(v) for k, v in (state_values or {}).items()}},
        "hash": view["hash"],
        "title": view.get("title"),
        "root_view_id": view.get("root_view_id") or view["id"],
        "previous_view_id": None,
        "app_id": api_app_id,
        "external_id": view.get("external_id", ""),
        "app_installed_team_id": team_id,
        "bot_id": BOT_ID,
    }
    payload: JsonDict = {
        "type": "block_actions",
        "user": _user(user_id, user_name, user_team_id or team_id),
        "api_app_id": api_app_id,
        "token": token,
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": trigger_id or _default_trigger_id(),
        "team": _team(team_id, team_domain, enterprise_id),
        "enterprise": _enterprise(enterprise_id),
        "is_enterprise_install": False,
        "view": shown,
        "actions": [action],
    }
    return _interactive_body(payload)


# ---------------------------------------------------------------------- Events API


def event_callback(
    event: JsonDict,
    *,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    event_id: str | None = None,
    event_time: int | None = None,
    token: str = VERIFICATION_TOKEN,
) -> bytes:
    """An Events API delivery (``type: event_callback``), sent as JSON, not form-encoded."""
    body: JsonDict = {
        "token": token,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{_next_id():010d}",
        "event_time": event_time or int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": BOT_USER_ID, "is_bot": True}],
        "is_ext_shared_channel": False,
    }
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------- block_suggestion


def block_suggestion(
    *,
    user_id: str,
    team_id: str = TEAM_ID,
    action_id: str,
    block_id: str,
    value: str,
    view_id: str = "V0ATLASMODAL",
    callback_id: str = "",
    private_metadata: str = "",
    view_blocks: list[JsonDict] | None = None,
    user_team_id: str | None = None,
    user_name: str | None = None,
    api_app_id: str = APP_ID,
    enterprise_id: str | None = None,
    team_domain: str = TEAM_DOMAIN,
    token: str = VERIFICATION_TOKEN,
) -> bytes:
    """An ``external_select`` options request from a modal, ``value`` being what the user typed so far."""
    blocks = view_blocks
    if blocks is None:
        blocks = [
            {
                "type": "input",
                "block_id": block_id,
                "label": {"type": "plain_text", "text": block_id, "emoji": True},
                "optional": False,
                "dispatch_action": False,
                "element": {
                    "type": "external_select",
                    "action_id": action_id,
                    "placeholder": _plain_text("Select an item"),
                },
            }
        ]
    payload: JsonDict = {
        "type": "block_suggestion",
        "user": _user(user_id, user_name, user_team_id or team_id),
        "container": {"type": "view", "view_id": view_id},
        "api_app_id": api_app_id,
        "token": token,
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "team": _team(team_id, team_domain, enterprise_id),
        "enterprise": _enterprise(enterprise_id),
        "is_enterprise_install": False,
        "view": _view(
            view_id=view_id,
            team_id=team_id,
            callback_id=callback_id,
            private_metadata=private_metadata,
            blocks=blocks,
            values={},
            hash="1700000000.SuGgEsT1",
            title="Atlas",
            submit="Submit",
            close="Cancel",
            root_view_id=None,
            external_id="",
            api_app_id=api_app_id,
        ),
    }
    return _interactive_body(payload)


# ---------------------------------------------------------------------- client


class SlackClient:
    """Plays Slack's side of HTTP mode: signs and POSTs the builders' bodies to the bot.

    ``user_id`` / ``team_id`` / ``channel_id`` given here are defaults for every request; keyword
    arguments to each method override them and are passed on to the matching builder.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        signing_secret: str,
        url: str,
        user_id: str | None = None,
        team_id: str = TEAM_ID,
        channel_id: str | None = None,
    ) -> None:
        self.http = http
        self.signing_secret = signing_secret
        self.url = url
        self.user_id = user_id
        self.team_id = team_id
        self.channel_id = channel_id

    async def post_raw(self, body: bytes, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """POST ``body`` as is; signed now unless ``headers`` are given (to test bad or stale signatures)."""
        sent_headers = dict(headers) if headers is not None else sign(body, self.signing_secret)
        return await self.http.post(self.url, content=body, headers=sent_headers)

    async def command(self, text: str, **kw: Any) -> httpx.Response:
        kw.setdefault("team_id", self.team_id)
        self._default(kw, "user_id", self.user_id)
        self._default(kw, "channel_id", self.channel_id)
        return await self.post_raw(slash_command(text, **kw))

    async def click(self, **kw: Any) -> httpx.Response:
        kw.setdefault("team_id", self.team_id)
        self._default(kw, "user_id", self.user_id)
        self._default(kw, "channel_id", self.channel_id)
        return await self.post_raw(block_actions(**kw))

    async def submit(self, **kw: Any) -> httpx.Response:
        kw.setdefault("team_id", self.team_id)
        self._default(kw, "user_id", self.user_id)
        return await self.post_raw(view_submission(**kw))

    async def view_action(self, **kw: Any) -> httpx.Response:
        kw.setdefault("team_id", self.team_id)
        self._default(kw, "user_id", self.user_id)
        return await self.post_raw(view_block_actions(**kw))

    async def event(self, event: JsonDict, **kw: Any) -> httpx.Response:
        kw.setdefault("team_id", self.team_id)
        body = event_callback(event, **kw)
        return await self.post_raw(body, sign(body, self.signing_secret, content_type="application/json"))

    async def suggest(self, **kw: Any) -> httpx.Response:
        kw.setdefault("team_id", self.team_id)
        self._default(kw, "user_id", self.user_id)
        return await self.post_raw(block_suggestion(**kw))

    @staticmethod
    def _default(kw: dict[str, Any], key: str, value: str | None) -> None:
        if value is not None:
            kw.setdefault(key, value)

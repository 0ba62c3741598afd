"""What a request to ``POST /slack/events`` must be before Bolt sees it: signed, then Slack-shaped.

Bolt parses the body before it checks the signature, and trusts the JSON types of every field it
reads: an unsigned body of broken JSON, a timestamp header that is not a number, a non-UTF-8 body,
or a signed payload whose ``actions`` is a string all ended in a 500 and a traceback. So the HTTP
handler (:mod:`bot.web`) asks :func:`signature_ok` first (401 otherwise) and :func:`read_body`
second (400 otherwise), and hands Bolt the body :func:`read_body` parsed: Bolt neither parses nor
verifies it again. The shape check is the JSON types of the fields Bolt and our listeners read, as
Slack documents them; unknown extra fields are fine. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import parse_qsl

__all__ = ["REPLAY_WINDOW_SECONDS", "Refused", "SlackBody", "read_body", "signature_ok"]

REPLAY_WINDOW_SECONDS: Final = 5 * 60
FORM: Final = "application/x-www-form-urlencoded"
JSON: Final = "application/json"

# Payload types this app can be sent: interactivity (form field ``payload``) and Events API (JSON).
_INTERACTIVE: Final = frozenset(
    {"block_actions", "block_suggestion", "view_submission", "view_closed", "shortcut", "message_action"}
)
_EVENTS: Final = frozenset({"event_callback", "url_verification", "app_rate_limited"})
_COMMAND_FIELDS: Final = ("command", "user_id", "team_id", "channel_id", "trigger_id", "response_url")

# Fields that are strings (or null) wherever they appear, and the objects that hold them.
_TOP_STRINGS: Final = (
    "type", "token", "team_id", "user_id", "channel_id", "command", "text", "trigger_id", "response_url",
    "callback_id", "action_id", "block_id", "value", "api_app_id", "enterprise_id", "challenge",
)  # fmt: skip
_OBJECTS: Final[dict[str, tuple[str, ...]]] = {
    "user": ("id", "team_id", "name", "username"),
    "team": ("id", "domain", "enterprise_id"),
    "enterprise": ("id", "name"),  # or the id alone, as a string
    "channel": ("id", "name"),
    "container": ("type", "channel_id", "message_ts", "view_id"),
    "message": ("ts", "thread_ts", "text", "user"),
    "view": ("id", "type", "callback_id", "private_metadata", "hash", "team_id", "app_installed_team_id"),
    "event": ("type", "tab", "subtype", "user_team"),
}
# In Events API payloads these are an id or an object, depending on the event (user_change, channel_created).
_EVENT_REFERENCES: Final = ("user", "channel", "team")
_ACTION_STRINGS: Final = ("type", "action_id", "block_id", "value", "action_ts")


def signature_ok(signing_secret: str, body: bytes, *, timestamp: str | None, signature: str | None, now: float) -> bool:
    """Slack's ``v0`` HMAC-SHA256 over ``v0:{timestamp}:{body}``, within the 5-minute replay window.

    Total over hostile headers: a missing, non-numeric or absurd timestamp and a non-ASCII
    signature are simply invalid (slack_sdk's verifier raises on those).
    """
    if not timestamp or not signature or len(timestamp) > 12 or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs(now - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        return False
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))


@dataclass(frozen=True)
class SlackBody:
    """A well-formed body: its text, and the fields as Bolt reads them (a command's form fields,
    an interactive ``payload`` decoded, an Events API object)."""

    text: str
    fields: dict[str, Any]
    kind: Literal["command", "interactive", "event"]


@dataclass(frozen=True)
class Refused:
    """Why a body is not something Slack sends this app."""

    reason: str


def read_body(body: bytes, content_type: str) -> SlackBody | Refused:
    """The body parsed once, or why it is refused."""
    if content_type not in (FORM, JSON):
        return Refused(f"unsupported content type {content_type[:60]!r}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refused("the body is not UTF-8")
    # Interactivity is a form with a `payload` field; any other form is a slash command, even one
    # whose text says "payload" (Bolt's own parse_body reads that one as an empty payload).
    form = dict(parse_qsl(text, keep_blank_values=True)) if content_type == FORM and not text.startswith("{") else None
    if form is not None and "payload" not in form:
        problem = _NUL if _has_nul(form) else _form_problem(form)
        return Refused(problem) if problem else SlackBody(text, form, "command")
    try:
        source = text if form is None else form["payload"]
        payload = json.loads(source) if source else None
    except (ValueError, RecursionError):
        return Refused("the body is not valid JSON or form data")
    if not isinstance(payload, dict):
        return Refused("the payload is not a JSON object")
    problem = _NUL if _has_nul(payload) else _payload_problem(payload)
    if problem:
        return Refused(problem)
    return SlackBody(text, payload, "interactive" if form is not None else "event")


def _payload_problem(payload: dict[str, Any]) -> str | None:
    kind = payload.get("type")
    if not isinstance(kind, str) or kind not in _INTERACTIVE | _EVENTS:
        return "unsupported payload type"
    for key in _TOP_STRINGS:
        if not _is_text(payload.get(key)):
            return f"{key} is not a string"
    for key, strings in _OBJECTS.items():
        if (problem := _object_problem(payload, key, strings)) is not None:
            return problem
    if (problem := _list_problem(payload, "authorizations")) is not None:
        return problem
    if (problem := _list_problem(payload, "response_urls", strings=("response_url",))) is not None:
        return problem
    if (problem := _state_problem(payload.get("state"))) is not None:
        return problem
    if kind in _INTERACTIVE and not isinstance((payload.get("user") or {}).get("id"), str):
        return "user.id is missing"
    if kind == "block_actions":
        return _actions_problem(payload.get("actions"))
    if kind in ("view_submission", "view_closed"):
        view = payload.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("type"), str):
            return "view.type is missing"
        if not isinstance(view.get("callback_id"), str):
            return "view.callback_id is missing"
        return _state_problem(view.get("state"))
    if kind == "event_callback" and not isinstance((payload.get("event") or {}).get("type"), str):
        return "event.type is missing"
    if kind == "block_suggestion" and not isinstance(payload.get("action_id"), str):
        return "action_id is missing"
    if kind in ("shortcut", "message_action") and not isinstance(payload.get("callback_id"), str):
        return "callback_id is missing"
    return None


def _form_problem(form: Mapping[str, str]) -> str | None:
    if "ssl_check" in form:
        return None
    if "command" not in form:
        return "neither a slash command nor an interactive payload"
    missing = [name for name in _COMMAND_FIELDS if not form.get(name)]
    return f"slash command without {', '.join(missing)}" if missing else None


# Slack never sends NUL, and PostgreSQL cannot store it in text: a user id or a reason holding one
# would fail deep in the store.
_NUL: Final = "a string holds a NUL character"


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _is_text(value: object) -> bool:
    return value is None or isinstance(value, str)


def _object_problem(holder: Mapping[str, Any], key: str, strings: tuple[str, ...]) -> str | None:
    value = holder.get(key)
    if value is None or (key == "enterprise" and isinstance(value, str)):
        return None
    if not isinstance(value, dict):
        return f"{key} is not an object"
    for name in strings:
        if not _is_text(value.get(name)):
            return f"{key}.{name} is not a string"
    if key == "view":
        return _state_problem(value.get("state"))
    if key == "event" and any(not isinstance(value.get(name), str | dict | None) for name in _EVENT_REFERENCES):
        return "event holds a malformed reference"
    return None


def _list_problem(holder: Mapping[str, Any], key: str, *, strings: tuple[str, ...] = ()) -> str | None:
    value = holder.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return f"{key} is not a list of objects"
    if any(not _is_text(item.get(name)) for item in value for name in strings):
        return f"{key} holds a non-string"
    return None


def _actions_problem(actions: object) -> str | None:
    if not isinstance(actions, list) or not actions or not all(isinstance(a, dict) for a in actions):
        return "actions is not a non-empty list of objects"
    for action in actions:
        if not isinstance(action.get("action_id"), str):
            return "actions[].action_id is missing"
        if any(not _is_text(action.get(name)) for name in _ACTION_STRINGS):
            return "actions[] holds a non-string"
        if not _option_ok(action.get("selected_option")):
            return "actions[].selected_option is malformed"
    return None


def _state_problem(state: object) -> str | None:
    """``state.values`` is ``{block_id: {action_id: {type, value | selected_option}}}``."""
    if state is None:
        return None
    if not isinstance(state, dict):
        return "state is not an object"
    values = state.get("values")
    if values is None:
        return None
    if not isinstance(values, dict):
        return "state.values is not an object"
    for actions in values.values():
        if not isinstance(actions, dict):
            return "state.values holds a non-object"
        for element in actions.values():
            if not isinstance(element, dict):
                return "state.values holds a non-object"
            if not _is_text(element.get("value")) or not _option_ok(element.get("selected_option")):
                return "state.values holds a malformed input"
    return None


def _option_ok(option: object) -> bool:
    return option is None or (isinstance(option, dict) and _is_text(option.get("value")))

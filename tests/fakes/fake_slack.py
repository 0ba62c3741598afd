"""A fake Slack Web API served over real HTTP on loopback.

The bot talks to it exactly as it talks to Slack: an ``AsyncWebClient(base_url=fake.api_url)`` posts to
``{api_url}{method}`` with a bearer token and a form, query-string or JSON body, and gets Slack-shaped
JSON back. Modelled on bolt-python's ``tests/mock_web_api_server`` (a real server that counts the calls
it received), with more state so tests can assert on what the bot *asked Slack to do*:

- every call is recorded as a :class:`FakeSlackCall` (decoded args, headers, monotonic receive time,
  status and the response the fake sent), and :meth:`FakeSlack.wait_for` waits on them without polling;
- ``trigger_id`` is single-use and expires after 3 seconds (on an injectable clock);
- ``chat.update`` only updates messages the fake posted (or that a test seeded), ``views.update`` honours
  ``hash`` like Slack does, usergroups / users / channels come from seeded data;
- faults are queued per method: ``fail_next`` (``ok: false``), ``rate_limit_next`` (HTTP 429 with
  ``Retry-After``) and ``delay`` (latency on every call until cleared);
- ``response_url`` endpoints record what the bot posted to them.

The same server runs as its own process (``python -m tests.fakes.fake_slack --port N``) with a small
JSON control API under ``/_fake/`` so multi-process tests and benchmarks can drive it.

Handlers are plain synchronous functions over dicts: the only awaits on the request path are reading the
body and an optional injected delay, which keeps the fake well above 1,000 calls/s on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import secrets
import signal
import string
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl

from aiohttp import web

__all__ = [
    "FakeSlack",
    "FakeSlackCall",
    "ManualClock",
    "ResponseUrlPost",
]

JsonDict = dict[str, Any]
CallPredicate = Callable[["FakeSlackCall"], bool]

# Slack documents a trigger_id as usable once, within 3 seconds of the interaction.
TRIGGER_TTL_SECONDS: Final = 3.0
# A response_url accepts up to 5 posts within 30 minutes.
RESPONSE_URL_MAX_POSTS: Final = 5
RESPONSE_URL_TTL_SECONDS: Final = 30 * 60

# Arguments slack_sdk may send as JSON strings inside a form body (or that a caller passes pre-encoded);
# decoding them lets tests assert on structure instead of on serialisation details.
_JSON_STRING_FIELDS: Final = frozenset({"blocks", "attachments", "view", "metadata", "user_auth_blocks"})
# slack_sdk turns booleans in params into "1"/"0"; JSON bodies keep real booleans.
_TRUTHY: Final = frozenset({"1", "true", "True", True})
_ID_ALPHABET: Final = string.ascii_uppercase + string.digits
# Scopes reported by auth.test in ``x-oauth-scopes``, as Slack does for bot tokens.
_BOT_SCOPES: Final = "chat:write,commands,usergroups:read,users:read,channels:read,groups:read"


@dataclass(frozen=True, slots=True)
class FakeSlackCall:
    """One Web API call as the fake received it.

    ``args`` merges query string, form and JSON body (in that order of precedence, lowest first) with
    JSON-string fields such as ``blocks`` and ``view`` decoded; ``token`` is taken out of it as Slack does.
    ``headers`` has lower-cased names. ``received_at`` is ``time.monotonic()`` on arrival.
    """

    method: str
    args: JsonDict
    headers: dict[str, str]
    received_at: float
    status: int = 200
    response: JsonDict = field(default_factory=dict)
    token: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return error if isinstance(error, str) else None

    def to_json(self) -> JsonDict:
        return {
            "method": self.method,
            "args": self.args,
            "headers": self.headers,
            "received_at": self.received_at,
            "status": self.status,
            "response": self.response,
        }


@dataclass(frozen=True, slots=True)
class ResponseUrlPost:
    """One post the bot made to a ``response_url`` issued by :meth:`FakeSlack.response_url`."""

    url_id: str
    body: JsonDict
    received_at: float
    status: int


class ManualClock:
    """A clock tests move by hand, for trigger_id / response_url expiry without sleeping."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _SlackError(Exception):
    """Raised inside a method handler to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass(frozen=True, slots=True)
class _Fault:
    status: int
    body: JsonDict
    headers: dict[str, str]


@dataclass(slots=True)
class _Waiter:
    method: str
    count: int
    predicate: CallPredicate | None
    future: asyncio.Future[list[FakeSlackCall]]
    matched: list[FakeSlackCall]

    def offer(self, call: FakeSlackCall) -> None:
        if self.future.done() or call.method != self.method:
            return
        if self.predicate is not None:
            try:
                matches = self.predicate(call)
            except Exception as exc:
                # A broken predicate fails the waiting test, not the request the bot is making.
                self.future.set_exception(exc)
                return
            if not matches:
                return
        self.matched.append(call)
        if len(self.matched) >= self.count:
            self.future.set_result(list(self.matched))


@dataclass(slots=True)
class _ResponseUrl:
    issued_at: float
    channel_id: str | None
    posts: int = 0


class FakeSlack:
    """The fake Slack Web API. See the module docstring for what it models.

    ``clock`` drives trigger_id and response_url expiry only (``received_at`` is always real monotonic
    time, so latency measurements stay honest). ``strict_channels`` makes unknown channel IDs fail with
    ``channel_not_found``; by default unseeded channels behave as public channels the bot is in.
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        app_token: str | None = None,
        team_id: str = "T0APP",
        team_name: str = "Atlas Test",
        team_domain: str = "atlas-test",
        bot_user_id: str = "U0ATLASBOT",
        bot_id: str = "B0ATLASBOT",
        app_id: str = "A0ATLAS",
        enterprise_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        strict_channels: bool = False,
    ) -> None:
        self.bot_token = bot_token
        # Socket Mode: apps.connections.open takes this app-level token (xapp-) instead of the bot's.
        self.app_token = app_token
        self.socket_acks: list[JsonDict] = []
        self._sockets: list[web.WebSocketResponse] = []
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.enterprise_id = enterprise_id
        self.clock = clock
        self.strict_channels = strict_channels

        self.calls: list[FakeSlackCall] = []
        self.response_url_posts: list[ResponseUrlPost] = []
        # Directory data (what a workspace "has"); survives reset() unless asked.
        self.users: dict[str, JsonDict] = {}
        self.usergroups: dict[str, JsonDict] = {}
        self.channels: dict[str, JsonDict] = {}
        # Traffic state.
        self.messages: dict[tuple[str, str], JsonDict] = {}
        self.views: dict[str, JsonDict] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._delays: dict[str, float] = {}
        self._holds: dict[str, asyncio.Event] = {}
        self._triggers: dict[str, float] = {}
        self._used_triggers: set[str] = set()
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._waiters: list[_Waiter] = []
        self._home_views: dict[str, str] = {}
        self._ts_counter = itertools.count(1)
        self._id_counter = itertools.count(1)

        self._handlers: dict[str, Callable[[JsonDict], JsonDict]] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
        }
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def build_app(self) -> web.Application:
        """The aiohttp app: Web API under ``/api/``, response URLs, and the ``/_fake/`` control API."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response-url/{url_id}", self._handle_response_url)
        app.router.add_get("/_fake/socket", self._socket_mode)
        app.router.add_get("/_fake/health", self._ctl_health)
        app.router.add_get("/_fake/calls", self._ctl_calls)
        app.router.add_post("/_fake/reset", self._ctl_reset)
        app.router.add_post("/_fake/fail", self._ctl_fail)
        app.router.add_post("/_fake/delay", self._ctl_delay)
        app.router.add_post("/_fake/usergroups", self._ctl_usergroups)
        app.router.add_post("/_fake/users", self._ctl_users)
        app.router.add_post("/_fake/channels", self._ctl_channels)
        app.router.add_post("/_fake/triggers", self._ctl_triggers)
        app.router.add_post("/_fake/response-urls", self._ctl_new_response_url)
        app.router.add_get("/_fake/response-urls", self._ctl_response_url_posts)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 picks a free port) and return the Web API URL, ending in ``/api/``."""
        if self._runner is not None:
            raise RuntimeError("FakeSlack is already started")
        # No access log: formatting a line per request costs more than the handler itself.
        runner = web.AppRunner(self.build_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        self._runner = runner
        self._base_url = f"http://{bound_host}:{bound_port}"
        return self.api_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for waiter in self._waiters:
            waiter.future.cancel()
        self._waiters.clear()

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running fake."""
        if self._base_url is None:
            raise RuntimeError("FakeSlack is not started")
        return self._base_url

    @property
    def api_url(self) -> str:
        """The ``base_url`` to give ``AsyncWebClient``: ``http://host:port/api/``."""
        return f"{self.base_url}/api/"

    # ------------------------------------------------------------------ seeding

    def add_user(
        self,
        id: str,
        *,
        team_id: str | None = None,
        name: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
        is_bot: bool = False,
        is_admin: bool = False,
        is_restricted: bool = False,
        deleted: bool = False,
    ) -> JsonDict:
        """Seed a user for ``users.info``. ``team_id`` other than the app's models a Slack Connect user."""
        name = name or id.lower()
        real_name = real_name or name
        user_team = team_id or self.team_id
        profile: JsonDict = {
            "real_name": real_name,
            "display_name": name,
            "real_name_normalized": real_name,
            "display_name_normalized": name,
            "team": user_team,
        }
        if email is not None:
            profile["email"] = email
        user: JsonDict = {
            "id": id,
            "team_id": user_team,
            "name": name,
            "deleted": deleted,
            "real_name": real_name,
            "tz": "Etc/UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": is_restricted,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }
        self.users[id] = user
        return user

    def add_usergroup(
        self,
        *,
        id: str,
        handle: str,
        users: list[str] | tuple[str, ...] = (),
        name: str | None = None,
        description: str = "",
        team_id: str | None = None,
        disabled: bool = False,
    ) -> JsonDict:
        """Seed a usergroup for ``usergroups.list`` / ``usergroups.users.list`` (Slack's usergroup object)."""
        group: JsonDict = {
            "id": id,
            "team_id": team_id or self.team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": name or handle,
            "description": description,
            "handle": handle,
            "is_external": False,
            "date_create": 1_700_000_000,
            "date_update": 1_700_000_000,
            "date_delete": 1_700_000_001 if disabled else 0,
            "auto_type": None,
            "auto_provision": False,
            "created_by": "USLACKBOT",
            "updated_by": "USLACKBOT",
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
            "users": list(users),
            "user_count": len(users),
        }
        self.usergroups[id] = group
        return group

    def add_channel(
        self,
        id: str,
        *,
        name: str | None = None,
        is_private: bool = False,
        is_member: bool = True,
        is_archived: bool = False,
        is_ext_shared: bool = False,
    ) -> JsonDict:
        """Seed a channel for ``conversations.info`` and the membership checks of ``chat.*``."""
        channel = self._channel_object(
            id,
            name=name or id.lower(),
            is_private=is_private,
            is_member=is_member,
            is_archived=is_archived,
            is_ext_shared=is_ext_shared,
        )
        self.channels[id] = channel
        return channel

    def add_message(self, *, channel: str, ts: str, text: str = "", blocks: list[JsonDict] | None = None) -> JsonDict:
        """Seed a message the bot posted earlier, so ``chat.update`` on it succeeds."""
        message = self._message_object(ts=ts, text=text, blocks=blocks or [], thread_ts=None)
        self.messages[(channel, ts)] = message
        return message

    def issue_trigger_id(self) -> str:
        """A fresh trigger_id, valid once for ``TRIGGER_TTL_SECONDS`` of ``clock`` from now."""
        trigger_id = f"trigger-{next(self._id_counter)}.{secrets.token_hex(8)}"
        self._triggers[trigger_id] = self.clock()
        return trigger_id

    def response_url(self, *, channel_id: str | None = None) -> str:
        """A response_url on this fake; posts to it are recorded in ``response_url_posts``."""
        url_id = f"{next(self._id_counter)}-{secrets.token_hex(6)}"
        self._response_urls[url_id] = _ResponseUrl(issued_at=self.clock(), channel_id=channel_id)
        return f"{self.base_url}/response-url/{url_id}"

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        *,
        error: str,
        times: int = 1,
        status: int = 200,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` calls to ``method`` with ``{"ok": false, "error": error, **extra}``.

        Slack reports API errors with HTTP 200; pass ``status`` (e.g. 500) to model a server failure.
        """
        body: JsonDict = {"ok": False, "error": error, **(extra or {})}
        self._enqueue(method, _Fault(status=status, body=body, headers={}), times)

    def rate_limit_next(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls with HTTP 429, ``Retry-After`` and ``error: ratelimited``."""
        fault = _Fault(
            status=429,
            body={"ok": False, "error": "ratelimited"},
            headers={"Retry-After": str(retry_after)},
        )
        self._enqueue(method, fault, times)

    def delay(self, method: str, seconds: float) -> None:
        """Hold every response to ``method`` for ``seconds`` until cleared with ``delay(method, 0)``.

        The call is processed (and recorded) on arrival; only the response is late, as when Slack is slow.
        """
        if seconds > 0:
            self._delays[method] = seconds
        else:
            self._delays.pop(method, None)

    def hold(self, method: str) -> None:
        """Hold every response to ``method`` until :meth:`release`: calls are processed and recorded on
        arrival, and none is answered meanwhile (Slack stalling, for as long as a test needs)."""
        self._holds.setdefault(method, asyncio.Event())

    def release(self, method: str) -> None:
        """Answer the held calls to ``method``, and stop holding new ones."""
        gate = self._holds.pop(method, None)
        if gate is not None:
            gate.set()

    def _enqueue(self, method: str, fault: _Fault, times: int) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        queue = self._faults.setdefault(method, deque())
        queue.extend([fault] * times)

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[FakeSlackCall]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        # A plain timeout argument reads best at call sites; asyncio.timeout enforces it inside.
        timeout: float = 5.0,
        predicate: CallPredicate | None = None,
    ) -> list[FakeSlackCall]:
        """Wait until ``count`` calls to ``method`` (matching ``predicate``) have been recorded.

        Counts calls already recorded since the last reset, returns the first ``count`` matches, and
        raises ``TimeoutError`` naming what did arrive. Woken by each recorded call, never by polling.
        Must be awaited on the loop the fake serves on.
        """
        loop = asyncio.get_running_loop()
        waiter = _Waiter(method, count, predicate, loop.create_future(), [])
        for call in self.calls:
            waiter.offer(call)
        if waiter.future.done():
            return waiter.future.result()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter.future
        except TimeoutError:
            seen = [f"{call.method}({call.error or 'ok'})" for call in self.calls]
            raise TimeoutError(
                f"waited {timeout}s for {count} call(s) to {method}; {len(waiter.matched)} matched; calls seen: {seen}"
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def reset(self, *, directory: bool = False) -> None:
        """Forget calls, faults, delays, triggers, messages, views and response URLs.

        Seeded users, usergroups and channels stay (they are fixtures, not traffic) unless ``directory``.
        """
        self.calls.clear()
        self.response_url_posts.clear()
        self.messages.clear()
        self.views.clear()
        self._home_views.clear()
        self._faults.clear()
        self._delays.clear()
        for gate in self._holds.values():
            gate.set()
        self._holds.clear()
        self._triggers.clear()
        self._used_triggers.clear()
        self._response_urls.clear()
        if directory:
            self.users.clear()
            self.usergroups.clear()
            self.channels.clear()

    # ------------------------------------------------------------------ HTTP: Web API

    async def _handle_api(self, request: web.Request) -> web.Response:
        received_at = time.monotonic()
        method = request.match_info["method"]
        args = await _decode_args(request)
        headers = {name.lower(): value for name, value in request.headers.items()}

        token = _bearer_token(headers.get("authorization"))
        body_token = args.pop("token", None)
        if token is None and isinstance(body_token, str):
            # Slack also accepts the token as a POST parameter.
            token = body_token

        status, payload, extra_headers = self._respond(method, args, token)
        call = FakeSlackCall(
            method=method,
            args=args,
            headers=headers,
            received_at=received_at,
            status=status,
            response=payload,
            token=token,
        )
        self._record(call)

        delay = self._delays.get(method)
        if delay:
            await asyncio.sleep(delay)
        gate = self._holds.get(method)
        if gate is not None:
            await gate.wait()
        return _json_response(payload, status=status, headers=extra_headers)

    def _respond(self, method: str, args: JsonDict, token: str | None) -> tuple[int, JsonDict, dict[str, str]]:
        if token is None:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if method == "apps.connections.open":
            # Only an app-level token opens a Socket Mode connection; a bot token is the wrong kind.
            if self.app_token is None or token != self.app_token:
                return (
                    200,
                    {"ok": False, "error": "invalid_auth" if token.startswith("xapp-") else "not_allowed_token_type"},
                    {},
                )
            ws_url = self.base_url.replace("http://", "ws://", 1) + "/_fake/socket"
            return 200, {"ok": True, "url": ws_url}, {}
        if token != self.bot_token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        queue = self._faults.get(method)
        if queue:
            fault = queue.popleft()
            return fault.status, dict(fault.body), fault.headers
        handler = self._handlers.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        try:
            payload = handler(args)
        except _SlackError as exc:
            return 200, {"ok": False, "error": exc.error, **exc.extra}, {}
        extra_headers = {"x-oauth-scopes": _BOT_SCOPES} if method == "auth.test" else {}
        return 200, payload, extra_headers

    # ------------------------------------------------------------------ Socket Mode

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        try:
            async for message in ws:
                if message.type == web.WSMsgType.TEXT:
                    # The app acknowledges each envelope with {"envelope_id": ..., "payload"?: ...}.
                    self.socket_acks.append(json.loads(message.data))
        finally:
            self._sockets.remove(ws)
        return ws

    @property
    def socket_connections(self) -> int:
        return len(self._sockets)

    async def send_envelope(self, envelope_type: str, payload: JsonDict) -> str:
        """Send ``payload`` to the first connected app as Slack does; returns the envelope id."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection is open")
        envelope_id = f"env-{next(self._id_counter):08d}"
        await self._sockets[0].send_json(
            {
                "envelope_id": envelope_id,
                "type": envelope_type,
                "payload": payload,
                "accepts_response_payload": envelope_type != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return envelope_id

    async def wait_socket_ack(self, envelope_id: str, timeout: float = 5.0) -> JsonDict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ack in self.socket_acks:
                if ack.get("envelope_id") == envelope_id:
                    return ack
            await asyncio.sleep(0.01)
        raise AssertionError(f"envelope {envelope_id} was not acknowledged; acks: {self.socket_acks}")

    def _record(self, call: FakeSlackCall) -> None:
        self.calls.append(call)
        for waiter in self._waiters:
            waiter.offer(call)

    # ------------------------------------------------------------------ Web API methods

    def _api_test(self, args: JsonDict) -> JsonDict:
        return {"ok": True, "args": args}

    def _auth_test(self, args: JsonDict) -> JsonDict:
        payload: JsonDict = {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": "atlas",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }
        if self.enterprise_id is not None:
            payload["enterprise_id"] = self.enterprise_id
        return payload

    def _chat_post_message(self, args: JsonDict) -> JsonDict:
        channel = self._writable_channel(args)
        _require_content(args)
        thread_ts = _opt_str(args.get("thread_ts"))
        ts = self._next_ts()
        message = self._message_object(
            ts=ts,
            text=str(args.get("text") or ""),
            blocks=_as_list(args.get("blocks")),
            thread_ts=thread_ts,
        )
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, args: JsonDict) -> JsonDict:
        channel = self._writable_channel(args)
        ts = _opt_str(args.get("ts"))
        if ts is None:
            raise _SlackError("invalid_arguments", response_metadata={"messages": ["missing ts"]})
        existing = self.messages.get((channel, ts))
        if existing is None:
            raise _SlackError("message_not_found")
        _require_content(args)
        updated = dict(existing)
        if "text" in args:
            updated["text"] = str(args["text"] or "")
        if "blocks" in args:
            updated["blocks"] = _as_list(args.get("blocks"))
        updated["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        self.messages[(channel, ts)] = updated
        return {"ok": True, "channel": channel, "ts": ts, "text": updated["text"], "message": updated}

    def _chat_post_ephemeral(self, args: JsonDict) -> JsonDict:
        self._writable_channel(args)
        user = _opt_str(args.get("user"))
        if user is None or (self.users and user not in self.users):
            raise _SlackError("user_not_found")
        _require_content(args)
        # Ephemeral messages are not stored: Slack does not let chat.update touch them either.
        return {"ok": True, "message_ts": self._next_ts()}

    def _views_open(self, args: JsonDict) -> JsonDict:
        self._exchange_trigger(args)
        view = self._store_view(_require_view(args), view_id=None, root_view_id=None)
        return {"ok": True, "view": view}

    def _views_push(self, args: JsonDict) -> JsonDict:
        self._exchange_trigger(args)
        view = self._store_view(_require_view(args), view_id=None, root_view_id=None)
        return {"ok": True, "view": view}

    def _views_update(self, args: JsonDict) -> JsonDict:
        new_view = _require_view(args)
        view_id = _opt_str(args.get("view_id"))
        external_id = _opt_str(args.get("external_id"))
        current: JsonDict | None = None
        if view_id is not None:
            current = self.views.get(view_id)
        elif external_id is not None:
            current = next((v for v in self.views.values() if v.get("external_id") == external_id), None)
        if current is None:
            raise _SlackError("not_found")
        expected_hash = _opt_str(args.get("hash"))
        if expected_hash is not None and expected_hash != current["hash"]:
            # Someone updated the view since the caller read it: Slack refuses rather than overwrite.
            raise _SlackError("hash_conflict")
        view = self._store_view(new_view, view_id=current["id"], root_view_id=current.get("root_view_id"))
        return {"ok": True, "view": view}

    def _views_publish(self, args: JsonDict) -> JsonDict:
        user_id = _opt_str(args.get("user_id"))
        if user_id is None or (self.users and user_id not in self.users):
            raise _SlackError("user_not_found")
        new_view = _require_view(args)
        existing_id = self._home_views.get(user_id)
        expected_hash = _opt_str(args.get("hash"))
        if existing_id is not None and expected_hash not in (None, self.views[existing_id]["hash"]):
            raise _SlackError("hash_conflict")
        view = self._store_view(new_view, view_id=existing_id, root_view_id=None)
        self._home_views[user_id] = view["id"]
        return {"ok": True, "view": view}

    def _usergroups_list(self, args: JsonDict) -> JsonDict:
        include_users = args.get("include_users") in _TRUTHY
        include_disabled = args.get("include_disabled") in _TRUTHY
        team_id = _opt_str(args.get("team_id")) or self.team_id
        groups = []
        for group in self.usergroups.values():
            if group["team_id"] != team_id or (group["date_delete"] and not include_disabled):
                continue
            shown = dict(group)
            if not include_users:
                # Slack leaves the member list out unless include_users is set.
                del shown["users"]
            groups.append(shown)
        return {"ok": True, "usergroups": groups}

    def _usergroups_users_list(self, args: JsonDict) -> JsonDict:
        group_id = _opt_str(args.get("usergroup"))
        group = self.usergroups.get(group_id) if group_id else None
        if group is None:
            raise _SlackError("no_such_subteam")
        if group["date_delete"] and args.get("include_disabled") not in _TRUTHY:
            raise _SlackError("subteam_disabled")
        return {"ok": True, "users": list(group["users"])}

    def _users_info(self, args: JsonDict) -> JsonDict:
        user_id = _opt_str(args.get("user"))
        user = self.users.get(user_id) if user_id else None
        if user is None:
            raise _SlackError("user_not_found")
        return {"ok": True, "user": user}

    def _conversations_info(self, args: JsonDict) -> JsonDict:
        return {"ok": True, "channel": self._known_channel(_opt_str(args.get("channel")))}

    # ------------------------------------------------------------------ helpers for methods

    def _known_channel(self, channel_id: str | None) -> JsonDict:
        if not channel_id:
            raise _SlackError("channel_not_found")
        channel = self.channels.get(channel_id)
        if channel is not None:
            return channel
        if self.strict_channels:
            raise _SlackError("channel_not_found")
        return self._channel_object(
            channel_id,
            name=channel_id.lower(),
            is_private=channel_id.startswith("G"),
            is_member=True,
            is_archived=False,
            is_ext_shared=False,
        )

    def _writable_channel(self, args: JsonDict) -> str:
        channel = self._known_channel(_opt_str(args.get("channel")))
        if channel["is_archived"]:
            raise _SlackError("is_archived")
        if not channel["is_member"]:
            raise _SlackError("not_in_channel")
        channel_id: str = channel["id"]
        return channel_id

    def _exchange_trigger(self, args: JsonDict) -> None:
        trigger_id = _opt_str(args.get("trigger_id")) or _opt_str(args.get("interactivity_pointer"))
        if trigger_id is None:
            raise _SlackError("invalid_arguments", response_metadata={"messages": ["missing trigger_id"]})
        if trigger_id in self._used_triggers:
            raise _SlackError("trigger_exchanged")
        issued_at = self._triggers.get(trigger_id)
        if issued_at is None:
            if not trigger_id.startswith("trigger-"):
                raise _SlackError("invalid_trigger_id")
            # Request builders mint "trigger-..." IDs without knowing the fake: first sight counts as issue.
            issued_at = self.clock()
        if self.clock() - issued_at > TRIGGER_TTL_SECONDS:
            raise _SlackError("expired_trigger_id")
        self._used_triggers.add(trigger_id)
        self._triggers.pop(trigger_id, None)

    def _store_view(self, view: JsonDict, *, view_id: str | None, root_view_id: str | None) -> JsonDict:
        new_id = view_id or self._new_id("V")
        view_type = view.get("type", "modal")
        stored: JsonDict = {
            "id": new_id,
            "team_id": self.team_id,
            "type": view_type,
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "previous_view_id": None,
            "root_view_id": root_view_id or new_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        for key in ("title", "submit", "close"):
            if key in view:
                stored[key] = view[key]
        self.views[new_id] = stored
        return stored

    def _message_object(self, *, ts: str, text: str, blocks: list[JsonDict], thread_ts: str | None) -> JsonDict:
        message: JsonDict = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": ts,
            "text": text,
            "blocks": blocks,
        }
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
            message["parent_user_id"] = self.bot_user_id
        return message

    def _channel_object(
        self,
        id: str,
        *,
        name: str,
        is_private: bool,
        is_member: bool,
        is_archived: bool,
        is_ext_shared: bool,
    ) -> JsonDict:
        return {
            "id": id,
            "name": name,
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": is_private,
            "created": 1_700_000_000,
            "is_archived": is_archived,
            "is_general": False,
            "is_shared": is_ext_shared,
            "is_ext_shared": is_ext_shared,
            "is_org_shared": False,
            "is_member": is_member,
            "context_team_id": self.team_id,
            "creator": "U0CREATOR",
            "name_normalized": name,
        }

    def _next_ts(self) -> str:
        # Unique and increasing, in Slack's "seconds.micros" shape; 100 µs apart like a busy channel.
        micros = 1_700_000_000_000_000 + next(self._ts_counter) * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _new_id(self, prefix: str) -> str:
        # Slack IDs: a type letter, then upper-case alphanumerics ("V0ABC12345").
        n = next(self._id_counter)
        suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))
        return f"{prefix}0{n:03d}{suffix}"

    # ------------------------------------------------------------------ HTTP: response_url

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        received_at = time.monotonic()
        url_id = request.match_info["url_id"]
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        entry = self._response_urls.get(url_id)
        if entry is None:
            status, payload = 404, {"ok": False, "error": "invalid_token"}
        elif self.clock() - entry.issued_at > RESPONSE_URL_TTL_SECONDS:
            status, payload = 404, {"ok": False, "error": "expired_url"}
        elif entry.posts >= RESPONSE_URL_MAX_POSTS:
            status, payload = 404, {"ok": False, "error": "used_url"}
        else:
            entry.posts += 1
            status, payload = 200, {"ok": True}
        self.response_url_posts.append(
            ResponseUrlPost(url_id=url_id, body=body, received_at=received_at, status=status)
        )
        return _json_response(payload, status=status)

    # ------------------------------------------------------------------ HTTP: control API

    async def _ctl_health(self, request: web.Request) -> web.Response:
        return _json_response({"ok": True, "api_url": self.api_url if self._base_url else None})

    async def _ctl_calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        calls = self.calls_to(method) if method else self.calls
        return _json_response({"ok": True, "calls": [call.to_json() for call in calls]})

    async def _ctl_reset(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        self.reset(directory=bool(body.get("directory", False)))
        return _json_response({"ok": True})

    async def _ctl_fail(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        method = body.get("method")
        if not isinstance(method, str):
            return _json_response({"ok": False, "error": "method is required"}, status=400)
        times = int(body.get("times", 1))
        if body.get("kind", "error") == "ratelimit" or body.get("error") == "ratelimited":
            self.rate_limit_next(method, retry_after=int(body.get("retry_after", 1)), times=times)
        else:
            error = body.get("error")
            if not isinstance(error, str):
                return _json_response({"ok": False, "error": "error is required"}, status=400)
            self.fail_next(
                method, error=error, times=times, status=int(body.get("status", 200)), extra=body.get("extra")
            )
        return _json_response({"ok": True})

    async def _ctl_delay(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        self.delay(str(body["method"]), float(body.get("seconds", 0)))
        return _json_response({"ok": True})

    async def _ctl_usergroups(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        group = self.add_usergroup(
            id=str(body["id"]),
            handle=str(body["handle"]),
            users=[str(u) for u in body.get("users", [])],
            name=body.get("name"),
            description=str(body.get("description", "")),
            team_id=body.get("team_id"),
            disabled=bool(body.get("disabled", False)),
        )
        return _json_response({"ok": True, "usergroup": group})

    async def _ctl_users(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        user = self.add_user(
            str(body["id"]),
            team_id=body.get("team_id"),
            name=body.get("name"),
            real_name=body.get("real_name"),
            email=body.get("email"),
            is_bot=bool(body.get("is_bot", False)),
            is_admin=bool(body.get("is_admin", False)),
            is_restricted=bool(body.get("is_restricted", False)),
            deleted=bool(body.get("deleted", False)),
        )
        return _json_response({"ok": True, "user": user})

    async def _ctl_channels(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        channel = self.add_channel(
            str(body["id"]),
            name=body.get("name"),
            is_private=bool(body.get("is_private", False)),
            is_member=bool(body.get("is_member", True)),
            is_archived=bool(body.get("is_archived", False)),
            is_ext_shared=bool(body.get("is_ext_shared", False)),
        )
        return _json_response({"ok": True, "channel": channel})

    async def _ctl_triggers(self, request: web.Request) -> web.Response:
        return _json_response({"ok": True, "trigger_id": self.issue_trigger_id()})

    async def _ctl_new_response_url(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        return _json_response({"ok": True, "url": self.response_url(channel_id=body.get("channel_id"))})

    async def _ctl_response_url_posts(self, request: web.Request) -> web.Response:
        posts = [
            {"url_id": p.url_id, "body": p.body, "received_at": p.received_at, "status": p.status}
            for p in self.response_url_posts
        ]
        return _json_response({"ok": True, "posts": posts})


# ---------------------------------------------------------------------- request decoding


async def _decode_args(request: web.Request) -> JsonDict:
    """Merge query string, form and JSON body the way Slack reads them; decode JSON-string fields."""
    args: JsonDict = dict(request.query)
    if request.can_read_body:
        raw = await request.read()
        content_type = request.content_type
        if content_type == "application/json":
            decoded = json.loads(raw) if raw else {}
            if isinstance(decoded, dict):
                args.update(decoded)
        elif content_type == "application/x-www-form-urlencoded":
            args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    for key in _JSON_STRING_FIELDS.intersection(args):
        value = args[key]
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(json.JSONDecodeError):
                args[key] = json.loads(value)
    return args


async def _json_body(request: web.Request) -> JsonDict:
    raw = await request.read()
    if not raw:
        return {}
    decoded = json.loads(raw)
    return decoded if isinstance(decoded, dict) else {}


def _bearer_token(authorization: str | None) -> str | None:
    if authorization is None or not authorization.startswith("Bearer "):
        return None
    return authorization[len("Bearer ") :].strip() or None


def _json_response(payload: JsonDict, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode("utf-8"),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _as_list(value: Any) -> list[JsonDict]:
    return list(value) if isinstance(value, list) else []


def _require_content(args: JsonDict) -> None:
    if not (args.get("text") or args.get("blocks") or args.get("attachments")):
        raise _SlackError("no_text")


def _require_view(args: JsonDict) -> JsonDict:
    view = args.get("view")
    if not isinstance(view, dict):
        raise _SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing view"]})
    return view


# ---------------------------------------------------------------------- standalone process


async def _serve_forever(host: str, port: int, bot_token: str) -> None:
    fake = FakeSlack(bot_token=bot_token)
    api_url = await fake.start(host=host, port=port)
    # One parseable line so a parent process can learn the port when it asked for port 0.
    print(f"FAKE_SLACK_READY {api_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake Slack Web API for tests and benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--bot-token", default="xoxb-test")
    options = parser.parse_args(argv)
    asyncio.run(_serve_forever(options.host, options.port, options.bot_token))
    return 0


if __name__ == "__main__":
    sys.exit(main())

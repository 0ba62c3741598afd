"""Forged, replayed and broken requests at ``POST /slack/events``.

Whoever can reach the endpoint can send anything. Every case here must end in 401 (not signed by
Slack), 400 (signed, but not something Slack sends), 413 (too big) or a harmless ack, with no stack
trace in the response, nothing logged as an error, and nothing changed: no rows in the store, no
call at the fake Slack or the fake Atlas. Each test also sends the well-formed request once, so
it can fail if the bot stopped doing anything at all.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from tests.hostile.harness import (
    ALICE,
    BOB,
    CHANNEL,
    SIGNING_SECRET,
    TRACE_MARKERS,
    HostileHarness,
    Snapshot,
    errors_logged,
    seed_oidc_idp,
)
from tests.hostile.tally import fault
from tests.slack_requests import FORM_CONTENT_TYPE, block_actions, sign, slash_command, view_submission

JSON_CONTENT_TYPE = "application/json"
_DELETE = object()


def assert_clean(response: httpx.Response, *, status: int | tuple[int, ...]) -> None:
    expected = (status,) if isinstance(status, int) else status
    assert response.status_code in expected, (response.status_code, response.text[:300])
    for marker in TRACE_MARKERS:
        assert marker not in response.text, f"{marker!r} in a response: {response.text[:300]}"


def assert_unchanged(before: Snapshot, after: Snapshot) -> None:
    assert after == before, f"state changed: {before} -> {after}"


def command_body(text: str, h: HostileHarness, *, user: str = ALICE) -> bytes:
    return slash_command(
        text,
        user_id=user,
        channel_id=CHANNEL,
        trigger_id=h.fake_slack.issue_trigger_id(),
        response_url=h.fake_slack.response_url(channel_id=CHANNEL),
    )


def interactive(payload: object) -> bytes:
    return interactive_raw(json.dumps(payload))


def interactive_raw(payload: str) -> bytes:
    return urlencode({"payload": payload}).encode()


# ----------------------------------------------------------------------------- signatures


def forgeries(body: bytes) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Ways to get a request past the signature check without the signing secret."""
    # 10 s past the 5-minute window, not 1: `now` is truncated to the second and the bot reads the
    # clock later, so "301 s ahead" could arrive 299.9 s ahead, inside the window (seen in CI).
    now = int(time.time())
    good = sign(body, SIGNING_SECRET, now)
    return {
        "no signature headers": (body, {"Content-Type": FORM_CONTENT_TYPE}),
        "no timestamp": (body, {k: v for k, v in good.items() if k != "X-Slack-Request-Timestamp"}),
        "signed with another secret": (body, sign(body, "not-the-signing-secret", now)),
        "body altered after signing": (body.replace(b"revoke-jwks", b"delete-idp"), good),
        "body extended after signing": (body + b"&user_id=U0BOB", good),
        "replay older than 5 minutes": (body, sign(body, SIGNING_SECRET, now - 310)),
        "timestamp over 5 minutes ahead": (body, sign(body, SIGNING_SECRET, now + 310)),
        "timestamp not a number": (body, {**good, "X-Slack-Request-Timestamp": "yesterday"}),
        "timestamp absurdly long": (body, {**good, "X-Slack-Request-Timestamp": "9" * 5000}),
        "signature with another version": (body, {**good, "X-Slack-Signature": "v1=" + good["X-Slack-Signature"][3:]}),
        "signature truncated": (body, {**good, "X-Slack-Signature": good["X-Slack-Signature"][:-2]}),
        "signature not ASCII": (body, {**good, "X-Slack-Signature": "v0=" + "é" * 64}),
        "empty signature": (body, {**good, "X-Slack-Signature": ""}),
    }  # fmt: skip


async def test_requests_not_signed_by_slack_get_401_and_change_nothing(
    hostile: HostileHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    body = command_body(f"revoke-jwks {fed} {idp}", h)
    before = await h.snapshot()
    for name, (sent, headers) in forgeries(body).items():
        fault(f"forged request: {name}")
        response = await h.post(sent, headers)
        assert_clean(response, status=401)
        assert response.json() == {"error": "invalid request"}, name
    assert_unchanged(before, await h.snapshot())
    assert errors_logged(caplog.records) == []
    # The same body, signed now, does open the confirmation modal.
    assert_clean(await h.post(body, sign(body, SIGNING_SECRET)), status=200)
    await h.fake_slack.wait_for("views.open")


async def test_a_replayed_click_counts_once_and_a_stale_replay_is_refused(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}", reason="first")
    click = block_actions(
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts=requested.message_ts,
        action_id="atlas_approve",
        value=requested.request_id,
        response_url=h.fake_slack.response_url(channel_id=CHANNEL),
    )
    headers = sign(click, SIGNING_SECRET)
    for _ in range(3):  # captured on the wire and sent again within the window
        fault("forged request: replayed signed click within the window")
        assert_clean(await h.post(click, headers), status=200)
    await h.wait_thread(requested, "Done")
    await h.quiet()
    assert h.fake_atlas.count("revokeJwks") == 1
    audit = await h.audit(requested)
    assert audit.count("approval-counted") == 1 and audit.count("executing") == 1
    before = await h.snapshot()
    fault("forged request: replayed signed click, 6 minutes later")
    stale = sign(click, SIGNING_SECRET, int(time.time()) - 360)
    assert_clean(await h.post(click, stale), status=401)
    assert_unchanged(before, await h.snapshot())


# ----------------------------------------------------------------------------- broken bodies


def _signed_broken_bodies(h: HostileHarness) -> dict[str, tuple[bytes, str]]:
    good_command = command_body("whoami", h)
    click: dict[str, object] = {
        "type": "block_actions",
        "user": {"id": BOB, "team_id": "T0APP"},
        "team": {"id": "T0APP"},
        "channel": {"id": CHANNEL},
        "container": {"type": "message", "channel_id": CHANNEL, "message_ts": "1.2"},
        "response_url": h.fake_slack.response_url(channel_id=CHANNEL),
        "actions": [{"action_id": "atlas_approve", "value": "0" * 32, "type": "button"}],
    }
    form = dict(parse_qsl(view_submission(user_id=ALICE, callback_id="atlas_confirm", values={}).decode()))
    submission = json.loads(form["payload"])

    def with_(base: dict[str, object], path: str, value: object) -> bytes:
        copy = json.loads(json.dumps(base))
        node = copy
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(leaf)] = value
        elif value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
        return interactive(copy)

    return {
        "JSON content type, broken JSON": (b'{"type": "block_actions", ', JSON_CONTENT_TYPE),
        "JSON content type, a list": (b"[1, 2, 3]", JSON_CONTENT_TYPE),
        "JSON content type, a form body": (good_command, JSON_CONTENT_TYPE),
        "JSON content type, a string": (b'"block_actions"', JSON_CONTENT_TYPE),
        "JSON nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, JSON_CONTENT_TYPE),
        "payload nested 40,000 deep": (interactive_raw("[" * 40_000 + "]" * 40_000), FORM_CONTENT_TYPE),
        "payload with a NUL in a user id": (with_(click, "user.id", "U0BOB\x00"), FORM_CONTENT_TYPE),
        "slash command with a NUL": (command_body("whoami\x00", h), FORM_CONTENT_TYPE),
        "form body starting with a brace": (b'{"type": ', FORM_CONTENT_TYPE),
        "payload field, broken JSON": (b"payload=%7Bnot-json", FORM_CONTENT_TYPE),
        "payload field, a list": (interactive([1, 2]), FORM_CONTENT_TYPE),
        "payload field, a number": (b"payload=42", FORM_CONTENT_TYPE),
        "payload field, empty": (b"payload=", FORM_CONTENT_TYPE),
        "payload field, no type": (interactive({"user": {"id": BOB}}), FORM_CONTENT_TYPE),
        "not UTF-8": (b"\xff\xfe\x00text=\xc3", FORM_CONTENT_TYPE),
        "empty body": (b"", FORM_CONTENT_TYPE),
        "text/plain content type": (good_command, "text/plain"),
        "multipart content type": (good_command, "multipart/form-data; boundary=x"),
        "no content type": (good_command, ""),
        "form with neither command nor payload": (b"text=revoke-jwks&user_id=U0ALICE", FORM_CONTENT_TYPE),
        "slash command without response_url": (
            urlencode({"command": "/atlas", "text": "pending", "user_id": ALICE, "channel_id": CHANNEL}).encode(),
            FORM_CONTENT_TYPE,
        ),
        "click, actions is a string": (with_(click, "actions", "atlas_approve"), FORM_CONTENT_TYPE),
        "click, actions is empty": (with_(click, "actions", []), FORM_CONTENT_TYPE),
        "click, action is a string": (with_(click, "actions.0", "atlas_approve"), FORM_CONTENT_TYPE),
        "click, action_id is a number": (with_(click, "actions.0.action_id", 7), FORM_CONTENT_TYPE),
        "click, action without action_id": (with_(click, "actions.0.action_id", _DELETE), FORM_CONTENT_TYPE),
        "click, value is an object": (with_(click, "actions.0.value", {"$ne": ""}), FORM_CONTENT_TYPE),
        "click, user is a string": (with_(click, "user", BOB), FORM_CONTENT_TYPE),
        "click, user without id": (with_(click, "user", {"team_id": "T0APP"}), FORM_CONTENT_TYPE),
        "click, user id is a list": (with_(click, "user.id", [BOB]), FORM_CONTENT_TYPE),
        "click, team is a string": (with_(click, "team", "T0APP"), FORM_CONTENT_TYPE),
        "click, channel is a list": (with_(click, "channel", [CHANNEL]), FORM_CONTENT_TYPE),
        "click, container is a number": (with_(click, "container", 1), FORM_CONTENT_TYPE),
        "click, enterprise is false": (with_(click, "enterprise", False), FORM_CONTENT_TYPE),
        "click, enterprise id is a number": (with_(click, "enterprise", {"id": 7}), FORM_CONTENT_TYPE),
        "click, response_url is an object": (with_(click, "response_url", {"url": "x"}), FORM_CONTENT_TYPE),
        "click, authorizations is a string": (with_(click, "authorizations", "x"), FORM_CONTENT_TYPE),
        "submission, view is a string": (with_(submission, "view", "atlas_confirm"), FORM_CONTENT_TYPE),
        "submission, view without type": (with_(submission, "view.type", _DELETE), FORM_CONTENT_TYPE),
        "submission, callback_id is a list": (with_(submission, "view.callback_id", ["x"]), FORM_CONTENT_TYPE),
        "submission, state is a list": (with_(submission, "view.state", []), FORM_CONTENT_TYPE),
        "submission, state.values is a string": (with_(submission, "view.state", {"values": "x"}), FORM_CONTENT_TYPE),
        "submission, input is a number": (
            with_(submission, "view.state", {"values": {"confirm": {"value": 3}}}),
            FORM_CONTENT_TYPE,
        ),
        "submission, typed value is a number": (
            with_(submission, "view.state", {"values": {"confirm": {"value": {"type": "x", "value": 3}}}}),
            FORM_CONTENT_TYPE,
        ),
        "submission, private_metadata is an object": (
            with_(submission, "view.private_metadata", {"a": "delete-federation"}),
            FORM_CONTENT_TYPE,
        ),
        "event without event": (json.dumps({"type": "event_callback"}).encode(), JSON_CONTENT_TYPE),
        "event, event.user is a number": (
            json.dumps({"type": "event_callback", "event": {"type": "app_home_opened", "user": 7}}).encode(),
            JSON_CONTENT_TYPE,
        ),
        "event, event is a list": (
            json.dumps({"type": "event_callback", "event": [1]}).encode(),
            JSON_CONTENT_TYPE,
        ),
        "legacy interactive_message": (interactive({"type": "interactive_message", "actions": "x"}), FORM_CONTENT_TYPE),
        "legacy dialog_submission": (interactive({"type": "dialog_submission"}), FORM_CONTENT_TYPE),
        "unknown payload type": (interactive({"type": "definitely_not_slack", "user": {"id": BOB}}), FORM_CONTENT_TYPE),
    }  # fmt: skip


async def test_signed_but_malformed_bodies_get_400_and_change_nothing(
    hostile: HostileHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = hostile
    cases = _signed_broken_bodies(h)
    before = await h.snapshot()
    for name, (body, content_type) in cases.items():
        fault(f"malformed body: {name}")
        headers = sign(body, SIGNING_SECRET, content_type=content_type)
        if not content_type:
            del headers["Content-Type"]
        response = await h.post(body, headers)
        assert_clean(response, status=400)
        # Without a valid signature the same body is refused before it is even parsed.
        unsigned = {k: v for k, v in headers.items() if k != "X-Slack-Signature"}
        assert_clean(await h.post(body, unsigned), status=401)
    await h.quiet()
    assert_unchanged(before, await h.snapshot())
    assert errors_logged(caplog.records) == []


async def test_an_oversized_body_is_refused_before_it_is_read(
    hostile: HostileHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = hostile
    before = await h.snapshot()
    fault("malformed body: oversized (1 MiB)")
    huge = command_body("whoami " + "A" * (1 << 20), h)
    assert_clean(await h.post(huge, sign(huge, SIGNING_SECRET)), status=413)
    assert_clean(await h.post(huge, {"Content-Type": FORM_CONTENT_TYPE}), status=413)
    assert_unchanged(before, await h.snapshot())
    assert errors_logged(caplog.records) == []


# ----------------------------------------------------------------------------- unknown but well formed


def _unknown_but_well_formed(h: HostileHarness) -> dict[str, bytes]:
    url = h.fake_slack.response_url(channel_id=CHANNEL)
    return {
        "unknown action_id": block_actions(
            user_id=BOB, channel_id=CHANNEL, message_ts="1.2", action_id="atlas_run", value="x", response_url=url
        ),
        "approve-like action_id": block_actions(
            user_id=BOB, channel_id=CHANNEL, message_ts="1.2", action_id="atlas_approve ", value="x", response_url=url
        ),
        "unknown view callback_id": view_submission(user_id=ALICE, callback_id="atlas_confirm_all", values={}),
        "unknown slash command": slash_command(
            "revoke-jwks", user_id=ALICE, channel_id=CHANNEL, command="/atlas-admin", response_url=url
        ),
        "view_closed": interactive(
            {"type": "view_closed", "user": {"id": ALICE}, "view": {"type": "modal", "callback_id": "atlas_confirm"}}
        ),
        "global shortcut": interactive({"type": "shortcut", "user": {"id": ALICE}, "callback_id": "run_everything"}),
        "block_suggestion nobody asked for": interactive(
            {"type": "block_suggestion", "user": {"id": ALICE}, "action_id": "nope", "block_id": "b", "value": ""}
        ),
    }  # fmt: skip


async def test_unknown_actions_views_and_events_get_a_harmless_ack(
    hostile: HostileHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    before = await h.snapshot()
    for name, body in _unknown_but_well_formed(h).items():
        fault(f"unknown but well-formed: {name}")
        response = await h.post_signed(body)
        assert_clean(response, status=200)
        assert response.content in (b"", b"{}"), (name, response.text)
    events = {
        "unknown event type": {"type": "event_callback", "team_id": "T0APP", "event": {"type": "reaction_added"}},
        "event whose user is an object": {
            "type": "event_callback",
            "event": {"type": "user_change", "user": {"id": BOB}},
        },
        "url_verification": {"type": "url_verification", "challenge": "c0ffee"},
    }
    for name, payload in events.items():
        fault(f"unknown but well-formed: {name}")
        response = await h.post_signed(json.dumps(payload).encode(), content_type=JSON_CONTENT_TYPE)
        assert_clean(response, status=200)
    await h.quiet()
    assert_unchanged(before, await h.snapshot())
    assert await h.state_of(requested) == "pending"
    assert errors_logged(caplog.records) == []


async def test_other_paths_and_methods_do_nothing(hostile: HostileHarness) -> None:
    h = hostile
    body = command_body("whoami", h)
    before = await h.snapshot()
    for path in ("/slack/events/../healthz", "/slack/events?x=1", "/slack/actions", "//slack/events"):
        fault("forged request: another path or method")
        response = await h.http.post(f"{h.url}{path}", content=body, headers={"Content-Type": FORM_CONTENT_TYPE})
        assert_clean(response, status=(401, 404, 405))
    for method in ("GET", "PUT", "DELETE"):
        fault("forged request: another path or method")
        assert_clean(await h.http.request(method, f"{h.url}/slack/events", content=body), status=405)
    assert_unchanged(before, await h.snapshot())

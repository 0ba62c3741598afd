"""The fake Slack Web API and the signed-request builders, checked against the real slack_sdk and Bolt.

Every Web API test goes through a real ``AsyncWebClient`` over loopback HTTP, so encoding details
(JSON vs form vs query string, bearer token, 429 handling) are slack_sdk's, not ours.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import httpx
import pytest
from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.fake_slack import FakeSlack, FakeSlackCall, ManualClock
from tests.slack_requests import (
    BOT_USER_ID,
    SlackClient,
    block_actions,
    block_suggestion,
    external_select_value,
    plain_text_value,
    sign,
    slash_command,
    static_select_value,
    view_submission,
)

TOKEN = "xoxb-test"
SECRET = "test-signing-secret"
REPO_ROOT = Path(__file__).resolve().parent.parent

MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "restart_confirm",
    "private_metadata": '{"request_id": "r-1"}',
    "title": {"type": "plain_text", "text": "Restart cluster"},
    "submit": {"type": "plain_text", "text": "Request"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        }
    ],
}
BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Restart* `prod-1`?"}},
    {
        "type": "actions",
        "block_id": "approval",
        "elements": [{"type": "button", "action_id": "approve", "text": {"type": "plain_text", "text": "Approve"}}],
    },
]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(bot_token=TOKEN, clock=clock)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # One explicit session per test: slack_sdk would otherwise open (and leak) one per call.
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def client(fake: FakeSlack, session: aiohttp.ClientSession) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=fake.api_url, session=session)


# ---------------------------------------------------------------------- server basics


async def test_start_returns_api_url_on_loopback(fake: FakeSlack) -> None:
    assert fake.api_url.startswith("http://127.0.0.1:")
    assert fake.api_url.endswith("/api/")
    assert int(fake.api_url.split(":")[2].split("/")[0]) > 0


async def test_auth_test_identifies_the_bot(fake: FakeSlack, client: AsyncWebClient) -> None:
    response = await client.auth_test()

    assert response["ok"] is True
    assert response["user_id"] == "U0ATLASBOT"
    assert response["bot_id"] == "B0ATLASBOT"
    assert response["team_id"] == "T0APP"
    assert response["team"] == "Atlas Test"
    assert response["url"] == "https://atlas-test.slack.com/"
    assert "chat:write" in response.headers["x-oauth-scopes"]
    [call] = fake.calls
    assert call.method == "auth.test"
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.token == TOKEN


async def test_wrong_token_is_invalid_auth_and_missing_token_is_not_authed(
    fake: FakeSlack, session: aiohttp.ClientSession
) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url, session=session)
    with pytest.raises(SlackApiError) as wrong_info:
        await wrong.chat_postMessage(channel="C0OPS", text="hi")
    assert wrong_info.value.response["error"] == "invalid_auth"

    anonymous = AsyncWebClient(base_url=fake.api_url, session=session)
    with pytest.raises(SlackApiError) as missing_info:
        await anonymous.auth_test()
    assert missing_info.value.response["error"] == "not_authed"

    # Rejected calls are still recorded, and never reach the method (no message was stored).
    assert [c.error for c in fake.calls] == ["invalid_auth", "not_authed"]
    assert fake.messages == {}


async def test_unknown_method_is_reported_like_slack(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.api_call("chat.doesNotExist", json={"x": 1})
    assert info.value.response["error"] == "unknown_method"


# ---------------------------------------------------------------------- chat.*


async def test_post_message_returns_increasing_unique_ts_and_records_decoded_blocks(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    first = await client.chat_postMessage(channel="C0OPS", text="Restart prod-1?", blocks=BLOCKS)
    second = await client.chat_postMessage(channel="C0OPS", text="reply", thread_ts=first["ts"])

    assert first["channel"] == "C0OPS"
    assert first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["blocks"] == BLOCKS
    assert first["message"]["bot_id"] == "B0ATLASBOT"
    assert second["message"]["thread_ts"] == first["ts"]

    [call, reply] = fake.calls_to("chat.postMessage")
    # slack_sdk sends chat.postMessage as JSON; blocks arrive as a list, not a string.
    assert call.headers["content-type"] == "application/json;charset=utf-8"
    assert call.args["blocks"] == BLOCKS
    assert call.args["channel"] == "C0OPS"
    assert reply.args["thread_ts"] == first["ts"]
    assert call.response["ts"] == first["ts"]
    assert call.received_at <= reply.received_at


async def test_blocks_sent_as_json_string_in_a_form_body_are_decoded(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.api_call("chat.postMessage", data={"channel": "C0OPS", "text": "x", "blocks": json.dumps(BLOCKS)})

    [call] = fake.calls
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert call.args["blocks"] == BLOCKS


async def test_post_message_without_content_is_no_text(client: AsyncWebClient) -> None:
    # api_call directly: chat_postMessage itself warns about the missing text before sending.
    with pytest.raises(SlackApiError) as info:
        await client.api_call("chat.postMessage", json={"channel": "C0OPS"})
    assert info.value.response["error"] == "no_text"


async def test_chat_update_changes_a_posted_message_and_rejects_unknown_ts(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C0OPS", text="pending", blocks=BLOCKS)
    new_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Approved by <@U0BOB>"}}]

    updated = await client.chat_update(channel="C0OPS", ts=posted["ts"], text="approved", blocks=new_blocks)

    assert updated["ts"] == posted["ts"]
    assert updated["channel"] == "C0OPS"
    assert updated["message"]["blocks"] == new_blocks
    assert fake.messages[("C0OPS", posted["ts"])]["text"] == "approved"
    assert fake.calls_to("chat.update")[0].args["blocks"] == new_blocks

    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C0OTHER", ts=posted["ts"], text="wrong channel")
    assert info.value.response["error"] == "message_not_found"


async def test_seeded_message_can_be_updated(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_message(channel="C0OPS", ts="1690000000.000001", text="old")

    response = await client.chat_update(channel="C0OPS", ts="1690000000.000001", text="new")

    assert response["message"]["text"] == "new"


async def test_post_ephemeral_returns_message_ts(fake: FakeSlack, client: AsyncWebClient) -> None:
    response = await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="Only you")

    assert response["ok"] is True
    assert response["message_ts"].startswith("1700000000.")
    assert fake.calls_to("chat.postEphemeral")[0].args["user"] == "U0ALICE"


async def test_channel_membership_and_strict_channels(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_channel("C0PRIV", name="secret-ops", is_private=True, is_member=False)
    fake.add_channel("C0OLD", name="old-ops", is_archived=True)

    with pytest.raises(SlackApiError) as not_member:
        await client.chat_postMessage(channel="C0PRIV", text="hi")
    with pytest.raises(SlackApiError) as archived:
        await client.chat_postMessage(channel="C0OLD", text="hi")
    assert not_member.value.response["error"] == "not_in_channel"
    assert archived.value.response["error"] == "is_archived"

    fake.strict_channels = True
    with pytest.raises(SlackApiError) as unknown:
        await client.chat_postMessage(channel="C0NOWHERE", text="hi")
    assert unknown.value.response["error"] == "channel_not_found"


async def test_conversations_info_returns_seeded_channel(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_channel("C0OPS", name="atlas-ops", is_ext_shared=True)

    response = await client.conversations_info(channel="C0OPS")

    channel = response["channel"]
    assert channel["id"] == "C0OPS"
    assert channel["name"] == "atlas-ops"
    assert channel["is_member"] is True
    assert channel["is_ext_shared"] is True
    # conversations.info is a GET with a query string in slack_sdk.
    assert fake.calls[0].args == {"channel": "C0OPS"}


# ---------------------------------------------------------------------- views.* and trigger_id


async def test_views_open_echoes_view_with_generated_id_and_hash(fake: FakeSlack, client: AsyncWebClient) -> None:
    response = await client.views_open(trigger_id=fake.issue_trigger_id(), view=MODAL)

    view = response["view"]
    assert re.fullmatch(r"V0[0-9A-Z]{6,}", view["id"]), view["id"]
    assert re.fullmatch(r"\d{10}\.[0-9a-f]+", view["hash"]), view["hash"]
    assert view["callback_id"] == "restart_confirm"
    assert view["private_metadata"] == MODAL["private_metadata"]
    assert view["blocks"] == MODAL["blocks"]
    assert view["title"] == MODAL["title"]
    assert view["state"] == {"values": {}}
    [call] = fake.calls_to("views.open")
    assert call.headers["content-type"] == "application/json;charset=utf-8"
    assert call.args["view"] == MODAL


async def test_view_passed_as_json_string_is_parsed(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.api_call("views.open", json={"trigger_id": fake.issue_trigger_id(), "view": json.dumps(MODAL)})

    assert fake.calls[0].args["view"] == MODAL


async def test_trigger_id_works_once(fake: FakeSlack, client: AsyncWebClient) -> None:
    trigger_id = fake.issue_trigger_id()
    await client.views_open(trigger_id=trigger_id, view=MODAL)

    with pytest.raises(SlackApiError) as info:
        await client.views_open(trigger_id=trigger_id, view=MODAL)

    assert info.value.response["error"] == "trigger_exchanged"


async def test_trigger_id_expires_after_three_seconds(
    fake: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    fresh = fake.issue_trigger_id()
    stale = fake.issue_trigger_id()
    clock.advance(2.9)
    await client.views_open(trigger_id=fresh, view=MODAL)

    clock.advance(0.2)  # stale is now 3.1 s old
    with pytest.raises(SlackApiError) as info:
        await client.views_open(trigger_id=stale, view=MODAL)

    assert info.value.response["error"] == "expired_trigger_id"


async def test_builder_style_trigger_is_accepted_once_and_unknown_trigger_is_invalid(
    client: AsyncWebClient,
) -> None:
    await client.views_open(trigger_id="trigger-from-a-builder", view=MODAL)
    with pytest.raises(SlackApiError) as reused:
        await client.views_open(trigger_id="trigger-from-a-builder", view=MODAL)
    with pytest.raises(SlackApiError) as unknown:
        await client.views_open(trigger_id="12345.98765.abcdef", view=MODAL)

    assert reused.value.response["error"] == "trigger_exchanged"
    assert unknown.value.response["error"] == "invalid_trigger_id"


async def test_views_update_replaces_view_and_enforces_hash(fake: FakeSlack, client: AsyncWebClient) -> None:
    opened = (await client.views_open(trigger_id=fake.issue_trigger_id(), view=MODAL))["view"]
    filled = {**MODAL, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Impact: 3 nodes"}}]}

    updated = (await client.views_update(view_id=opened["id"], hash=opened["hash"], view=filled))["view"]

    assert updated["id"] == opened["id"]
    assert updated["hash"] != opened["hash"]
    assert updated["blocks"] == filled["blocks"]
    # The first hash is stale now: an update based on it must not overwrite the newer view.
    with pytest.raises(SlackApiError) as conflict:
        await client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)
    assert conflict.value.response["error"] == "hash_conflict"
    with pytest.raises(SlackApiError) as missing:
        await client.views_update(view_id="V0NOPE", view=MODAL)
    assert missing.value.response["error"] == "not_found"


async def test_views_push_needs_a_trigger_and_returns_a_new_view(fake: FakeSlack, client: AsyncWebClient) -> None:
    root = (await client.views_open(trigger_id=fake.issue_trigger_id(), view=MODAL))["view"]

    pushed = (await client.views_push(trigger_id=fake.issue_trigger_id(), view=MODAL))["view"]

    assert pushed["id"] != root["id"]
    assert fake.calls_to("views.push")[0].args["view"]["callback_id"] == "restart_confirm"


async def test_views_publish_keeps_one_home_view_per_user(fake: FakeSlack, client: AsyncWebClient) -> None:
    home = {"type": "home", "blocks": BLOCKS[:1]}

    first = (await client.views_publish(user_id="U0ALICE", view=home))["view"]
    second = (await client.views_publish(user_id="U0ALICE", view=home))["view"]

    assert first["type"] == "home"
    assert second["id"] == first["id"]
    assert second["hash"] != first["hash"]
    assert fake.calls_to("views.publish")[1].args["user_id"] == "U0ALICE"


# ---------------------------------------------------------------------- directory


async def test_usergroups_list_includes_users_only_when_asked(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_usergroup(id="S0APPROVERS", handle="atlas-approvers", users=["U0ALICE", "U0BOB"])
    fake.add_usergroup(id="S0OLD", handle="old", users=["U0EVE"], disabled=True)

    with_users = await client.usergroups_list(include_users=True)
    without_users = await client.usergroups_list()

    [group] = with_users["usergroups"]
    assert group["id"] == "S0APPROVERS"
    assert group["handle"] == "atlas-approvers"
    assert group["users"] == ["U0ALICE", "U0BOB"]
    assert group["user_count"] == 2
    assert "users" not in without_users["usergroups"][0]
    # slack_sdk turns include_users=True into the query parameter "1".
    assert fake.calls[0].args["include_users"] == "1"


async def test_usergroups_users_list_per_group(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_usergroup(id="S0APPROVERS", handle="atlas-approvers", users=["U0ALICE", "U0BOB"])
    fake.add_usergroup(id="S0ONCALL", handle="atlas-oncall", users=["U0CAROL"])

    approvers = await client.usergroups_users_list(usergroup="S0APPROVERS")
    oncall = await client.usergroups_users_list(usergroup="S0ONCALL")
    with pytest.raises(SlackApiError) as info:
        await client.usergroups_users_list(usergroup="S0NOPE")

    assert approvers["users"] == ["U0ALICE", "U0BOB"]
    assert oncall["users"] == ["U0CAROL"]
    assert info.value.response["error"] == "no_such_subteam"


async def test_users_info_returns_team_id_for_shared_channel_users(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_user("U0ALICE", name="alice")
    fake.add_user("U0EXT", team_id="T0PARTNER", name="partner")

    alice = (await client.users_info(user="U0ALICE"))["user"]
    partner = (await client.users_info(user="U0EXT"))["user"]
    with pytest.raises(SlackApiError) as info:
        await client.users_info(user="U0GHOST")

    assert alice["team_id"] == "T0APP"
    assert alice["name"] == "alice"
    assert alice["profile"]["display_name"] == "alice"
    assert partner["team_id"] == "T0PARTNER"
    assert info.value.response["error"] == "user_not_found"


# ---------------------------------------------------------------------- fault injection


async def test_fail_next_raises_slack_api_error_once(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next("chat.postMessage", error="channel_not_found")

    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C0OPS", text="hi")
    ok = await client.chat_postMessage(channel="C0OPS", text="hi again")

    assert info.value.response["error"] == "channel_not_found"
    assert info.value.response.status_code == 200
    assert ok["ok"] is True
    assert [c.error for c in fake.calls_to("chat.postMessage")] == ["channel_not_found", None]


async def test_fail_next_only_affects_its_method(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next("chat.update", error="cant_update_message", times=2)

    posted = await client.chat_postMessage(channel="C0OPS", text="hi")

    assert posted["ok"] is True
    for _ in range(2):
        with pytest.raises(SlackApiError):
            await client.chat_update(channel="C0OPS", ts=posted["ts"], text="x")
    assert (await client.chat_update(channel="C0OPS", ts=posted["ts"], text="x"))["ok"] is True


async def test_rate_limit_without_retry_handler_surfaces_429(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.rate_limit_next("chat.update", retry_after=7)
    posted = await client.chat_postMessage(channel="C0OPS", text="hi")

    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C0OPS", ts=posted["ts"], text="x")

    assert info.value.response.status_code == 429
    assert info.value.response["error"] == "ratelimited"
    assert info.value.response.headers["Retry-After"] == "7"


async def test_rate_limit_is_retried_by_rate_limit_handler(fake: FakeSlack, session: aiohttp.ClientSession) -> None:
    client = AsyncWebClient(
        token=TOKEN,
        base_url=fake.api_url,
        session=session,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    posted = await client.chat_postMessage(channel="C0OPS", text="pending")
    fake.rate_limit_next("chat.update", retry_after=1)

    started = time.monotonic()
    response = await client.chat_update(channel="C0OPS", ts=posted["ts"], text="approved")
    elapsed = time.monotonic() - started

    assert response["ok"] is True
    first, retry = fake.calls_to("chat.update")
    assert (first.status, first.error) == (429, "ratelimited")
    assert retry.status == 200
    # The handler honoured Retry-After: 1 before retrying.
    assert retry.received_at - first.received_at >= 1.0
    assert elapsed >= 1.0


async def test_delay_holds_the_response(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.delay("views.open", 0.3)
    started = time.monotonic()
    await client.views_open(trigger_id=fake.issue_trigger_id(), view=MODAL)
    delayed = time.monotonic() - started

    fake.delay("views.open", 0)
    started = time.monotonic()
    await client.views_open(trigger_id=fake.issue_trigger_id(), view=MODAL)
    undelayed = time.monotonic() - started

    assert delayed >= 0.3
    assert undelayed < 0.3


# ---------------------------------------------------------------------- wait_for / reset


async def test_wait_for_wakes_on_the_matching_call(fake: FakeSlack, client: AsyncWebClient) -> None:
    async def bot_work() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel="C0OPS", text="queued")
        await client.chat_postMessage(channel="C0OPS", text="approved")

    task = asyncio.create_task(bot_work())
    [call] = await fake.wait_for("chat.postMessage", timeout=2, predicate=lambda c: c.args.get("text") == "approved")
    await task

    assert call.args["text"] == "approved"
    assert len(fake.calls_to("chat.postMessage")) == 2


async def test_wait_for_counts_calls_already_made(fake: FakeSlack, client: AsyncWebClient) -> None:
    for text in ("one", "two"):
        await client.chat_postMessage(channel="C0OPS", text=text)

    calls = await fake.wait_for("chat.postMessage", count=2, timeout=0.1)

    assert [c.args["text"] for c in calls] == ["one", "two"]


async def test_wait_for_times_out_with_what_it_saw(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.auth_test()

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"chat\.update.*auth\.test\(ok\)"):
        await fake.wait_for("chat.update", timeout=0.1)

    assert time.monotonic() - started < 1.0


async def test_reset_clears_traffic_but_keeps_directory(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_user("U0ALICE")
    fake.fail_next("auth.test", error="token_revoked")
    await client.chat_postMessage(channel="C0OPS", text="x")

    fake.reset()

    assert fake.calls == []
    assert fake.messages == {}
    assert (await client.auth_test())["ok"] is True  # the queued fault is gone
    assert (await client.users_info(user="U0ALICE"))["ok"] is True
    fake.reset(directory=True)
    assert fake.users == {}


# ---------------------------------------------------------------------- response_url


async def test_response_url_records_posts_and_allows_five(fake: FakeSlack, session: aiohttp.ClientSession) -> None:
    url = fake.response_url(channel_id="C0OPS")
    webhook = AsyncWebhookClient(url, session=session)

    first = await webhook.send(text="Working on it", response_type="ephemeral")
    for _ in range(4):
        await webhook.send(text="more")
    sixth = await webhook.send(text="too many")

    assert url.startswith(f"{fake.base_url}/response-url/")
    assert first.status_code == 200
    assert sixth.status_code == 404
    assert fake.response_url_posts[0].body == {"text": "Working on it", "response_type": "ephemeral"}
    assert [p.status for p in fake.response_url_posts] == [200] * 5 + [404]


# ---------------------------------------------------------------------- signing


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def test_sign_is_accepted_by_slack_sdk_signature_verifier() -> None:
    body = slash_command("restart prod-1", user_id="U0ALICE", channel_id="C0OPS")
    timestamp = 1_700_000_000
    verifier = SignatureVerifier(SECRET, clock=_FixedClock(timestamp + 10))

    headers = sign(body, SECRET, timestamp=timestamp)

    assert headers["X-Slack-Request-Timestamp"] == "1700000000"
    assert headers["X-Slack-Signature"].startswith("v0=")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body.replace(b"prod-1", b"prod-2"), headers)
    assert not SignatureVerifier("other-secret", clock=_FixedClock(timestamp)).is_valid_request(body, headers)
    # Outside Slack's 5-minute window the same signature is refused.
    assert not SignatureVerifier(SECRET, clock=_FixedClock(timestamp + 301)).is_valid_request(body, headers)


def test_sign_matches_slack_sdk_generate_signature() -> None:
    body = b"payload=%7B%7D"
    expected = SignatureVerifier(SECRET).generate_signature(timestamp="1700000000", body=body)

    assert sign(body, SECRET, timestamp=1_700_000_000)["X-Slack-Signature"] == expected


# ---------------------------------------------------------------------- builders


def test_slash_command_has_every_documented_field() -> None:
    body = slash_command(
        "restart prod-1 --force",
        user_id="U0ALICE",
        channel_id="C0OPS",
        trigger_id="trigger-1",
        response_url="https://hooks.slack.com/commands/T0APP/1/x",
        user_name="alice",
        channel_name="atlas-ops",
        enterprise_id="E0GRID",
    )

    fields = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    assert list(fields) == [
        "token",
        "team_id",
        "team_domain",
        "enterprise_id",
        "enterprise_name",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    assert fields["text"] == "restart prod-1 --force"
    assert fields["command"] == "/atlas"
    assert fields["team_id"] == "T0APP"
    assert fields["api_app_id"] == "A0ATLAS"
    assert fields["is_enterprise_install"] == "false"
    assert "enterprise_id" not in parse_qs(slash_command("x", user_id="U1", channel_id="C1").decode())


def _payload(body: bytes) -> dict[str, Any]:
    [raw] = parse_qs(body.decode())["payload"]
    payload: dict[str, Any] = json.loads(raw)
    return payload


def test_block_actions_payload_shape() -> None:
    payload = _payload(
        block_actions(
            user_id="U0BOB",
            team_id="T0APP",
            user_team_id="T0PARTNER",
            channel_id="C0OPS",
            message_ts="1700000000.000100",
            action_id="approve",
            value="req-1",
            block_id="approval",
            style="primary",
        )
    )

    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": "U0BOB", "username": "u0bob", "name": "u0bob", "team_id": "T0PARTNER"}
    assert payload["team"] == {"id": "T0APP", "domain": "atlas-test"}
    assert payload["container"] == {
        "type": "message",
        "message_ts": "1700000000.000100",
        "channel_id": "C0OPS",
        "is_ephemeral": False,
    }
    assert payload["channel"]["id"] == "C0OPS"
    assert payload["message"]["ts"] == "1700000000.000100"
    assert payload["message"]["user"] == BOT_USER_ID
    assert payload["message"]["blocks"][0]["elements"][0]["action_id"] == "approve"
    [action] = payload["actions"]
    assert action["action_id"] == "approve"
    assert action["block_id"] == "approval"
    assert action["value"] == "req-1"
    assert action["type"] == "button"
    assert action["style"] == "primary"
    assert action["text"]["type"] == "plain_text"
    assert float(action["action_ts"]) > 0
    assert payload["trigger_id"].startswith("trigger-")
    assert payload["state"] == {"values": {}}
    assert payload["response_url"].startswith("https://hooks.slack.com/actions/T0APP/")


def test_view_submission_payload_shape_and_value_helpers() -> None:
    values = {
        "reason": {"value": plain_text_value("disk full")},
        "cluster": {"pick": external_select_value("prod-1", "prod-1 (AWS)")},
        "tier": {"pick": static_select_value("M30")},
        "note": {"value": plain_text_value(None)},
    }

    payload = _payload(
        view_submission(
            user_id="U0ALICE",
            callback_id="restart_confirm",
            private_metadata='{"request_id":"r-1"}',
            values=values,
        )
    )

    view = payload["view"]
    assert payload["type"] == "view_submission"
    assert payload["user"]["team_id"] == "T0APP"
    assert payload["response_urls"] == []
    assert view["type"] == "modal"
    assert view["callback_id"] == "restart_confirm"
    assert view["private_metadata"] == '{"request_id":"r-1"}'
    assert view["state"]["values"]["reason"]["value"] == {"type": "plain_text_input", "value": "disk full"}
    assert view["state"]["values"]["cluster"]["pick"]["selected_option"] == {
        "text": {"type": "plain_text", "text": "prod-1 (AWS)", "emoji": True},
        "value": "prod-1",
    }
    assert view["state"]["values"]["tier"]["pick"]["selected_option"]["value"] == "M30"
    assert view["state"]["values"]["note"]["value"]["value"] is None
    assert [b["block_id"] for b in view["blocks"]] == ["reason", "cluster", "tier", "note"]
    assert view["blocks"][1]["element"] == {"type": "external_select", "action_id": "pick"}
    assert view["hash"]
    assert view["id"].startswith("V")


def test_block_suggestion_payload_shape() -> None:
    payload = _payload(
        block_suggestion(user_id="U0ALICE", action_id="cluster", block_id="target", value="pro", view_id="V0X")
    )

    assert payload["type"] == "block_suggestion"
    assert payload["action_id"] == "cluster"
    assert payload["block_id"] == "target"
    assert payload["value"] == "pro"
    assert payload["container"] == {"type": "view", "view_id": "V0X"}
    assert payload["view"]["id"] == "V0X"
    assert payload["view"]["blocks"][0]["element"]["type"] == "external_select"


# ---------------------------------------------------------------------- builders through Bolt


@pytest.fixture
def bolt_app(client: AsyncWebClient) -> AsyncApp:
    # process_before_response makes dispatch return only after the listener finished.
    return AsyncApp(client=client, signing_secret=SECRET, process_before_response=True)


def _bolt_headers(headers: Mapping[str, str]) -> dict[str, str | Sequence[str]]:
    # AsyncBoltRequest wants multi-valued headers; widen our plain str -> str mapping.
    return {name: value for name, value in headers.items()}


async def _dispatch(app: AsyncApp, body: bytes) -> tuple[int, str]:
    request = AsyncBoltRequest(body=body.decode(), headers=_bolt_headers(sign(body, SECRET)))
    response = await app.async_dispatch(request)
    return response.status, response.body


async def test_bolt_routes_every_builder_to_its_listener(fake: FakeSlack, bolt_app: AsyncApp) -> None:
    seen: dict[str, Any] = {}

    @bolt_app.command("/atlas")
    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        await ack()
        seen["command"] = command

    @bolt_app.action("approve")
    async def on_approve(ack: Any, body: dict[str, Any], context: Any) -> None:
        await ack()
        seen["action"] = body["actions"][0]["value"]
        seen["context_user"] = context.user_id

    @bolt_app.view("restart_confirm")
    async def on_submit(ack: Any, view: dict[str, Any]) -> None:
        await ack(response_action="errors", errors={"reason": "Too short"})
        seen["reason"] = view["state"]["values"]["reason"]["value"]["value"]

    @bolt_app.options("cluster")
    async def on_options(ack: Any, payload: dict[str, Any]) -> None:
        seen["typed"] = payload["value"]
        await ack(options=[{"text": {"type": "plain_text", "text": "prod-1"}, "value": "prod-1"}])

    command = await _dispatch(bolt_app, slash_command("restart prod-1", user_id="U0ALICE", channel_id="C0OPS"))
    click = await _dispatch(
        bolt_app,
        block_actions(user_id="U0BOB", channel_id="C0OPS", message_ts="1.2", action_id="approve", value="req-1"),
    )
    submit = await _dispatch(
        bolt_app,
        view_submission(
            user_id="U0ALICE",
            callback_id="restart_confirm",
            values={"reason": {"value": plain_text_value("x")}},
        ),
    )
    suggest = await _dispatch(
        bolt_app, block_suggestion(user_id="U0ALICE", action_id="cluster", block_id="target", value="pro")
    )

    assert command[0] == click[0] == submit[0] == suggest[0] == 200
    assert seen["command"]["text"] == "restart prod-1"
    assert seen["command"]["user_id"] == "U0ALICE"
    assert seen["action"] == "req-1"
    assert seen["context_user"] == "U0BOB"
    assert seen["reason"] == "x"
    assert json.loads(submit[1]) == {"response_action": "errors", "errors": {"reason": "Too short"}}
    assert seen["typed"] == "pro"
    assert json.loads(suggest[1])["options"][0]["value"] == "prod-1"
    # Bolt authorised through the fake's auth.test, proving the identities line up.
    assert fake.calls_to("auth.test")


async def test_bolt_rejects_a_tampered_body(bolt_app: AsyncApp) -> None:
    body = slash_command("restart prod-1", user_id="U0ALICE", channel_id="C0OPS")
    headers = sign(body, SECRET)
    tampered = body.replace(b"prod-1", b"prod-9")

    response = await bolt_app.async_dispatch(AsyncBoltRequest(body=tampered.decode(), headers=_bolt_headers(headers)))

    assert response.status == 401


# ---------------------------------------------------------------------- SlackClient over real HTTP


@pytest.fixture
async def bolt_server(bolt_app: AsyncApp) -> AsyncIterator[str]:
    runner = web.AppRunner(bolt_app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/slack/events"
    await runner.cleanup()


async def test_slack_client_drives_a_served_bolt_app_end_to_end(
    fake: FakeSlack, bolt_app: AsyncApp, bolt_server: str
) -> None:
    @bolt_app.command("/atlas")
    async def open_modal(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    async with httpx.AsyncClient() as http:
        slack = SlackClient(http, signing_secret=SECRET, url=bolt_server, user_id="U0ALICE", channel_id="C0OPS")
        ok = await slack.command("restart prod-1", trigger_id=fake.issue_trigger_id())
        forged = await slack.post_raw(b"command=%2Fatlas", headers=sign(b"command=%2Fatlas", "wrong-secret"))

    assert ok.status_code == 200
    assert forged.status_code == 401
    [call] = await fake.wait_for("views.open", timeout=2)
    assert call.ok
    assert call.args["view"]["callback_id"] == "restart_confirm"


# ---------------------------------------------------------------------- control API


async def test_control_api_in_process(fake: FakeSlack, client: AsyncWebClient) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        seeded_group = await http.post(
            "/_fake/usergroups", json={"id": "S0APPROVERS", "handle": "atlas-approvers", "users": ["U0BOB"]}
        )
        seeded_user = await http.post("/_fake/users", json={"id": "U0BOB", "team_id": "T0APP", "name": "bob"})
        failed = await http.post("/_fake/fail", json={"method": "chat.postMessage", "error": "not_in_channel"})
        limited = await http.post("/_fake/fail", json={"method": "chat.update", "kind": "ratelimit", "retry_after": 3})
        trigger = (await http.post("/_fake/triggers")).json()["trigger_id"]

        assert seeded_group.status_code == seeded_user.status_code == failed.status_code == 200
        assert limited.json() == {"ok": True}
        assert (await client.usergroups_users_list(usergroup="S0APPROVERS"))["users"] == ["U0BOB"]
        assert (await client.users_info(user="U0BOB"))["user"]["name"] == "bob"
        with pytest.raises(SlackApiError) as info:
            await client.chat_postMessage(channel="C0OPS", text="hi")
        assert info.value.response["error"] == "not_in_channel"
        await client.views_open(trigger_id=trigger, view=MODAL)

        listed = (await http.get("/_fake/calls", params={"method": "chat.postMessage"})).json()["calls"]
        everything = (await http.get("/_fake/calls")).json()["calls"]
        reset = await http.post("/_fake/reset")
        after_reset = (await http.get("/_fake/calls")).json()["calls"]

    assert [c["response"]["error"] for c in listed] == ["not_in_channel"]
    assert listed[0]["args"] == {"channel": "C0OPS", "text": "hi"}
    assert [c["method"] for c in everything] == [
        "usergroups.users.list",
        "users.info",
        "chat.postMessage",
        "views.open",
    ]
    assert everything[3]["args"]["view"]["callback_id"] == "restart_confirm"
    assert reset.json() == {"ok": True}
    assert after_reset == []
    assert fake.usergroups["S0APPROVERS"]["users"] == ["U0BOB"]  # directory survives a reset


@pytest.fixture
def fake_process() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.fake_slack", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("FAKE_SLACK_READY "), line
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.slow
async def test_fake_runs_as_its_own_process(fake_process: str, session: aiohttp.ClientSession) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=fake_process, session=session)
    root = fake_process.removesuffix("/api/")

    async with httpx.AsyncClient(base_url=root) as http:
        await http.post("/_fake/fail", json={"method": "chat.postMessage", "error": "channel_not_found"})
        with pytest.raises(SlackApiError) as info:
            await client.chat_postMessage(channel="C0OPS", text="hi")
        posted = await client.chat_postMessage(channel="C0OPS", text="hi")
        calls = (await http.get("/_fake/calls", params={"method": "chat.postMessage"})).json()["calls"]

    assert info.value.response["error"] == "channel_not_found"
    assert [c["response"].get("ts") for c in calls] == [None, posted["ts"]]


@pytest.mark.slow
async def test_fake_handles_over_a_thousand_calls_per_second(fake: FakeSlack, session: aiohttp.ClientSession) -> None:
    # Client and server share this one core and loop, so this bounds the fake's cost from above.
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json;charset=utf-8"}
    body = b'{"channel": "C0OPS", "text": "load"}'
    url = f"{fake.api_url}chat.postMessage"
    total, concurrency = 2000, 20

    async def worker(n: int) -> None:
        for _ in range(n):
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 200
                await response.read()

    started = time.perf_counter()
    await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))
    rate = total / (time.perf_counter() - started)

    assert len(fake.calls) == total
    assert all(isinstance(c, FakeSlackCall) and c.ok for c in fake.calls)
    assert rate > 1000, f"{rate:.0f} calls/s"


async def test_a_failing_predicate_fails_the_waiter_not_the_bot(fake: FakeSlack, client: AsyncWebClient) -> None:
    def broken(call: FakeSlackCall) -> bool:
        raise KeyError("no such arg")

    waiting = asyncio.create_task(fake.wait_for("chat.postMessage", timeout=2, predicate=broken))
    await asyncio.sleep(0)  # let the waiter register before the call arrives
    posted = await client.chat_postMessage(channel="C0OPS", text="hi")

    assert posted["ok"] is True
    with pytest.raises(KeyError, match="no such arg"):
        await waiting

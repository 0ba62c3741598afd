"""Clicks and submissions crafted by people who may not act, or on requests that can no longer move.

Every click here is signed exactly as Slack signs it: the attacker is a member of the workspace (or
of a Slack Connect partner) using the real buttons with a tampered value, another channel, a stale
request or a forged modal. Nothing may change: not the request's state, not its approvals, not
Atlas; the clicker is told why, and the refusal is in the audit trail.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from bot.requests import RequestState
from bot.store import action_requests
from tests.hostile.harness import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    DAVE,
    MALLORY,
    OTHER_CHANNEL,
    STRANGER,
    TEAM_ID,
    HostileHarness,
    Requested,
    hostile_bot,
    seed_oidc_idp,
)
from tests.hostile.tally import fault
from tests.slack_requests import plain_text_value

FOREIGN_TEAM = "T0PARTNER"
UNVERIFIED = "This form could not be verified. Close it and run the command again."


async def unchanged(h: HostileHarness, requested: Requested, *, state: str = "pending") -> None:
    await h.quiet()
    request = await h.bot.store.get(requested.request_id)
    assert request.state.value == state
    if state == "pending":
        assert request.approvers == ()
    assert h.atlas_writes() == []


async def test_clicks_by_people_who_may_not_approve_change_nothing(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    attempts: list[tuple[str, dict[str, Any], str]] = [
        ("a member with no role", {"user": STRANGER}, "roles approver"),
        ("on-call but not an approver", {"user": MALLORY}, "roles approver"),
        ("an approver, from a Slack Connect partner", {"user": BOB, "team": FOREIGN_TEAM}, "other organisations"),
        ("an approver, on an Enterprise Grid org id", {"user": BOB, "team": "E0OTHERORG"}, "other organisations"),
        ("an approver, clicking from another channel", {"user": BOB, "channel": OTHER_CHANNEL}, "another channel"),
        ("an approver, on a request id that does not exist", {"user": BOB, "value": "0" * 32}, "no longer exists"),
        ("an approver, on a request id with SQL in it", {"user": BOB, "value": "x' OR '1'='1"}, "no longer exists"),
        ("a rejection by a non-approver", {"user": MALLORY, "action": "atlas_reject"}, "roles approver"),
    ]
    for name, crafted, answer in attempts:
        fault(f"authorization: click by {name}")
        response = await h.click(requested, **crafted)
        assert response.status_code == 200, name
        await h.wait_ephemeral(answer)
    await unchanged(h, requested)
    denied = [e for e in await h.audit(requested) if e.endswith("_denied")]
    assert len(denied) == 6  # the two unknown ids have no request to audit against


async def test_the_requester_never_counts_as_an_approver(database_url: str) -> None:
    policy = {
        "roles": {"oncall": [CAROL], "approver": [CAROL, BOB, DAVE]},
        "actions": {"revoke-jwks": {"request": ["oncall"], "approve": ["approver"], "approvals": 2}},
    }
    async with hostile_bot(database_url, policy_data=policy) as h:
        fed, idp = seed_oidc_idp(h)
        requested = await h.request(f"revoke-jwks {fed} {idp}", user=CAROL)
        fault("authorization: requester approving their own request")
        await h.click(requested, user=CAROL)
        await h.wait_ephemeral("your own request")
        await h.click(requested, user=BOB)
        await h.click(requested, user=CAROL)  # after someone else: still not counted
        await h.click(requested, user=BOB)  # the same person twice counts once
        await h.quiet()
        request = await h.bot.store.get(requested.request_id)
        assert request.state.value == "pending" and request.approvers == (BOB,)
        await h.click(requested, user=DAVE)
        await h.wait_thread(requested, "Done")
        assert (await h.bot.store.get(requested.request_id)).approvers == (BOB, DAVE)


async def test_requests_that_can_no_longer_move_stay_where_they_are(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    rejected = await h.request(f"revoke-jwks {fed} {idp}")
    await h.click(rejected, user=BOB, action="atlas_reject")
    await h.wait_thread(rejected, "rejected")
    executed = await h.request(f"revoke-jwks {fed} {idp}")
    await h.click(executed, user=BOB)
    await h.wait_thread(executed, "Done")
    expired = await h.request(f"revoke-jwks {fed} {idp}")
    async with h.bot.engine.begin() as conn:  # the approval window closed; no sweep has run yet
        await conn.execute(
            update(action_requests)
            .where(action_requests.c.id == expired.request_id)
            .values(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
        )
    await h.quiet()
    writes = len(h.atlas_writes())
    clicks = ((DAVE, "atlas_approve"), (DAVE, "atlas_reject"), (ALICE, "atlas_reject"))
    # An expired request that no sweep has marked yet may still be ended by hand (that never runs
    # anything), but never approved.
    cases = ((rejected, "rejected", clicks), (executed, "succeeded", clicks), (expired, "pending", clicks[:1]))
    for requested, state, tries in cases:
        for user, action in tries:
            fault(f"authorization: {action} on a {'expired' if requested is expired else state} request")
            await h.click(requested, user=user, action=action)
        await h.quiet()
        assert (await h.bot.store.get(requested.request_id)).state.value == state
    assert "Nothing was done" in " ".join(h.ephemerals())
    assert len(h.atlas_writes()) == writes == 1
    await h.bot.sweeper.sweep()
    assert await h.state_of(expired) == "expired"


async def test_approvers_are_read_again_at_click_time(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    fault("authorization: approver removed from the user group after the request")
    h.fake_slack.add_usergroup(id="S0APPROVERS", handle="atlas-approvers", users=[DAVE])
    await h.click(requested, user=BOB)
    await h.wait_ephemeral("roles approver")
    await unchanged(h, requested)
    fault("authorization: user added to the approver group after the request")
    h.fake_slack.add_usergroup(id="S0APPROVERS", handle="atlas-approvers", users=[DAVE, STRANGER])
    await h.click(requested, user=STRANGER)
    await h.wait_thread(requested, "Done")
    assert (await h.bot.store.get(requested.request_id)).approvers == (STRANGER,)


async def test_slack_connect_users_can_never_request_or_approve(database_url: str) -> None:
    # The policy names them by user id; their team still decides.
    policy = {
        "roles": {"oncall": [ALICE, "U0GUEST"], "approver": [BOB, "U0GUEST"]},
        "actions": {"revoke-jwks": {"request": ["oncall"], "approve": ["approver"]}},
    }
    async with hostile_bot(database_url, policy_data=policy) as h:
        fed, idp = seed_oidc_idp(h)
        fault("authorization: Slack Connect user requesting")
        await h.command(f"revoke-jwks {fed} {idp}", user="U0GUEST", team=FOREIGN_TEAM)
        await h.wait_ephemeral("other organisations")
        assert h.fake_slack.calls_to("views.open") == []
        # A modal opened by the same id inside the app's team cannot be submitted from the partner team.
        view = await h.open_modal(f"revoke-jwks {fed} {idp}", user="U0GUEST")
        fault("authorization: Slack Connect user submitting")
        response = await h.submit(view, user="U0GUEST", team=FOREIGN_TEAM)
        assert response.status_code == 200
        await h.wait_ephemeral("other organisations")
        assert h.approval_posts() == []
        requested = await h.request(f"revoke-jwks {fed} {idp}")
        fault("authorization: Slack Connect user approving")
        await h.click(requested, user="U0GUEST", team=FOREIGN_TEAM)
        await unchanged(h, requested)
        await h.command("whoami", user="U0GUEST", team=FOREIGN_TEAM)
        whoami = await h.wait_ephemeral("another organisation")
        assert "May request: nothing" in whoami and "May approve: nothing" in whoami


def _tampered_metadata(genuine: str) -> dict[str, str]:
    mac, _, payload = genuine.partition(".")
    meta = json.loads(payload)
    flipped = ("0" if mac[0] != "0" else "1") + mac[1:]

    def resign_free(**changes: Any) -> str:
        return f"{mac}.{json.dumps({**meta, **changes}, separators=(',', ':'))}"

    return {
        "another action, old signature": resign_free(a="delete-federation"),
        "another target, old signature": resign_free(t={**meta["t"], "identity_provider_id": "f" * 24}),
        "another channel, old signature": resign_free(c=OTHER_CHANNEL),
        "another requester, old signature": resign_free(u=MALLORY),
        "another response_url, old signature": resign_free(r="https://evil.example/hook"),
        "one bit of the signature flipped": f"{flipped}.{payload}",
        "no signature": payload,
        "empty": "",
        "signature only": mac,
        "base64 of the payload": base64.b64encode(payload.encode()).decode(),
        "3,000 characters": "a" * 3000,
        "JSON injection in the payload": f'{mac}.{payload[:-1]},"a":"delete-federation"}}',
    }


async def test_tampered_private_metadata_is_refused_and_stores_nothing(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    view = await h.open_modal(f"revoke-jwks {fed} {idp}")
    for name, metadata in _tampered_metadata(view["private_metadata"]).items():
        fault(f"authorization: private_metadata {name}")
        response = await h.submit(view, private_metadata=metadata)
        assert response.status_code == 200, name
        assert response.json()["errors"] == {"confirm": UNVERIFIED}
    fault("authorization: someone else's genuine form")
    stolen = await h.submit(view, user=BOB)
    assert "belongs to someone else" in stolen.json()["errors"]["confirm"]
    await h.quiet()
    assert (await h.row_counts())["action_requests"] == 0
    assert h.approval_posts() == [] and h.atlas_writes() == []


async def test_rate_limits_per_user_and_per_channel_say_so(database_url: str) -> None:
    policy = {
        "roles": {"oncall": [ALICE, CAROL, MALLORY], "approver": [BOB]},
        "actions": {"revoke-jwks": {"request": ["oncall"], "approve": ["approver"]}},
        "rate_limits": {"per_user_per_hour": 2, "per_channel_per_hour": 3},
    }
    async with hostile_bot(database_url, policy_data=policy) as h:
        fed, idp = seed_oidc_idp(h)
        await h.request(f"revoke-jwks {fed} {idp}")
        # A second modal opened before the limit was hit is refused when it is submitted.
        late = await h.open_modal(f"revoke-jwks {fed} {idp}")
        await h.request(f"revoke-jwks {fed} {idp}")
        fault("rate limit: per user, at the command")
        await h.command(f"revoke-jwks {fed} {idp}")
        await h.wait_ephemeral("You have made 2 requests in the last hour")
        fault("rate limit: per user, at submission")
        response = await h.submit(late)
        assert response.status_code == 200
        await h.quiet()
        assert sum("You have made 2 requests" in e for e in h.ephemerals()) == 2
        await h.request(f"revoke-jwks {fed} {idp}", user=CAROL)
        fault("rate limit: per channel")
        await h.command(f"revoke-jwks {fed} {idp}", user=MALLORY)
        await h.wait_ephemeral("This channel has had 3 requests in the last hour")
        # Another channel is not limited by this one.
        await h.request(f"revoke-jwks {fed} {idp}", user=MALLORY, channel=OTHER_CHANNEL)
        await h.quiet()
        assert (await h.row_counts())["action_requests"] == 4
        denied = [e for e in await h.bot.store.list_audit() if e.event == "request_denied"]
        assert len(denied) == 2  # recorded at the command; a refused submission is only counted
        assert all(e.channel_id in (CHANNEL, OTHER_CHANNEL) for e in denied)


async def test_a_submission_needs_a_genuine_user_and_team(hostile: HostileHarness) -> None:
    """The modal's values cannot name another requester or channel: only the signed metadata can."""
    h = hostile
    fed, idp = seed_oidc_idp(h)
    view = await h.open_modal(f"revoke-jwks {fed} {idp}")
    fault("authorization: extra fields in a submission")
    values = {
        "confirm": {"value": plain_text_value(idp)},
        "reason": {"value": plain_text_value("legit reason")},
        "channel": {"value": plain_text_value(OTHER_CHANNEL)},
        "requester": {"value": plain_text_value(BOB)},
    }
    response = await h.slack.submit(
        user_id=ALICE,
        team_id=TEAM_ID,
        callback_id=view["callback_id"],
        private_metadata=view["private_metadata"],
        values=values,
    )
    assert response.status_code == 200
    await h.fake_slack.wait_for("chat.postMessage")
    await h.quiet()
    request = (await h.bot.store.list_requests(states=[RequestState.PENDING]))[0]
    assert (request.channel_id, request.requester_id) == (CHANNEL, ALICE)

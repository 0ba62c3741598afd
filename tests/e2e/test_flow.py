"""The /atlas flow end to end, driven exactly as Slack drives it.

Each test starts the real HTTP app on loopback with fake Slack and fake Atlas servers, sends
signed slash commands, view submissions and button clicks, and checks what the bot sent to
Slack, what it called in Atlas and what it stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text, update

from bot.db import create_engine
from bot.requests import RequestState
from bot.store import action_requests
from tests.e2e.harness import ALICE, BOB, CAROL, CHANNEL, DAVE, MALLORY, OTHER_CHANNEL, Harness, Requested
from tests.replicas.cluster import wait_until

pytestmark = pytest.mark.e2e


def seed_oidc_idp(h: Harness, *, orgs: int = 1) -> tuple[str, str]:
    org_ids = [h.fake_atlas.add_org(f"Org {i}")["id"] for i in range(orgs)]
    federation = h.fake_atlas.add_federation(org_ids)
    idp = h.fake_atlas.add_idp(federation["id"], protocol="OIDC", org_ids=org_ids[:1])
    return federation["id"], idp["id"]


async def table_dump(h: Harness) -> str:
    """Every row the bot stored, read over a connection of the test's own."""
    engine = create_engine(h.database_url)
    try:
        async with engine.connect() as conn:
            rows = []
            for table in ("action_requests", "approvals", "audit_events"):
                rows += [repr(tuple(r)) for r in (await conn.execute(text(f"SELECT * FROM {table}"))).all()]
    finally:
        await engine.dispose()
    return "\n".join(rows)


async def stored_state(h: Harness, request_id: str) -> RequestState:
    return (await h.stored(request_id)).state


# ----------------------------------------------------------------------------- five actions


async def run_to_completion(
    h: Harness, command: str, *, approvers: tuple[str, ...] = (BOB,), secret: str | None = None
) -> Any:
    requested = await h.request(command, secret=secret)
    for approver in approvers:
        response = await h.click(requested, user=approver)
        assert response.status_code == 200
    await h.wait_thread(requested, "Done")
    await h.settle()
    return requested


async def test_revoke_jwks_end_to_end(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await run_to_completion(h, f"revoke-jwks {fed} {idp}")
    assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 1
    jwks_calls = [r for r in h.fake_atlas.requests if r.path.endswith("/jwks")]
    assert jwks_calls[0].method == "DELETE"
    assert jwks_calls[0].header("accept") == "application/vnd.atlas.2023-11-15+json"
    assert requested.identifier == idp
    final = h.final_update(requested)
    assert not [b for b in final["blocks"] if b["type"] == "actions"], "buttons must be removed"
    assert "Done" in json.dumps(final["blocks"])
    assert await stored_state(h, requested.request_id) is RequestState.SUCCEEDED
    posts = h.thread(requested)
    # The last approval and "executing" are one post (no Slack round trip before the Atlas call),
    # and the result follows it.
    assert f"<@{BOB}> approved (1 of 1).\n:gear: Executing in Atlas now." in posts[0], posts
    assert "Approved." not in posts[0], "the approval line already says it"
    assert sum("approved" in p for p in posts) == 1 and sum("Executing" in p for p in posts) == 1, posts
    assert any("Done" in p for p in posts[1:]), posts
    # The preview was read at the command, at the submission and just before the DELETE; the
    # organisation names it shows were listed once and then served from the read cache.
    assert h.fake_atlas.count("getFederationSettingIdentityProvider") >= 3
    assert h.fake_atlas.count("listOrgs") == 1
    events = [e.event for e in await h.on_service_loop(h.bot.store.list_audit(request_id=requested.request_id))]
    assert events[0] == "requested" and events[-1] == "succeeded"
    assert "executing" in events


@pytest.mark.work_process
async def test_delete_idp_end_to_end(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    await run_to_completion(h, f"delete-idp {fed} {idp}")
    assert h.fake_atlas.count("deleteFederationSettingIdentityProvider") == 1
    assert idp not in h.fake_atlas.idps


@pytest.mark.work_process
async def test_delete_federation_needs_two_distinct_approvers(harness: Harness) -> None:
    h = harness
    org = h.fake_atlas.add_org("Only org")["id"]
    fed = h.fake_atlas.add_federation([org])["id"]
    requested = await h.request(f"delete-federation {fed}")
    await h.click(requested, user=BOB)
    await h.wait_thread(requested, "1 of 2")
    await h.click(requested, user=BOB)  # the same person twice counts once
    await h.wait_ephemeral("already counted")
    assert await stored_state(h, requested.request_id) is RequestState.PENDING
    assert h.fake_atlas.count("deleteFederationSetting") == 0
    await h.click(requested, user=DAVE)
    await h.wait_thread(requested, "Done")
    await h.settle()
    assert h.fake_atlas.count("deleteFederationSetting") == 1
    posts = h.thread(requested)
    first = next(p for p in posts if "(1 of 2)" in p)
    assert "Executing" not in first, "an approval that does not complete the count is posted alone"
    assert any(f"<@{DAVE}> approved (2 of 2)." in p and "Executing in Atlas now" in p for p in posts), posts
    assert fed not in h.fake_atlas.federations
    assert (await h.stored(requested.request_id)).approvers == (BOB, DAVE)


@pytest.mark.work_process
async def test_revoke_employee_access_end_to_end(harness: Harness) -> None:
    h = harness
    org = h.fake_atlas.add_org()["id"]
    group = h.fake_atlas.add_project(org)["id"]
    h.fake_atlas.add_cluster(group, "prod-eu-1", grant_type="CLUSTER_DATABASE_LOGS")
    requested = await run_to_completion(h, f"revoke-employee-access {group} prod-eu-1")
    assert requested.identifier == "prod-eu-1"
    assert h.fake_atlas.count("revokeGroupClusterMongoDbEmployeeAccess") == 1
    assert "mongoDBEmployeeAccessGrant" not in h.fake_atlas.clusters[(group, "prod-eu-1")]


@pytest.mark.work_process
async def test_revoke_token_end_to_end_and_the_token_never_leaks(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    leaked = await h.issue_atlas_token()
    requested = await run_to_completion(h, "revoke-token", secret=leaked)
    assert requested.identifier == "default"
    revokes = [r for r in h.fake_atlas.requests if r.path == "/api/oauth/revoke"]
    assert len(revokes) == 1
    # The fake now refuses the revoked token.
    probe = await h.http.get(
        f"{h.fake_atlas.base_url}/api/atlas/v2/orgs",
        headers={"Authorization": f"Bearer {leaked}", "Accept": "application/vnd.atlas.2023-01-01+json"},
    )
    assert probe.status_code == 401
    # Only the fingerprint is shown.
    fp = hashlib.sha256(leaked.encode()).hexdigest()[:8]
    assert fp in json.dumps(h.approval_posts()[-1].args["blocks"])
    # Nowhere: Slack calls, response_url posts, logs, database.
    slack_record = json.dumps([c.args for c in h.fake_slack.calls]) + json.dumps(h.ephemerals())
    # Both processes' with work-process: the work side logs at DEBUG to its own file.
    logs = "\n".join(r.getMessage() for r in caplog.records) + h.work_log_text()
    assert logs.strip()
    dump = await table_dump(h)
    for secret in [leaked, *h.secrets]:
        assert secret not in slack_record
        assert secret not in logs
        assert secret not in dump
    # The sealed copy is wiped once the request ends.
    assert (await h.stored(requested.request_id)).sealed_secret is None


# ----------------------------------------------------------------------------- refusals


async def test_bad_arguments_get_a_specific_ephemeral_answer_and_nothing_happens(harness: Harness) -> None:
    h = harness
    response = await h.command("revoke-employee-access 65a1b2c3d4e5f6a7b8c9d0e1 ../../admin")
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert "clusterName" in body["text"] and "^[a-zA-Z0-9][a-zA-Z0-9-]*$" in json.dumps(body["blocks"])
    assert "/atlas revoke-employee-access &lt;groupId&gt; &lt;clusterName&gt;" in json.dumps(body["blocks"])
    unknown = (await h.command("frobnicate")).json()
    assert "Unknown subcommand" in unknown["text"]
    assert h.fake_slack.calls_to("views.open") == []
    assert h.fake_atlas.requests == []
    assert await table_dump(h) == ""


async def test_command_text_saying_payload_is_still_a_command(harness: Harness) -> None:
    # Bolt's parse_body takes any form body containing "payload" for interactivity.
    h = harness
    helped = await h.command("help payload")
    assert helped.status_code == 200 and "/atlas revoke-jwks" in json.dumps(helped.json())
    refused = await h.command("revoke-jwks 65a1b2c3d4e5f6a7b8c9d0e1 payload")
    assert refused.status_code == 200 and "identityProviderId" in refused.json()["text"]
    assert h.fake_slack.calls_to("views.open") == [] and h.fake_atlas.requests == []


async def test_token_in_command_text_is_refused_without_echo(harness: Harness) -> None:
    h = harness
    token = await h.issue_atlas_token()
    response = await h.command(f"revoke-token default {token}")
    assert token not in response.text and token[:16] not in response.text
    assert "token" in response.json()["text"]
    assert h.fake_slack.calls_to("views.open") == []
    assert await table_dump(h) == ""


async def test_unknown_user_is_denied_before_the_modal(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    response = await h.command(f"revoke-jwks {fed} {idp}", user="U0STRANGER")
    assert response.status_code == 200
    await h.wait_ephemeral("roles oncall")
    assert h.fake_slack.calls_to("views.open") == []
    events = await h.on_service_loop(h.bot.store.list_audit())
    assert [e.event for e in events] == ["request_denied"]


async def test_wrong_channel_is_denied(harness: Harness) -> None:
    h = harness
    org = h.fake_atlas.add_org()["id"]
    fed = h.fake_atlas.add_federation([org])["id"]
    await h.command(f"delete-federation {fed}", channel=OTHER_CHANNEL)
    await h.wait_ephemeral(f"<#{CHANNEL}>")
    assert h.fake_slack.calls_to("views.open") == []


@pytest.mark.work_process
async def test_wrong_confirmation_phrase_is_a_field_error(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    view = await h.open_modal(f"revoke-jwks {fed} {idp}")
    response = await h.submit(view, confirm="yes", reason="x")
    body = response.json()
    assert body["response_action"] == "errors"
    assert body["errors"]["confirm"] == f"Type exactly {idp} to confirm."
    assert "reason" in body["errors"]
    assert h.approval_posts() == []
    assert await table_dump(h) == ""


@pytest.mark.work_process
async def test_tampered_private_metadata_changes_nothing(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    view = await h.open_modal(f"revoke-jwks {fed} {idp}")
    forged = view["private_metadata"].replace("revoke-jwks", "delete-federation")
    response = await h.submit(view, private_metadata=forged)
    assert response.json()["response_action"] == "errors"
    stolen = await h.submit(view, user=MALLORY)  # someone else's form
    assert stolen.json()["response_action"] == "errors"
    assert h.approval_posts() == []
    assert await table_dump(h) == ""


@pytest.mark.work_process
async def test_self_approval_never_counts(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}", user=CAROL)  # Carol is oncall and approver
    await h.click(requested, user=CAROL)
    await h.wait_ephemeral("your own request")
    assert await stored_state(h, requested.request_id) is RequestState.PENDING
    assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 0


async def test_non_approver_and_foreign_team_clicks_change_nothing(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    await h.click(requested, user=MALLORY)  # oncall, not approver
    await h.click(requested, user=BOB, team="T0OTHERCO")  # an approver's id, but from another company
    await h.click(requested, user=BOB, channel=OTHER_CHANNEL)  # crafted click from another channel
    await h.settle()
    await asyncio.sleep(0.1)
    assert await stored_state(h, requested.request_id) is RequestState.PENDING
    denied = [e.event for e in await h.on_service_loop(h.bot.store.list_audit(request_id=requested.request_id))]
    assert denied.count("approve_denied") == 3
    assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 0


async def test_role_removed_after_request_counts_at_click_time(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    h.fake_slack.add_usergroup(id="S0APPROVERS", handle="atlas-approvers", users=[DAVE])  # Bob removed
    await h.click(requested, user=BOB)
    await h.settle()
    await asyncio.sleep(0.1)
    assert await stored_state(h, requested.request_id) is RequestState.PENDING
    await h.click(requested, user=DAVE)
    await h.wait_thread(requested, "Done")


@pytest.mark.work_process
async def test_rejection_ends_the_request(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    await h.click(requested, user=BOB, action="atlas_reject")
    await h.wait_thread(requested, "rejected")
    await h.settle()
    await h.click(requested, user=DAVE)  # too late
    await h.settle()
    assert await stored_state(h, requested.request_id) is RequestState.REJECTED
    assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 0
    assert "Rejected" in json.dumps(h.final_update(requested)["blocks"])


async def test_requester_can_withdraw(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    await h.click(requested, user=ALICE, action="atlas_reject")
    await h.wait_thread(requested, "withdrew")
    assert await stored_state(h, requested.request_id) is RequestState.CANCELLED


async def forget_approval_message(h: Harness, request_id: str) -> None:
    """As if the click came between chat.postMessage returning and the bot storing the message's ts:
    Slack shows the message, with its buttons, as soon as it is posted."""

    async def forget() -> None:
        async with h.bot.engine.begin() as conn:
            await conn.execute(
                update(action_requests)
                .where(action_requests.c.id == request_id)
                .values(message_channel=None, message_ts=None)
            )

    await h.on_service_loop(forget())


@pytest.mark.parametrize(
    ("clicker", "action", "outcome"), [(BOB, "atlas_approve", "Done"), (ALICE, "atlas_reject", "withdrew")]
)
async def test_a_click_before_the_message_is_stored_still_answers_in_its_thread(
    harness: Harness, clicker: str, action: str, outcome: str
) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    await forget_approval_message(h, requested.request_id)
    await h.click(requested, user=clicker, action=action)
    await h.wait_thread(requested, outcome)
    await h.settle()
    assert len(h.approval_posts()) == 1, "nothing about the request may go to the channel outside its thread"
    assert not [b for b in h.final_update(requested)["blocks"] if b["type"] == "actions"], "buttons must be removed"
    stored = await h.stored(requested.request_id)
    assert (stored.message_channel, stored.message_ts) == (CHANNEL, requested.message_ts)


async def test_a_click_in_a_pending_list_is_not_taken_for_the_approval_message(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    await forget_approval_message(h, requested.request_id)
    # /atlas pending's buttons: an ephemeral message with its own ts, blocks numbered per request.
    await h.slack.click(
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts="1700000000.000999",
        is_ephemeral=True,
        block_id=f"atlas_decision-{requested.request_id[:8]}",
        action_id="atlas_approve",
        value=requested.request_id,
        response_url=h.fake_slack.response_url(channel_id=CHANNEL),
    )
    await h.fake_slack.wait_for("chat.postMessage", predicate=lambda c: "Done" in str(c.args))
    await h.settle()
    stored = await h.stored(requested.request_id)
    assert stored.state is RequestState.SUCCEEDED
    assert (stored.message_channel, stored.message_ts) == (None, None)
    assert not [c for c in h.fake_slack.calls_to("chat.postMessage") if c.args.get("thread_ts") == "1700000000.000999"]


async def test_expired_request_cannot_run(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")

    async def close_the_approval_window() -> None:  # time passes
        async with h.bot.engine.begin() as conn:
            await conn.execute(
                update(action_requests)
                .where(action_requests.c.id == requested.request_id)
                .values(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
            )

    await h.on_service_loop(close_the_approval_window())
    await h.click(requested, user=BOB)
    await h.settle()
    await h.on_service_loop(h.bot.sweeper.sweep())
    await h.wait_thread(requested, "Expired")
    assert await stored_state(h, requested.request_id) is RequestState.EXPIRED
    assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 0
    assert "Expired" in json.dumps(h.final_update(requested)["blocks"])


# ----------------------------------------------------------------------------- exactly once and errors


async def test_ten_concurrent_approve_clicks_make_exactly_one_atlas_call(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    clickers = [BOB, DAVE, BOB, DAVE, BOB, DAVE, BOB, DAVE, BOB, DAVE]
    responses = await asyncio.gather(*(h.click(requested, user=u) for u in clickers))
    assert all(r.status_code == 200 for r in responses)
    await h.wait_thread(requested, "Done")
    await h.settle()
    assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 1
    events = [e.event for e in await h.on_service_loop(h.bot.store.list_audit(request_id=requested.request_id))]
    assert events.count("executing") == 1 and events.count("succeeded") == 1


async def test_executions_reach_atlas_and_save_their_outcome_while_their_slack_reports_wait(
    harness: Harness,
) -> None:
    h = harness
    service = h.bot.service
    service._reports = asyncio.Semaphore(2)  # REPORT_CONCURRENCY, made small enough to see
    org = h.fake_atlas.add_org("Org 0")["id"]
    federation = h.fake_atlas.add_federation([org])["id"]
    idps = [h.fake_atlas.add_idp(federation, protocol="OIDC", org_ids=[org])["id"] for _ in range(5)]
    requests = [await h.request(f"revoke-jwks {federation} {idp}") for idp in idps]
    threads = {r.message_ts for r in requests}

    def reports() -> list[str]:
        return [
            str(c.args["text"]) for c in h.fake_slack.calls_to("chat.postMessage") if c.args.get("thread_ts") in threads
        ]

    h.fake_slack.hold("chat.postMessage")  # Slack stalls: no thread post is answered
    try:
        for requested in requests:
            assert (await h.click(requested, user=BOB)).status_code == 200

        async def all_succeeded() -> bool:
            return [await stored_state(h, r.request_id) for r in requests] == [RequestState.SUCCEEDED] * 5

        await wait_until(all_succeeded, timeout=15, what="every outcome saved while Slack stalls")
        # Every DELETE was sent and every outcome saved, while only two reports were ever sent.
        assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 5
        assert len(reports()) == 2 and all("Executing in Atlas now" in text for text in reports())
        # Which two executions took the slots first is up to the loop, not the click order.
        sent_during_stall = {
            c.args.get("thread_ts")
            for c in h.fake_slack.calls_to("chat.postMessage")
            if c.args.get("thread_ts") in threads
        }
    finally:
        h.fake_slack.release("chat.postMessage")
    for requested in requests:
        await h.wait_thread(requested, "Done")
    await h.settle()

    def redraws(requested: Requested) -> int:
        return len([c for c in h.fake_slack.calls_to("chat.update") if c.args.get("ts") == requested.message_ts])

    # The two reports sent before the stall read "executing", then their result; the three that
    # waited for a slot found their outcome saved and told it at once, in one post and one redraw.
    told_early = [r for r in requests if r.message_ts in sent_during_stall]
    told_late = [r for r in requests if r.message_ts not in sent_during_stall]
    assert len(told_early) == 2 and len(told_late) == 3
    for requested in told_early:
        thread = h.thread(requested)
        assert len(thread) == 2 and "Executing in Atlas now" in thread[0] and "Done" in thread[1]
    for requested in told_late:
        (post,) = h.thread(requested)
        assert "approved" in post.lower() and "Done" in post and "Executing" not in post
        assert redraws(requested) == redraws(told_early[0]) - 1
    for requested in requests:
        # The result's redraw came last: the message ends done, without buttons.
        final = h.final_update(requested)
        assert "Done" in json.dumps(final["blocks"]) and not [b for b in final["blocks"] if b["type"] == "actions"]


@pytest.mark.work_process
async def test_atlas_404_is_reported_in_the_thread(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    # The preview finds the IdP; by the time the DELETE lands Atlas answers 404 (someone was faster).
    h.fake_atlas.fail(
        "DELETE",
        rf".*/identityProviders/{idp}$",
        status=404,
        error_code="IDENTITY_PROVIDER_NOT_FOUND",
        detail="No identity provider with that id exists.",
    )
    requested = await h.request(f"delete-idp {fed} {idp}")
    await h.click(requested, user=BOB)
    thread = await h.wait_thread(requested, "HTTP 404")
    await h.settle()
    request = await h.stored(requested.request_id)
    assert request.state is RequestState.FAILED
    assert request.outcome is not None and request.outcome.status == 404
    assert request.outcome.error_code == "IDENTITY_PROVIDER_NOT_FOUND"
    assert "IDENTITY_PROVIDER_NOT_FOUND" in thread and "No identity provider" in thread
    assert "Failed" in json.dumps(h.final_update(requested)["blocks"])


async def test_atlas_409_is_reported_in_the_thread(harness: Harness) -> None:
    h = harness
    org = h.fake_atlas.add_org()["id"]
    group = h.fake_atlas.add_project(org)["id"]
    h.fake_atlas.add_cluster(group, "busy", grant_type="CLUSTER_INFRASTRUCTURE")
    h.fake_atlas.fail(
        "POST",
        r".*:revokeMongoDBEmployeeAccess$",
        status=409,
        error_code="CANNOT_MODIFY_CLUSTER_DURING_UPDATE",
        detail="The cluster is being updated.",
    )
    requested = await h.request(f"revoke-employee-access {group} busy")
    await h.click(requested, user=BOB)
    thread = await h.wait_thread(requested, "HTTP 409")
    await h.settle()
    assert "CANNOT_MODIFY_CLUSTER_DURING_UPDATE" in thread and "being updated" in thread
    assert (await h.stored(requested.request_id)).state is RequestState.FAILED
    assert h.fake_atlas.count("revokeGroupClusterMongoDbEmployeeAccess") == 1


async def test_pending_and_whoami(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    await h.command("pending", user=BOB)
    await h.command("whoami", user=BOB)
    await h.wait_ephemeral("Roles:")
    await h.wait_ephemeral("waiting for your approval")
    joined = " ".join(h.ephemerals())
    assert requested.request_id in joined  # the buttons carry the id
    assert "Roles: approver" in joined and "@atlas-approvers" in joined
    await h.on_service_loop(h.bot.sweeper.sweep())
    assert "atlas_chatops_pending_approvals 1.0" in (await h.http.get(f"{h.url}/metrics")).text


async def test_final_approval_on_a_draining_replica_is_still_posted_and_nothing_runs(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    h.bot.service._accepting = False  # as after SIGTERM: executions are left to another replica
    await h.click(requested, user=BOB)
    await h.wait_thread(requested, f"<@{BOB}> approved (1 of 1).")
    await h.settle()
    assert await stored_state(h, requested.request_id) is RequestState.APPROVED
    assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 0
    assert not any("Executing" in p for p in h.thread(requested))


async def test_draining_that_begins_while_the_final_approval_is_saved_hands_the_request_back(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    service = h.bot.service
    saving = service.store.approve

    async def approve_then_sigterm(*args: Any, **kwargs: Any) -> Any:
        result = await saving(*args, **kwargs)
        service._accepting = False  # SIGTERM arrived while the approval and its claim were saved
        return result

    monkeypatch.setattr(service.store, "approve", approve_then_sigterm)
    await h.click(requested, user=BOB)
    await h.wait_thread(requested, f"<@{BOB}> approved (1 of 1).")
    await h.settle()
    stored = await h.stored(requested.request_id)
    # Claimed with the approval, then given back at once for another replica: not left leased.
    assert (stored.state, stored.executor_id, stored.lease_until) == (RequestState.APPROVED, None, None)
    trail = [e.event for e in await h.on_service_loop(service.store.list_audit(request_id=requested.request_id))]
    assert trail[-3:] == ["approved", "executing", "released"]
    assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 0
    assert not any("Executing" in p for p in h.thread(requested))

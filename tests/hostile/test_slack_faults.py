"""Slack's Web API failing under the bot: it retries where Slack says when (429 + Retry-After),
otherwise tells the person through whichever channel still works (response_url, then an
ephemeral message), and never loses a request because a message could not be posted."""

from __future__ import annotations

import time

from bot.requests import RequestState
from tests.hostile.harness import BOB, CHANNEL, MALLORY, HostileHarness, Requested, hostile_bot, seed_oidc_idp
from tests.hostile.tally import fault


async def approve_from_pending_list(h: HostileHarness, *, approver: str = BOB) -> Requested:
    """What an approver does when the approval message is missing: /atlas pending, then its button."""
    h.fake_slack.response_url_posts.clear()
    await h.command("pending", user=approver)
    listing = await h.wait_ephemeral("'action_id': 'atlas_approve'")
    request_id = listing.split("'value': '", 1)[1].split("'", 1)[0]
    requested = Requested(request_id=request_id, message_ts="1700000000.999999", identifier="")
    await h.click(requested, user=approver)
    return requested


async def test_a_rate_limited_post_is_retried_after_retry_after(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    h.slack_fault("chat.postMessage", "ratelimited", retry_after=1)
    view = await h.open_modal(f"revoke-jwks {fed} {idp}")
    started = time.monotonic()
    await h.submit(view)
    posts = await h.fake_slack.wait_for("chat.postMessage", count=2, timeout=5)
    assert posts[1].received_at - posts[0].received_at >= 1.0  # slack_sdk waited as Slack asked
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in posts] == [429, 200]
    assert posts[0].args == posts[1].args  # the same message, sent again
    await h.quiet()
    request = (await h.bot.store.list_requests(states=[RequestState.PENDING]))[0]
    assert request.message_ts == posts[1].response["ts"]
    requested = Requested(request_id=request.id, message_ts=str(request.message_ts), identifier=idp)
    await h.click(requested, user=BOB)
    await h.wait_thread(requested, "Done")


async def test_expired_trigger_id_is_explained_and_nothing_is_stored(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    for error in ("expired_trigger_id", "trigger_exchanged"):
        h.slack_fault("views.open", error)
        response = await h.command(f"revoke-jwks {fed} {idp}")
        assert response.status_code == 200
        reply = await h.wait_ephemeral(f"`{error}`")
        assert "run the command again" in reply
    await h.quiet()
    assert (await h.row_counts())["action_requests"] == 0
    assert "atlas_chatops_slack_errors_total" in await h.metrics_text()


async def test_not_in_channel_keeps_the_request_and_tells_the_requester(database_url: str) -> None:
    async with hostile_bot(database_url, strict_channels=True) as h:
        h.fake_slack.add_channel(CHANNEL, is_member=False)
        fed, idp = seed_oidc_idp(h)
        fault("slack fault: chat.postMessage not_in_channel (bot not invited)")
        view = await h.open_modal(f"revoke-jwks {fed} {idp}")
        response = await h.submit(view)
        assert response.status_code == 200
        told = await h.wait_ephemeral("is recorded and waiting for approval")
        assert "`not_in_channel`" in told and "/invite" in told
        assert h.approval_posts() == []
        # The approval is not lost: an approver finds it and approves it.
        h.fake_slack.add_channel(CHANNEL, is_member=True)  # someone ran /invite
        requested = await approve_from_pending_list(h)
        assert await h.wait_state(requested, "succeeded", "failed", "unknown") == "succeeded"
        done = await h.fake_slack.wait_for("chat.postMessage", predicate=lambda c: "Done" in str(c.args))
        assert done[-1].ok
        metrics = await h.metrics_text()
        assert 'error="not_in_channel",method="chat.postMessage"' in metrics


async def test_channel_not_found_and_a_rate_limit_storm_lose_no_approval(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    for error, times in (("channel_not_found", 1), ("ratelimited", 5)):
        h.slack_fault("chat.postMessage", error, times=times, retry_after=0)
        view = await h.open_modal(f"revoke-jwks {fed} {idp}")
        await h.submit(view)
        told = await h.wait_ephemeral(f"`{error}`")
        assert "is recorded and waiting for approval" in told
        h.fake_slack.response_url_posts.clear()
    await h.quiet()
    pending = await h.bot.store.list_requests(states=list(RequestState))
    assert len(pending) == 2 and all(r.state.value == "pending" and r.message_ts is None for r in pending)
    requested = await approve_from_pending_list(h)
    assert await h.wait_state(requested, "succeeded") == "succeeded"


async def test_a_failed_response_url_falls_back_to_an_ephemeral_message(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    fault("slack fault: response_url expired (404)")
    dead_url = f"{h.fake_slack.base_url}/response-url/expired-or-unknown"
    await h.slack.click(
        user_id=MALLORY,
        channel_id=CHANNEL,
        message_ts=requested.message_ts,
        action_id="atlas_approve",
        value=requested.request_id,
        response_url=dead_url,
    )
    calls = await h.fake_slack.wait_for("chat.postEphemeral")
    assert calls[-1].args["user"] == MALLORY and calls[-1].args["channel"] == CHANNEL
    assert "roles approver" in str(calls[-1].args["blocks"])
    assert [p.status for p in h.fake_slack.response_url_posts] == [404]


async def test_chat_update_failures_do_not_stop_or_repeat_the_execution(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    h.slack_fault("chat.update", "message_not_found", times=10)
    h.slack_fault("chat.postMessage", "ratelimited", times=1, retry_after=0)
    await h.click(requested, user=BOB)
    assert await h.wait_state(requested, "succeeded", "failed") == "succeeded"
    await h.wait_thread(requested, "Done")
    await h.quiet()
    assert h.fake_atlas.count("revokeJwks") == 1


async def test_an_unreadable_directory_denies_and_the_request_waits(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    # A fresh process whose first user-group read fails: nobody is in any group (the safe failure).
    h.bot.service.directory._members = None
    h.slack_fault("usergroups.list", "ratelimited", times=3, retry_after=0)
    await h.click(requested, user=BOB)
    await h.wait_ephemeral("roles approver")
    assert await h.state_of(requested) == "pending"
    await h.click(requested, user=BOB)  # Slack answers again
    assert await h.wait_state(requested, "succeeded") == "succeeded"

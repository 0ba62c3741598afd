"""``/atlas`` alone: the picker modal, its external_select menus answered from Atlas, and App Home.

Slack's side is played with signed requests: the slash command, the action menu's block_actions
inside the modal, block_suggestion for the target menu, the picker's view_submission (answered
with ``response_action: update``), then the confirmation form as usual.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from bot.requests import RequestState
from tests.e2e.harness import ALICE, BOB, CHANNEL, DAVE, MALLORY, Harness, Requested
from tests.e2e.test_flow import seed_oidc_idp, stored_state
from tests.slack_requests import external_select_value, static_select_value

pytestmark = [pytest.mark.e2e, pytest.mark.work_process]

PICK_TARGET = "atlas_pick_target"


async def open_picker(h: Harness, *, user: str = ALICE) -> dict[str, Any]:
    before = len(h.fake_slack.calls_to("views.open"))
    response = await h.command("", user=user)
    assert response.status_code == 200 and not response.content, response.text
    calls = await h.fake_slack.wait_for("views.open", count=before + 1)
    assert calls[-1].ok, calls[-1].response
    view: dict[str, Any] = calls[-1].response["view"]
    assert view["callback_id"] == "atlas_pick"
    return view


async def choose_action(h: Harness, picker: dict[str, Any], action: str, *, user: str = ALICE) -> dict[str, Any]:
    """Select the action in the picker's first menu; returns the view as updated by the bot."""
    before = len(h.fake_slack.calls_to("views.update"))
    response = await h.slack.view_action(
        user_id=user,
        view=picker,
        action_id="atlas_pick_action",
        block_id="pick_action",
        selected_option=static_select_value(action)["selected_option"],
    )
    assert response.status_code == 200, response.text
    calls = await h.fake_slack.wait_for("views.update", count=before + 1)
    assert calls[-1].ok, calls[-1].response
    assert calls[-1].args["view_id"] == picker["id"] and calls[-1].args["hash"] == picker["hash"]
    view: dict[str, Any] = calls[-1].response["view"]
    return view


async def suggest(
    h: Harness, view: dict[str, Any], action: str, query: str = "", *, user: str = ALICE, **kw: Any
) -> list[dict[str, Any]]:
    response = await h.slack.suggest(
        user_id=user,
        action_id=PICK_TARGET,
        block_id=f"pick_target:{action}",
        value=query,
        view_id=view["id"],
        callback_id="atlas_pick",
        private_metadata=view["private_metadata"],
        view_blocks=view["blocks"],
        **kw,
    )
    assert response.status_code == 200, response.text
    options: list[dict[str, Any]] = response.json()["options"]
    return options


async def submit_picker(
    h: Harness, view: dict[str, Any], action: str, option: dict[str, Any] | None, *, user: str = ALICE
) -> dict[str, Any]:
    values: dict[str, dict[str, Any]] = {"pick_action": {"atlas_pick_action": static_select_value(action)}}
    if option is not None:
        values[f"pick_target:{action}"] = {PICK_TARGET: external_select_value(option["value"], option["text"]["text"])}
    response = await h.slack.submit(
        user_id=user,
        callback_id="atlas_pick",
        private_metadata=view["private_metadata"],
        values=values,
        view_id=view["id"],
        hash=view["hash"],
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def labels(options: list[dict[str, Any]]) -> list[str]:
    return [o["text"]["text"] for o in options]


async def test_picker_end_to_end_from_menus_to_an_executed_jwks_revocation(harness: Harness) -> None:
    h = harness
    org = h.fake_atlas.add_org("Acme Prod")
    federation = h.fake_atlas.add_federation([org["id"]])
    oidc = h.fake_atlas.add_idp(federation["id"], protocol="OIDC", org_ids=[org["id"]], display_name="Okta OIDC")
    saml = h.fake_atlas.add_idp(federation["id"], protocol="SAML", display_name="Legacy SAML")

    picker = await open_picker(h)
    assert [b["block_id"] for b in picker["blocks"] if b["type"] == "input"] == ["pick_action"]
    chosen = await choose_action(h, picker, "revoke-jwks")
    target_block = next(b for b in chosen["blocks"] if b.get("block_id") == "pick_target:revoke-jwks")
    assert target_block["element"]["type"] == "external_select"

    options = await suggest(h, chosen, "revoke-jwks")
    # JWKS revocation applies to OIDC only: the SAML IdP is not offered.
    assert labels(options) == ["Okta OIDC (OIDC) · Acme Prod"]
    assert options[0]["value"] == f"{federation['id']} {oidc['id']}"
    assert saml["id"] not in json.dumps(options)
    # Searching narrows the list; every keystroke after the first is served from the kept listing.
    listings = h.fake_atlas.count("listOrgs")
    assert await suggest(h, chosen, "revoke-jwks", "okta") == options
    assert await suggest(h, chosen, "revoke-jwks", "nothing-like-it") == []
    assert h.fake_atlas.count("listOrgs") == listings

    answer = await submit_picker(h, chosen, "revoke-jwks", options[0])
    assert answer["response_action"] == "update"
    confirm = answer["view"]
    assert confirm["callback_id"] == "atlas_confirm"
    assert oidc["id"] in json.dumps(confirm["blocks"])
    # The preview fills the same view in afterwards (its hash changed with the update, so none is sent).
    update = await h.fake_slack.wait_for(
        "views.update", predicate=lambda c: "Live from Atlas" in json.dumps(c.args.get("view"))
    )
    assert update[-1].args["view_id"] == chosen["id"] and "hash" not in update[-1].args

    before = len(h.approval_posts())
    response = await h.submit(confirm)
    assert response.status_code == 200 and not response.content, response.text
    await h.fake_slack.wait_for("chat.postMessage", count=before + 1, predicate=lambda c: not c.args.get("thread_ts"))
    post = h.approval_posts()[-1]
    request_id = next(e["value"] for b in post.args["blocks"] if b["type"] == "actions" for e in b["elements"])
    requested = Requested(request_id=request_id, message_ts=str(post.response["ts"]), identifier=oidc["id"])
    assert (await h.click(requested, user=BOB)).status_code == 200
    await h.wait_thread(requested, "Done")
    assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 1
    assert await stored_state(h, request_id) is RequestState.SUCCEEDED


async def test_cluster_picker_lists_project_and_cluster_and_opens_the_grant_preview(harness: Harness) -> None:
    h = harness
    org = h.fake_atlas.add_org("Acme")
    payments = h.fake_atlas.add_project(org["id"], "payments")
    h.fake_atlas.add_project(org["id"], "empty")
    h.fake_atlas.add_cluster(payments["id"], "ledger", grant_type="CLUSTER_INFRASTRUCTURE_AND_APP_SERVICES_SYNC_DATA")
    h.fake_atlas.add_cluster(payments["id"], "archive")

    chosen = await choose_action(h, await open_picker(h), "revoke-employee-access")
    options = await suggest(h, chosen, "revoke-employee-access")
    assert labels(options) == ["payments / archive", "payments / ledger"]
    assert options[1]["value"] == f"{payments['id']} ledger"
    assert labels(await suggest(h, chosen, "revoke-employee-access", "LEDGER")) == ["payments / ledger"]

    answer = await submit_picker(h, chosen, "revoke-employee-access", options[1])
    assert answer["response_action"] == "update" and answer["view"]["callback_id"] == "atlas_confirm"
    update = await h.fake_slack.wait_for(
        "views.update", predicate=lambda c: "Live from Atlas" in json.dumps(c.args.get("view"))
    )
    assert "CLUSTER_INFRASTRUCTURE_AND_APP_SERVICES_SYNC_DATA" in json.dumps(update[-1].args["view"])


async def test_revoke_token_picker_offers_configured_profiles_without_asking_atlas(harness: Harness) -> None:
    h = harness
    chosen = await choose_action(h, await open_picker(h), "revoke-token")
    calls_before = len(h.fake_atlas.requests)
    options = await suggest(h, chosen, "revoke-token")
    assert [o["value"] for o in options] == ["default"]
    assert len(h.fake_atlas.requests) == calls_before
    answer = await submit_picker(h, chosen, "revoke-token", options[0])
    secret_block = next(b for b in answer["view"]["blocks"] if b.get("block_id") == "secret")
    assert secret_block["element"]["type"] == "plain_text_input"


async def test_missing_choices_and_forged_targets_are_field_errors(harness: Harness) -> None:
    h = harness
    chosen = await choose_action(h, await open_picker(h), "delete-idp")
    answer = await submit_picker(h, chosen, "delete-idp", None)
    assert answer == {"response_action": "errors", "errors": {"pick_target:delete-idp": "Pick the identity provider."}}
    # A target value Slack never offered (crafted payload): validated exactly like typed arguments.
    forged = {"value": "../../orgs 0123456789abcdef01234567", "text": {"type": "plain_text", "text": "x"}}
    answer = await submit_picker(h, chosen, "delete-idp", forged)
    error = answer["errors"]["pick_target:delete-idp"]
    assert "federationSettingsId" in error and "^([a-f0-9]{24})$" in error
    # Someone else's picker (signed for Alice) cannot be submitted by Bob.
    answer = await submit_picker(h, chosen, "delete-idp", forged, user=BOB)
    assert "could not be verified" in answer["errors"]["pick_action"]
    assert h.fake_atlas.count("deleteFederationSettingIdentityProvider") == 0
    assert h.approval_posts() == []


async def test_picker_refuses_people_the_policy_does_not_allow(harness: Harness) -> None:
    h = harness
    seed_oidc_idp(h)
    # Dave is an approver, not on call: he may not request, so Atlas's inventory is not shown to him.
    picker = await open_picker(h, user=DAVE)
    chosen = await choose_action(h, picker, "revoke-jwks", user=DAVE)
    calls_before = len(h.fake_atlas.requests)
    assert await suggest(h, chosen, "revoke-jwks", user=DAVE) == []
    assert len(h.fake_atlas.requests) == calls_before
    option = {"value": "0123456789abcdef01234567 0123456789abcdef01234568", "text": {"type": "plain_text", "text": "x"}}
    answer = await submit_picker(h, chosen, "revoke-jwks", option, user=DAVE)
    assert answer["response_action"] == "errors" and "roles oncall to request" in answer["errors"]["pick_action"]
    # Someone from another organisation (Slack Connect) gets nothing either, whatever the policy lists.
    chosen_by_alice = await choose_action(h, await open_picker(h), "revoke-jwks")
    assert await suggest(h, chosen_by_alice, "revoke-jwks", user_team_id="T0OTHERCO") == []


async def test_slow_atlas_answers_within_slacks_limit_and_fills_the_menu_on_the_next_keystroke(
    harness: Harness,
) -> None:
    h = harness
    org = h.fake_atlas.add_org("Slow Org")
    federation = h.fake_atlas.add_federation([org["id"]])
    h.fake_atlas.add_idp(federation["id"], protocol="OIDC", org_ids=[org["id"]], display_name="Slow OIDC")
    h.fake_atlas.delay("GET", r"/api/atlas/v2/orgs$", seconds=3.5)
    chosen = await choose_action(h, await open_picker(h), "revoke-jwks")

    started = time.monotonic()
    first = await suggest(h, chosen, "revoke-jwks")
    elapsed = time.monotonic() - started
    # Slack drops an options answer after 3 seconds: the bot answers in time, with what it has (nothing yet).
    assert first == [] and elapsed < 3.0, elapsed
    # The listing kept running in the background; once Atlas answers, the next keystroke gets it.
    for _ in range(100):
        options = await suggest(h, chosen, "revoke-jwks", "slow")
        if options:
            break
        await asyncio.sleep(0.1)
    assert labels(options) == ["Slow OIDC (OIDC) · Slow Org"]
    assert h.fake_atlas.count("listOrgs") == 1


async def test_pending_lists_only_what_the_viewer_may_approve(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    await h.command("pending", user=ALICE)  # the requester cannot approve their own request
    await h.command("pending", user=MALLORY)  # on call, not an approver
    await h.command("pending", user=BOB)
    # Replies go out through response_url after each ack, in any order: wait for all three.
    for _ in range(500):
        if len(h.ephemerals()) >= 3:
            break
        await asyncio.sleep(0.01)
    listed = await h.wait_ephemeral("waiting for your approval*")
    assert requested.request_id in listed and "atlas_approve" in listed
    nothing = [e for e in h.ephemerals() if "No Atlas requests in this channel are waiting for your approval" in e]
    assert len(nothing) == 2


async def test_app_home_lists_waiting_requests_and_approves_from_the_tab(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")

    async def open_home(user: str) -> dict[str, Any]:
        before = len(h.fake_slack.calls_to("views.publish"))
        response = await h.slack.event({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"})
        assert response.status_code == 200, response.text
        calls = await h.fake_slack.wait_for("views.publish", count=before + 1)
        assert calls[-1].ok and calls[-1].args["user_id"] == user, calls[-1].response
        view: dict[str, Any] = calls[-1].response["view"]
        return view

    alice_home = await open_home(ALICE)
    assert "Nothing is waiting for your approval" in json.dumps(alice_home["blocks"])
    bob_home = await open_home(BOB)
    assert bob_home["type"] == "home"
    text = json.dumps(bob_home["blocks"])
    assert requested.request_id in text and f"<#{CHANNEL}>" in text

    buttons = next(b for b in bob_home["blocks"] if b["type"] == "actions")
    before = len(h.fake_slack.calls_to("views.publish"))
    response = await h.slack.view_action(
        user_id=BOB, view=bob_home, action_id="atlas_approve", block_id=buttons["block_id"], value=requested.request_id
    )
    assert response.status_code == 200, response.text
    await h.wait_thread(requested, "Done")
    assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 1
    # The tab is refreshed with the answer, and the approved request is no longer listed.
    calls = await h.fake_slack.wait_for("views.publish", count=before + 1)
    refreshed = json.dumps(calls[-1].args["view"])
    assert "Approved." in refreshed and requested.request_id not in refreshed
    # The messages tab opening is not the home tab: nothing is published for it.
    published = len(h.fake_slack.calls_to("views.publish"))
    await h.slack.event({"type": "app_home_opened", "user": BOB, "channel": "D0HOME", "tab": "messages"})
    await asyncio.sleep(0.2)
    assert len(h.fake_slack.calls_to("views.publish")) == published

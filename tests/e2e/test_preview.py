"""Show what will be destroyed before anyone approves: previews, pre-flight stops, the digest
binding an approval to what the approver saw, evidence, and verification after execution."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from bot import service as service_module
from bot.requests import RequestState
from tests.e2e.harness import BOB, Harness
from tests.e2e.test_flow import seed_oidc_idp

pytestmark = pytest.mark.e2e


def modal_text(view: dict[str, object]) -> str:
    return json.dumps(view)


async def preview_update(h: Harness) -> dict[str, object]:
    calls = await h.fake_slack.wait_for("views.update")
    view: dict[str, object] = calls[-1].args["view"]
    return view


@pytest.mark.work_process
async def test_modal_opens_at_once_then_shows_the_live_preview(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h, orgs=2)
    opened = await h.open_modal(f"revoke-jwks {fed} {idp}")
    assert "Reading the target from Atlas" in modal_text(opened)
    updated = await preview_update(h)
    update_call = h.fake_slack.calls_to("views.update")[-1]
    assert update_call.args["view_id"] and update_call.args["hash"]  # never overwrites a newer view
    text = modal_text(updated)
    assert "Live from Atlas" in text and "OIDC WORKFORCE" in text
    assert "Large blast radius" in text and "logged out" in text
    assert updated.get("submit") is not None
    open_at = h.fake_slack.calls_to("views.open")[-1].received_at
    assert update_call.received_at >= open_at


async def test_approval_message_shows_the_preview_and_evidence_is_audited(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"delete-idp {fed} {idp}")
    message = json.dumps(h.approval_posts()[-1].args["blocks"])
    assert "Live from Atlas" in message and "OIDC" in message and "Used by" in message
    events = await h.on_service_loop(h.bot.store.list_audit(request_id=requested.request_id))
    evidence = [e for e in events if e.event == "evidence"]
    assert len(evidence) == 1
    stored_idp = evidence[0].detail["evidence"]["identityProvider"]
    assert stored_idp["id"] == idp and stored_idp["issuerUri"].startswith("https://")
    request = await h.stored(requested.request_id)
    assert request.preview_digest == evidence[0].detail["digest"]


@pytest.mark.parametrize("case", ["saml-jwks", "idp-two-orgs", "federation-two-orgs", "no-grant", "missing"])
async def test_preflight_stops_what_atlas_would_refuse(harness: Harness, case: str) -> None:
    h = harness
    fake = h.fake_atlas
    if case == "saml-jwks":
        org = fake.add_org()["id"]
        fed = fake.add_federation([org])["id"]
        idp = fake.add_idp(fed, protocol="SAML", org_ids=[org])["id"]
        command, expected = f"revoke-jwks {fed} {idp}", "only to OIDC"
    elif case == "idp-two-orgs":
        orgs = [fake.add_org(f"O{i}")["id"] for i in range(2)]
        fed = fake.add_federation(orgs)["id"]
        idp = fake.add_idp(fed, protocol="OIDC", org_ids=orgs)["id"]
        command, expected = f"delete-idp {fed} {idp}", "connected to 2 organisations"
    elif case == "federation-two-orgs":
        orgs = [fake.add_org(f"O{i}")["id"] for i in range(2)]
        fed = fake.add_federation(orgs)["id"]
        command, expected = f"delete-federation {fed}", "2 organisations are still connected"
    elif case == "no-grant":
        group = fake.add_project(fake.add_org()["id"])["id"]
        fake.add_cluster(group, "quiet")
        command, expected = f"revoke-employee-access {group} quiet", "no MongoDB employee access grant"
    else:
        org = fake.add_org()["id"]
        fed = fake.add_federation([org])["id"]
        command, expected = f"delete-idp {fed} 0123456789abcdef01234567", "HTTP 404"
    view = await h.open_modal(command)
    updated = await preview_update(h)
    assert expected in modal_text(updated)
    assert updated.get("submit") is None, "a blocked form must not be submittable"
    # A submission of the first (still submittable) form is refused after the ack, with the reason.
    response = await h.submit(view)
    assert response.status_code == 200
    reply = await h.wait_ephemeral("Stopped before approval")
    assert expected in reply
    assert h.approval_posts() == []
    writes = [r for r in fake.requests if r.method in {"DELETE", "POST"} and not r.path.startswith("/api/oauth")]
    assert writes == []
    assert [e.event for e in await h.on_service_loop(h.bot.store.list_audit())] == ["preflight_blocked"]


async def test_changed_target_stops_execution_and_asks_for_a_fresh_approval(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"delete-idp {fed} {idp}")
    # After the approvers saw it, someone connects a second organisation to the IdP.
    org2 = h.fake_atlas.add_org("Late org")["id"]
    h.fake_atlas.federations[fed]["orgConfigs"][org2] = dict(
        h.fake_atlas.federations[fed]["orgConfigs"][next(iter(h.fake_atlas.federations[fed]["orgConfigs"]))],
        orgId=org2,
    )
    await h.click(requested, user=BOB)
    thread = await h.wait_thread(requested, "changed since it was approved")
    await h.settle()
    assert "Request it again" in thread
    request = await h.stored(requested.request_id)
    assert request.state is RequestState.FAILED
    assert request.outcome is not None and request.outcome.error_code == "TARGET_CHANGED"
    assert h.fake_atlas.count("deleteFederationSettingIdentityProvider") == 0
    assert idp in h.fake_atlas.idps


async def test_the_read_before_executing_may_take_longer_than_a_modal_preview(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scaled down: a form's preview gives up after 0.3 s, the read before an approved request runs
    # after 3 s. Atlas answers that read in 1 s (a queue for connections, say): it still runs.
    h = harness
    monkeypatch.setattr(service_module, "PREVIEW_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(service_module, "REREAD_TIMEOUT_SECONDS", 3.0)
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    h.fake_atlas.delay("GET", rf"/identityProviders/{idp}$", seconds=1.0)
    await h.click(requested, user=BOB)
    await h.wait_thread(requested, "Done")
    assert h.fake_atlas.count("revokeJwks") == 1
    # The same slow answer is too slow for a form's preview, which says Atlas could not be read.
    updates = len(h.fake_slack.calls_to("views.update"))
    h.fake_atlas.delay("GET", rf"/identityProviders/{idp}$", seconds=1.0)
    await h.open_modal(f"revoke-jwks {fed} {idp}")
    updated = (await h.fake_slack.wait_for("views.update", count=updates + 1))[-1].args["view"]
    assert "Atlas could not be read" in modal_text(updated) and "no answer within" in modal_text(updated)
    async with asyncio.timeout(5):  # let the slow answer arrive before the fakes stop
        while True:
            if all(r.status is not None for r in h.fake_atlas.requests):
                break
            await asyncio.sleep(0.02)


async def test_execution_is_verified_by_reading_the_target_again(harness: Harness) -> None:
    h = harness
    group = h.fake_atlas.add_project(h.fake_atlas.add_org()["id"])["id"]
    h.fake_atlas.add_cluster(group, "prod-1", grant_type="CLUSTER_INFRASTRUCTURE")
    requested = await h.request(f"revoke-employee-access {group} prod-1")
    await h.click(requested, user=BOB)
    await h.wait_thread(requested, "Verified: Atlas now shows that the cluster has no employee access grant")
    await h.settle()
    cluster_reads = [r for r in h.fake_atlas.requests if r.method == "GET" and r.path.endswith("/clusters/prod-1")]
    # modal preview, submission preview, pre-execution re-read, verification
    assert len(cluster_reads) == 4


def atlas_reads(h: Harness) -> int:
    return sum(1 for r in h.fake_atlas.requests if r.method == "GET")


async def two_commands_while_views_open_is_slow(
    h: Harness, *, views_open_seconds: float, second_after: float
) -> tuple[tuple[str, str], float, float]:
    """Two revoke-jwks commands ``second_after`` s apart while Slack takes ``views_open_seconds``
    to answer views.open: the first's target, and when each views.open was answered."""
    first, second = seed_oidc_idp(h), seed_oidc_idp(h)
    h.fake_slack.delay("views.open", views_open_seconds)
    assert (await h.command(f"revoke-jwks {first[0]} {first[1]}")).status_code == 200
    await h.fake_slack.wait_for("views.open", count=1)
    await asyncio.sleep(second_after)
    assert (await h.command(f"revoke-jwks {second[0]} {second[1]}")).status_code == 200
    opens = await h.fake_slack.wait_for("views.open", count=2)
    first_open_answered, second_open_answered = (c.received_at + views_open_seconds for c in opens)
    return first, first_open_answered, second_open_answered


@pytest.mark.work_process
async def test_a_preview_waits_while_another_form_is_being_opened(harness: Harness) -> None:
    """Forms first: a form must open within Slack's 3 s, a preview only fills one in."""
    h = harness
    _, first_open_answered, second_open_answered = await two_commands_while_views_open_is_slow(
        h, views_open_seconds=1.0, second_after=0.5
    )
    # The first form is open, the second is still being opened: the first's preview waits.
    await asyncio.sleep(max(0.0, first_open_answered + 0.3 - time.monotonic()))
    assert time.monotonic() < second_open_answered, "the machine is too slow for this test's timing"
    assert atlas_reads(h) == 0
    assert not h.fake_slack.calls_to("views.update")
    # Once it has opened, both previews are read and shown.
    updates = await h.fake_slack.wait_for("views.update", count=2, timeout=10)
    assert min(u.received_at for u in updates) >= second_open_answered
    assert all("Live from Atlas" in modal_text(u.args["view"]) for u in updates)


@pytest.mark.work_process
async def test_a_stream_of_forms_delays_a_preview_by_at_most_a_second(harness: Harness) -> None:
    h = harness
    first, first_open_answered, second_open_answered = await two_commands_while_views_open_is_slow(
        h, views_open_seconds=2.5, second_after=1.6
    )
    # Still opening the second form 1 s after the first opened: the first's preview goes ahead.
    update = await h.fake_slack.wait_for("views.update", count=1, timeout=10)
    assert first_open_answered + 0.9 <= update[0].received_at < second_open_answered
    assert first[1] in modal_text(update[0].args["view"])

"""A replica SIGKILLed while its Atlas calls are in flight: another replica's sweeper resolves them."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.requests import RequestState
from bot.store import Store
from tests.fakes.fake_atlas import FakeAtlas
from tests.replicas.cluster import Cluster, atlas_writes, state_counts, wait_states

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LEASE = 3.0
SWEEP = 0.5
V2 = "/api/atlas/v2"
TERMINAL = [RequestState.SUCCEEDED, RequestState.FAILED, RequestState.UNKNOWN]


async def test_sigkilled_executor_is_resolved_by_another_replica_reading_atlas(
    cluster: Cluster, store: Store, engine: AsyncEngine, fake_atlas: FakeAtlas
) -> None:
    org = fake_atlas.add_org("Acme")
    federation = fake_atlas.add_federation([org["id"]])["id"]
    landed, unreadable, never_sent = (fake_atlas.add_idp(federation)["id"] for _ in range(3))

    (victim,) = await cluster.start("replica-a", lease_seconds=LEASE, sweep_seconds=SWEEP)
    # Real requests (command, modal with the Atlas preview, submission) so execution re-reads the target.
    deleted = await cluster.request(victim, f"delete-idp {federation} {landed}", reason="crash: the call lands")
    revoked = await cluster.request(victim, f"revoke-jwks {federation} {unreadable}", reason="crash: no read tells")
    stopped = await cluster.request(victim, f"delete-idp {federation} {never_sent}", reason="crash: before the call")
    requests = [deleted, revoked, stopped]

    # Atlas holds the two write calls; the third execution is stuck in its pre-execution re-read, so
    # its replica dies before sending anything.
    delete_call = fake_atlas.hold("DELETE", rf"/identityProviders/{landed}$")
    revoke_call = fake_atlas.hold("DELETE", rf"/identityProviders/{unreadable}/jwks$")
    reread = fake_atlas.hold("GET", rf"/identityProviders/{never_sent}$")
    for one in requests:
        assert (await cluster.post(victim, cluster.approve_click(one))).status == 200
    await asyncio.gather(delete_call.wait_arrived(10), revoke_call.wait_arrived(10), reread.wait_arrived(10))

    survivors = await cluster.start("replica-b", "replica-c", lease_seconds=LEASE, sweep_seconds=SWEEP)
    # Longer than a lease plus a sweep: the live executor's heartbeat keeps its executions its own.
    await asyncio.sleep(LEASE + 2 * SWEEP)
    ids = [one.request_id for one in requests]
    assert await state_counts(engine, ids) == {"executing": 3}
    for one in requests:
        current = await store.get(one.request_id)
        assert current.executor_id == "replica-a"
        assert current.lease_until is not None and current.lease_until > datetime.now(UTC)

    victim.signal(signal.SIGKILL)
    assert await victim.wait_exit(5) == -signal.SIGKILL
    # Atlas finishes the delete the dead replica had sent; the revoke stays unanswered.
    delete_call.release()

    await wait_states(engine, ids, done=TERMINAL, timeout=20, what="stale-lease resolution")
    by_id = {one.request_id: await store.get(one.request_id) for one in requests}

    assert by_id[deleted.request_id].state is RequestState.SUCCEEDED
    outcome = by_id[deleted.request_id].outcome
    assert outcome is not None and outcome.ok
    assert "Confirmed by reading Atlas after the executing replica (replica-a) vanished" in outcome.summary
    assert "the identity provider is gone" in outcome.summary
    assert landed not in fake_atlas.idps

    assert by_id[revoked.request_id].state is RequestState.UNKNOWN
    outcome = by_id[revoked.request_id].outcome
    assert outcome is not None and outcome.outcome_unknown and "no Atlas read can tell" in outcome.summary

    assert by_id[stopped.request_id].state is RequestState.FAILED
    outcome = by_id[stopped.request_id].outcome
    assert outcome is not None and "did not take effect" in outcome.summary and outcome.retry_safe
    assert never_sent in fake_atlas.idps

    # Exactly what reached Atlas: one delete, one revoke, nothing for the request stopped before its call.
    assert atlas_writes(fake_atlas) == {
        f"{V2}/federationSettings/{federation}/identityProviders/{landed}": 1,
        f"{V2}/federationSettings/{federation}/identityProviders/{unreadable}/jwks": 1,
    }

    expected_posts = {
        deleted.request_id: "Succeeded.* Confirmed by reading Atlas after the executing replica",
        revoked.request_id: "Unknown.* The replica executing this (replica-a) stopped before reporting",
        stopped.request_id: "Failed.* The replica executing this (replica-a) stopped before reporting",
    }
    survivor_names = {replica.name for replica in survivors}
    for one in requests:
        # One resolution, by one surviving replica's sweeper, audited as a stale-lease resolution.
        audit = await store.list_audit(request_id=one.request_id)
        endings = [e for e in audit if e.event in {"succeeded", "failed", "unknown"}]
        assert len(endings) == 1, endings
        assert endings[0].actor_id in survivor_names
        assert endings[0].detail["resolution"] == "stale-lease"
        assert endings[0].detail["stale_executor_id"] == "replica-a"
        # One post saying so in the request's thread, and the message shows the final state.
        thread = cluster.thread(one)
        resolutions = [text for text in thread if "replica-a" in text]
        assert len(resolutions) == 1, thread
        assert expected_posts[one.request_id] in resolutions[0]
        assert "atlas_approve" not in str(cluster.last_update(one)["blocks"])
    assert "Activity Feed" in cluster.thread(revoked)[-1]
    assert all(replica.alive for replica in survivors)
    assert (await state_counts(engine)).get("executing", 0) == 0

"""SIGTERM during executions: the replica takes no new work, finishes what it can within the drain
deadline, hands back what has not reached Atlas yet, and exits 0."""

from __future__ import annotations

import asyncio
import signal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.requests import RequestState
from bot.store import Store
from tests.fakes.fake_atlas import FakeAtlas
from tests.replicas.cluster import Cluster, atlas_writes, wait_states

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LEASE = 3.0
SWEEP = 0.5
DRAIN = 3.0
V2 = "/api/atlas/v2"
DONE = "Done. Atlas accepted the request."


async def test_sigterm_finishes_or_hands_back_in_flight_executions_and_exits_0(
    cluster: Cluster, store: Store, engine: AsyncEngine, fake_atlas: FakeAtlas
) -> None:
    org = fake_atlas.add_org("Acme")
    federation = fake_atlas.add_federation([org["id"]])["id"]
    in_atlas, not_yet = (fake_atlas.add_idp(federation)["id"] for _ in range(2))

    (leaving,) = await cluster.start("replica-a", lease_seconds=LEASE, sweep_seconds=SWEEP, drain_seconds=DRAIN)
    finishes = await cluster.request(leaving, f"delete-idp {federation} {in_atlas}", reason="drain: finish it")
    handed = await cluster.request(leaving, f"delete-idp {federation} {not_yet}", reason="drain: hand it back")
    # One execution waits on its Atlas call; the other is still re-reading its target before the call.
    call = fake_atlas.hold("DELETE", rf"/identityProviders/{in_atlas}$")
    reread = fake_atlas.hold("GET", rf"/identityProviders/{not_yet}$")
    for one in (finishes, handed):
        assert (await cluster.post(leaving, cluster.approve_click(one))).status == 200
    await asyncio.gather(call.wait_arrived(10), reread.wait_arrived(10))
    assert (await store.get(finishes.request_id)).executor_id == "replica-a"
    assert (await store.get(handed.request_id)).executor_id == "replica-a"
    (staying,) = await cluster.start("replica-b", lease_seconds=LEASE, sweep_seconds=SWEEP)

    loop = asyncio.get_running_loop()
    sigterm_at = loop.time()
    leaving.signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    assert leaving.alive, "it drains instead of dying"
    assert await cluster.healthz(leaving) is None, "it stopped listening: no new work reaches it"
    call.release()  # Atlas answers the call in flight; the re-read stays stuck past the deadline

    code = await leaving.wait_exit(DRAIN + 10)
    took = loop.time() - sigterm_at
    assert code == 0, leaving.log()
    assert took < DRAIN + 5, f"exited {took:.1f}s after SIGTERM"

    # The call in flight was finished by the leaving replica itself, and reported.
    done = await store.get(finishes.request_id)
    assert (done.state, done.executor_id) == (RequestState.SUCCEEDED, "replica-a")
    assert sum(DONE in text for text in cluster.thread(finishes)) == 1
    # The one that had not reached Atlas went back to approved, and the other replica ran it once.
    await wait_states(engine, [handed.request_id], done=[RequestState.SUCCEEDED], timeout=15, what="hand-back")
    rerun = await store.get(handed.request_id)
    assert rerun.executor_id == "replica-b"
    trail = [(e.event, e.actor_id) for e in await store.list_audit(request_id=handed.request_id)]
    assert trail[-4:] == [
        ("executing", "replica-a"),
        ("released", "replica-a"),
        ("executing", "replica-b"),
        ("succeeded", "replica-b"),
    ]
    await cluster.fake_slack.wait_for(
        "chat.postMessage", predicate=lambda c: c.args.get("thread_ts") == handed.message_ts and DONE in str(c.args)
    )
    assert sum(DONE in text for text in cluster.thread(handed)) == 1
    assert atlas_writes(fake_atlas) == {
        f"{V2}/federationSettings/{federation}/identityProviders/{in_atlas}": 1,
        f"{V2}/federationSettings/{federation}/identityProviders/{not_yet}": 1,
    }
    log = leaving.log(200)
    assert "shutting down" in log and "1 executions still running at the drain deadline" in log
    assert "Traceback" not in log
    assert staying.alive

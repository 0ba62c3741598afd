"""The database goes away for a few seconds under load: clear answers meanwhile, nothing lost or run
twice, and the replicas serve again by themselves afterwards.

The bots reach PostgreSQL through a TCP proxy in this process; cutting it refuses new connections and
resets the live ones, as a database restart or a network blip would, without touching the shared server.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.requests import RequestState
from bot.store import UNAVAILABLE_MESSAGE, Store
from tests.fakes.fake_atlas import FakeAtlas
from tests.fakes.fake_slack import FakeSlack
from tests.replicas.cluster import (
    Cluster,
    Requested,
    atlas_writes,
    seed_requests,
    state_counts,
    wait_states,
    wait_until,
)
from tests.replicas.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

OUTAGE_SECONDS = 3.0
ATLAS_SECONDS = 1.0
TERMINAL = [RequestState.SUCCEEDED, RequestState.FAILED, RequestState.UNKNOWN]
UNREACHABLE = UNAVAILABLE_MESSAGE.split(";")[0]  # "The database is unreachable"


@pytest.fixture
async def proxy(pg_url: str) -> AsyncIterator[TcpProxy]:
    upstream = make_url(pg_url)
    proxy = TcpProxy(upstream.host or "127.0.0.1", upstream.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


def _ephemerals(fake_slack: FakeSlack, fragment: str) -> int:
    return sum(fragment in str(post.body) for post in fake_slack.response_url_posts)


async def test_database_cut_under_load_loses_nothing_and_recovers(
    cluster: Cluster,
    proxy: TcpProxy,
    pg_url: str,
    store: Store,
    engine: AsyncEngine,
    fake_atlas: FakeAtlas,
    fake_slack: FakeSlack,
) -> None:
    org = fake_atlas.add_org("Acme")
    federation = fake_atlas.add_federation([org["id"]])["id"]
    project = fake_atlas.add_project(org["id"], "payments")["id"]
    targets: list[tuple[str, dict[str, str]]] = []
    for n in range(20):
        idp = fake_atlas.add_idp(federation)["id"]
        targets.append(("delete-idp", {"federation_settings_id": federation, "identity_provider_id": idp}))
        fake_atlas.add_cluster(project, f"cluster-{n:03d}", grant_type="CLUSTER_DATABASE_LOGS")
        targets.append(("revoke-employee-access", {"group_id": project, "cluster_name": f"cluster-{n:03d}"}))
    late_idp = fake_atlas.add_idp(federation)["id"]

    via_proxy = make_url(pg_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    replicas = await cluster.start("replica-a", "replica-b", lease_seconds=5, sweep_seconds=0.5, database_url=via_proxy)
    seeded = await seed_requests(store, fake_slack, targets)
    before, during, after = seeded[:15], seeded[15:30], seeded[30:]

    async def approve(ones: list[Requested]) -> None:
        answers = await asyncio.gather(
            *(cluster.post(replicas[n % 2], cluster.approve_click(one)) for n, one in enumerate(ones))
        )
        assert {a.status for a in answers} == {200}, "Slack always gets its ack, database or not"

    # Load: approvals land and executions start on both replicas (Atlas takes its time to answer), and
    # the database goes away while they wait on Atlas: their outcomes must be saved once it is back.
    fake_atlas.delay("DELETE", r"/identityProviders/[0-9a-f]{24}$", ATLAS_SECONDS, times=len(before))
    fake_atlas.delay("POST", r":revokeMongoDBEmployeeAccess$", ATLAS_SECONDS, times=len(before))
    await approve(before)

    async def half_executing() -> bool:
        counts = await state_counts(engine, [one.request_id for one in before])
        return counts.get("executing", 0) >= len(before) // 2

    await wait_until(half_executing, timeout=15, what="executions waiting on Atlas")
    fake_atlas.clear_faults()
    dropped = await proxy.cut()
    cut_at = asyncio.get_running_loop().time()

    # While it is away: clicks and a command are acknowledged and answered with a clear message.
    await approve(during)
    answer, _ = await cluster.command(replicas[0], f"delete-idp {federation} {late_idp}")
    assert answer.status == 200
    assert [await cluster.healthz(r) for r in replicas] == [503, 503]

    async def everyone_told() -> bool:
        return _ephemerals(fake_slack, UNREACHABLE) >= len(during) + 1

    await wait_until(everyone_told, timeout=10, what="a clear answer to every click and command during the outage")
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (asyncio.get_running_loop().time() - cut_at)))
    assert all(r.alive for r in replicas), "the outage crashed a replica"

    # Back: the replicas serve again by themselves.
    await proxy.restore()
    for replica in replicas:
        await cluster.wait_healthy(replica, timeout=10)
    # People click again where they were told nothing happened; new requests come in.
    pending = [one for one in before + during if (await store.get(one.request_id)).state is RequestState.PENDING]
    await approve(pending + after)
    fresh = await cluster.request(replicas[1], f"delete-idp {federation} {late_idp}", reason="after the outage")
    await approve([fresh])

    everything = [*seeded, fresh]
    ids = [one.request_id for one in everything]
    counts = await wait_states(engine, ids, done=TERMINAL, timeout=45, what="after the outage")
    assert sum((await state_counts(engine)).values()) == len(everything), "every request is still in the store"

    writes = atlas_writes(fake_atlas)
    assert max(writes.values()) == 1, "nothing ran twice"
    by_state: Counter[str] = Counter()
    for one in everything:
        request = await store.get(one.request_id)
        by_state[request.state.value] += 1
        path = [p for p in writes if request.target.get("identity_provider_id", "@") in p]
        path += [p for p in writes if f"/clusters/{request.target.get('cluster_name', '@')}:" in p]
        if request.state is RequestState.SUCCEEDED:
            assert len(path) == 1, (request.action, request.target, request.outcome)
        else:
            # Only a claim whose COMMIT reply the cut swallowed can end here: nothing was sent, and a
            # fresh read of Atlas said so.
            assert request.state is RequestState.FAILED and not path, (request.state, request.outcome)
            assert request.outcome is not None and request.outcome.error_code == "EXECUTOR_VANISHED"
    assert by_state["succeeded"] >= len(everything) - 2, by_state
    assert counts == by_state
    assert fake_atlas.count("deleteIdp") + fake_atlas.count("revokeEmployeeAccess") == sum(writes.values())
    assert all(r.alive for r in replicas)
    assert [await cluster.healthz(r) for r in replicas] == [200, 200]
    assert _ephemerals(fake_slack, "went wrong") == 0, "every failure had a clear cause"
    print(
        f"\ndatabase outage: {dropped} connections reset, {OUTAGE_SECONDS:.0f}s away; "
        f"{len(everything)} requests end {dict(by_state)}; {sum(writes.values())} Atlas writes; "
        f"{_ephemerals(fake_slack, UNREACHABLE)} 'database is unreachable' answers"
    )

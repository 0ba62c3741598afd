"""Three replicas, the same Approve click delivered to all of them several times: one Atlas call each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.requests import RequestState
from bot.store import Store, action_requests
from tests.fakes.fake_atlas import FakeAtlas
from tests.fakes.fake_slack import FakeSlack, FakeSlackCall
from tests.replicas.cluster import (
    SIGNING_SECRET,
    Cluster,
    Requested,
    atlas_writes,
    audit_counts,
    seed_requests,
    wait_states,
)
from tests.slack_requests import sign

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PER_ACTION = 70  # x 3 actions = 210 requests
CLICKS_PER_REPLICA = 3
REQUESTS_IN_FLIGHT = 12

V2 = "/api/atlas/v2"
DONE = "Done. Atlas accepted the request."


def _seed_atlas(fake: FakeAtlas) -> tuple[list[tuple[str, dict[str, str]]], list[str]]:
    """Targets for 3 x PER_ACTION requests and, in the same order, the path each one's Atlas write hits."""
    org = fake.add_org("Acme")
    federation = fake.add_federation([org["id"]])["id"]
    project = fake.add_project(org["id"], "payments")["id"]
    targets: list[tuple[str, dict[str, str]]] = []
    paths: list[str] = []
    for n in range(PER_ACTION):
        idp = fake.add_idp(federation, display_name=f"delete-me-{n}")["id"]
        targets.append(("delete-idp", {"federation_settings_id": federation, "identity_provider_id": idp}))
        paths.append(f"{V2}/federationSettings/{federation}/identityProviders/{idp}")
        idp = fake.add_idp(federation, display_name=f"rotate-me-{n}")["id"]
        targets.append(("revoke-jwks", {"federation_settings_id": federation, "identity_provider_id": idp}))
        paths.append(f"{V2}/federationSettings/{federation}/identityProviders/{idp}/jwks")
        cluster = f"cluster-{n:03d}"
        fake.add_cluster(project, cluster, grant_type="CLUSTER_DATABASE_LOGS")
        targets.append(("revoke-employee-access", {"group_id": project, "cluster_name": cluster}))
        paths.append(f"{V2}/groups/{project}/clusters/{cluster}:revokeMongoDBEmployeeAccess")
    return targets, paths


async def test_identical_clicks_on_three_replicas_call_atlas_once_per_request(
    cluster: Cluster, store: Store, engine: AsyncEngine, fake_atlas: FakeAtlas, fake_slack: FakeSlack
) -> None:
    targets, paths = _seed_atlas(fake_atlas)
    replicas, requested = await asyncio.gather(
        cluster.start("replica-a", "replica-b", "replica-c", lease_seconds=30, sweep_seconds=1),
        seed_requests(store, fake_slack, targets),
    )
    assert len(requested) == 3 * PER_ACTION >= 200

    # Every request's click: one body, signed once, delivered CLICKS_PER_REPLICA times to every replica
    # at the same moment (Slack retries, double clicks and a load balancer fanning out, all at once).
    # REQUESTS_IN_FLIGHT requests race at a time: a slot frees once that request's approval is in, so
    # the test measures races, not how a 2-core machine copes with thousands of queued clicks.
    started = time.perf_counter()
    gate = asyncio.Semaphore(REQUESTS_IN_FLIGHT)
    statuses: list[int] = []

    def approval_posted(one: Requested) -> Callable[[FakeSlackCall], bool]:
        return lambda c: c.args.get("thread_ts") == one.message_ts and "approved (1 of 1)" in str(c.args.get("text"))

    async def click_everywhere(one: Requested) -> None:
        body = cluster.approve_click(one)
        headers = sign(body, SIGNING_SECRET)
        async with gate:
            responses = await asyncio.gather(
                *(
                    cluster.post(replica, body, headers=headers)
                    for replica in replicas
                    for _ in range(CLICKS_PER_REPLICA)
                )
            )
            await fake_slack.wait_for("chat.postMessage", timeout=30, predicate=approval_posted(one))
        statuses.extend(r.status for r in responses)

    await asyncio.gather(*(click_everywhere(one) for one in requested))
    clicked = time.perf_counter() - started
    clicks = len(statuses)
    assert clicks == len(requested) * len(replicas) * CLICKS_PER_REPLICA
    assert set(statuses) == {200}, "every delivery is acknowledged"

    ids = [one.request_id for one in requested]
    counts = await wait_states(engine, ids, done=[RequestState.SUCCEEDED], timeout=60, what="exactly-once run")
    settled = time.perf_counter() - started
    assert counts == {"succeeded": len(requested)}

    def result_posts() -> dict[str, int]:
        tally: dict[str, int] = {}
        for call in fake_slack.calls_to("chat.postMessage"):
            if DONE in str(call.args.get("text")):
                ts = str(call.args.get("thread_ts"))
                tally[ts] = tally.get(ts, 0) + 1
        return tally

    await fake_slack.wait_for(
        "chat.postMessage", count=len(requested), timeout=20, predicate=lambda c: DONE in str(c.args.get("text"))
    )
    await asyncio.sleep(1.0)  # late duplicates, if there were any, would land by now
    elapsed = time.perf_counter() - started

    # Atlas: exactly one write per request, on exactly its target.
    writes = atlas_writes(fake_atlas)
    assert writes == {path: 1 for path in paths}
    # Slack: exactly one result post and one approval post in every thread, and at most one
    # "executing" post (none where the outcome was saved before that report's turn: the result's
    # post then carries the approval line, see ChatOps._announce_execution).
    posts = result_posts()
    assert posts == {one.message_ts: 1 for one in requested}
    for one in requested:
        thread = cluster.thread(one)
        assert sum("Executing in Atlas now" in text for text in thread) <= 1, thread
        assert sum("approved (1 of 1)" in text for text in thread) == 1, thread
    # The database: one counted approval, one claim and one outcome per request.
    audit = await audit_counts(engine)
    for one in requested:
        for event in ("approval-counted", "approved", "executing", "succeeded"):
            assert audit[(one.request_id, event)] == 1, (one.request_id, event)
    # Every replica was in the race, and more than one of them won some.
    async with engine.connect() as conn:
        executors = {row[0] for row in (await conn.execute(select(action_requests.c.executor_id))).all()}
    assert executors <= {"replica-a", "replica-b", "replica-c"}
    assert len(executors) >= 2, executors
    assert all(replica.alive for replica in replicas)
    assert not [p for p in fake_slack.response_url_posts if "went wrong" in str(p.body)]
    print(
        f"\nexactly-once: {len(requested)} requests, {clicks} identical clicks "
        f"({clicks - len(requested)} duplicates) over {len(replicas)} replicas, "
        f"{sum(writes.values())} Atlas writes, executors {sorted(executors)}; clicks sent in {clicked:.1f}s, "
        f"all succeeded at {settled:.1f}s, all posted at {elapsed:.1f}s"
    )

"""bot.store on real databases (SQLite and PostgreSQL): transitions, audit, secrets, races, outages."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import SQLITE_IMMEDIATE, create_engine
from bot.errors import IllegalTransition, RequestNotFound, StaleRequest, StoreUnavailable
from bot.preview import Fact, Preview, preview_unavailable
from bot.requests import TRANSITIONS, ActionRequest, NewActionRequest, Outcome, RequestState
from bot.store import (
    COMMIT_UNCERTAIN_MESSAGE,
    EVIDENCE_EVENT,
    UNAVAILABLE_MESSAGE,
    ApprovalResult,
    ExecutionClaim,
    Store,
    action_requests,
    approvals,
    audit_events,
)
from tests.db import Backend, ManualClock, drop_database, make_database

SEALED = "sealed:v1:ZmFrZS1jaXBoZXJ0ZXh0LW5vdC1hLXRva2Vu"
OK = Outcome(ok=True, status=202, summary="Cluster paused.")
FAILED = Outcome(ok=False, status=409, error_code="CANNOT_PAUSE", detail="Atlas says no", summary="Refused.")
UNKNOWN = Outcome(ok=False, outcome_unknown=True, summary="No answer from Atlas.")
OUTCOMES = {RequestState.SUCCEEDED: OK, RequestState.FAILED: FAILED, RequestState.UNKNOWN: UNKNOWN}


def new_request(clock: ManualClock, **overrides: Any) -> NewActionRequest:
    fields: dict[str, Any] = {
        "action": "revoke-token",
        "target": {"project_id": "5f1d", "token_id": "tok-1"},
        "target_label": "token tok-1 in project 5f1d",
        "requester_id": "U_REQ",
        "requester_team_id": "T1",
        "channel_id": "C_OPS",
        "reason": "leaked in a public gist",
        "approvals_required": 2,
        "expires_at": clock() + timedelta(hours=1),
        "secret_fingerprint": "sha256:ab12",
        "sealed_secret": SEALED,
        "profile": "prod",
    }
    fields.update(overrides)
    return NewActionRequest(**fields)


async def approved(store: Store, clock: ManualClock, **overrides: Any) -> ActionRequest:
    request = await store.create_request(new_request(clock, **overrides))
    await store.approve(request.id, approver_id="U_A1")
    return (await store.approve(request.id, approver_id="U_A2")).request


async def executing(store: Store, clock: ManualClock, executor: str = "replica-1", lease: float = 30) -> ActionRequest:
    request = await approved(store, clock)
    claimed = await store.claim_execution(request.id, executor_id=executor, lease_seconds=lease)
    assert claimed is not None
    return claimed


async def reach(store: Store, clock: ManualClock, state: RequestState) -> ActionRequest:
    """A fresh request in ``state``, reached through the store's own transitions."""
    if state is RequestState.PENDING:
        return await store.create_request(new_request(clock))
    if state is RequestState.APPROVED:
        return await approved(store, clock)
    if state is RequestState.EXECUTING:
        return await executing(store, clock)
    if state in OUTCOMES:
        request = await executing(store, clock)
        finished = await store.finish(request.id, executor_id="replica-1", state=state, outcome=OUTCOMES[state])
        assert finished is not None
        return finished
    if state is RequestState.REJECTED:
        request = await store.create_request(new_request(clock))
        return await store.reject(request.id, user_id="U_A1")
    if state is RequestState.CANCELLED:
        request = await store.create_request(new_request(clock))
        return await store.cancel(request.id, user_id="U_REQ")
    assert state is RequestState.EXPIRED
    request = await store.create_request(new_request(clock, expires_at=clock() + timedelta(seconds=5)))
    clock.advance(seconds=10)
    expired = await store.expire_due()
    clock.advance(seconds=-10)
    assert [r.id for r in expired] == [request.id]
    return expired[0]


async def events(store: Store, request_id: str) -> list[str]:
    return [event.event for event in await store.list_audit(request_id=request_id)]


async def approval_rows(engine: AsyncEngine, request_id: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(approvals).where(approvals.c.request_id == request_id)
        )
    return int(count or 0)


# --------------------------------------------------------------------------------------------------
# create / get / simple writes


async def test_create_and_get_round_trip(store: Store, clock: ManualClock) -> None:
    expires = (clock() + timedelta(hours=2)).astimezone(timezone(timedelta(hours=2)))  # any zone in
    created = await store.create_request(new_request(clock, expires_at=expires))
    assert len(created.id) == 32
    assert created.state is RequestState.PENDING
    assert created.approvers == ()
    assert created.created_at == created.updated_at == clock()
    assert created.expires_at == expires
    assert created.expires_at.tzinfo == UTC  # UTC out, on both backends
    assert created.created_at.tzinfo == UTC
    assert created.target == {"project_id": "5f1d", "token_id": "tok-1"}
    assert created.sealed_secret == SEALED
    assert created.profile == "prod"
    assert created.outcome is None
    assert await store.get(created.id) == created
    assert await events(store, created.id) == ["requested"]


async def test_a_preview_read_from_atlas_leaves_its_evidence_with_the_request(store: Store, clock: ManualClock) -> None:
    read = Preview(
        facts=(Fact(label="Identity provider", value="Okta (65a1)"),),
        evidence={"identityProvider": {"id": "65a1", "issuerUri": "https://example.okta.com"}},
    )
    created = await store.create_request(new_request(clock, preview=read, preview_digest=read.digest))
    trail = await store.list_audit(request_id=created.id)
    assert [e.event for e in trail] == ["requested", EVIDENCE_EVENT]
    evidence = trail[1]
    assert evidence.detail == {"digest": read.digest, "evidence": read.evidence}
    assert (evidence.actor_id, evidence.channel_id, evidence.at) == ("U_REQ", "C_OPS", created.created_at)
    # The request's own row keeps the preview without the evidence (the trail has it).
    assert created.preview == read.model_copy(update={"evidence": {}})

    # Atlas could not be read: nothing to keep as evidence.
    unread = await store.create_request(new_request(clock, preview=preview_unavailable("no answer within 8 s")))
    assert await events(store, unread.id) == ["requested"]


async def test_a_request_whose_evidence_cannot_be_written_is_not_stored(
    store: Store, clock: ManualClock, db_engine: AsyncEngine
) -> None:
    # Not JSON: the evidence row fails inside the request's transaction, so the request goes with it.
    broken = Preview(evidence={"identityProvider": object()})
    with pytest.raises(Exception, match="JSON serializable"):
        await store.create_request(new_request(clock, preview=broken, preview_digest=broken.digest))
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(action_requests)) == 0
        assert await conn.scalar(select(func.count()).select_from(audit_events)) == 0


async def test_get_unknown_raises_not_found(store: Store) -> None:
    with pytest.raises(RequestNotFound, match="no request"):
        await store.get("0" * 32)


async def test_naive_datetimes_are_refused(store: Store, clock: ManualClock, db_engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.create_request(new_request(clock, expires_at=datetime(2030, 1, 1)))
    naive = Store(db_engine, clock=lambda: datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        await naive.expire_due()


async def test_set_message(store: Store, clock: ManualClock) -> None:
    request = await store.create_request(new_request(clock))
    await store.set_message(request.id, channel="C_OPS", ts="1700000000.000100")
    stored = await store.get(request.id)
    assert (stored.message_channel, stored.message_ts) == ("C_OPS", "1700000000.000100")
    with pytest.raises(RequestNotFound):
        await store.set_message("nope", channel="C", ts="1")


async def test_ping(store: Store) -> None:
    await store.ping()


# --------------------------------------------------------------------------------------------------
# approvals


async def test_approval_flow_counts_in_order(store: Store, clock: ManualClock) -> None:
    request = await store.create_request(new_request(clock))
    first = await store.approve(request.id, approver_id="U_B")
    assert (first.counted, first.became_approved) == (True, False)
    assert first.request.state is RequestState.PENDING
    assert first.request.approvers == ("U_B",)
    assert first.request.approvals_missing == 1
    clock.advance(seconds=1)
    second = await store.approve(request.id, approver_id="U_A")
    assert (second.counted, second.became_approved) == (True, True)
    assert second.request.state is RequestState.APPROVED
    assert second.request.approvers == ("U_B", "U_A")  # approval order, not alphabetical
    assert second.request.updated_at == clock()
    assert await events(store, request.id) == ["requested", "approval-counted", "approval-counted", "approved"]
    audit = await store.list_audit(request_id=request.id)
    assert [e.actor_id for e in audit] == ["U_REQ", "U_B", "U_A", "U_A"]
    assert {e.channel_id for e in audit} == {"C_OPS"}
    assert audit[2].detail == {"approval_count": 2, "approvals_required": 2}
    assert audit[3].detail == {"approvers": ["U_B", "U_A"]}


async def test_single_approval_suffices_when_one_is_required(store: Store, clock: ManualClock) -> None:
    request = await store.create_request(new_request(clock, approvals_required=1))
    result = await store.approve(request.id, approver_id="U_A")
    assert (result.counted, result.became_approved, result.request.state) == (True, True, RequestState.APPROVED)


async def test_duplicate_approver_counts_once(store: Store, clock: ManualClock, db_engine: AsyncEngine) -> None:
    request = await store.create_request(new_request(clock, approvals_required=3))
    await store.approve(request.id, approver_id="U_A")
    again = await store.approve(request.id, approver_id="U_A")
    assert (again.counted, again.became_approved) == (False, False)
    assert again.request.approvers == ("U_A",)
    assert again.request.state is RequestState.PENDING
    assert await approval_rows(db_engine, request.id) == 1
    assert await events(store, request.id) == ["requested", "approval-counted"]


async def test_duplicate_approver_after_approval_is_not_an_error(store: Store, clock: ManualClock) -> None:
    request = await approved(store, clock)
    again = await store.approve(request.id, approver_id="U_A1")
    assert (again.counted, again.became_approved) == (False, False)
    assert again.request.state is RequestState.APPROVED


async def test_last_approval_with_a_claim_leases_the_request_in_the_same_transaction(
    store: Store, clock: ManualClock
) -> None:
    request = await store.create_request(new_request(clock))
    claim = ExecutionClaim(executor_id="replica-1", lease_seconds=30)
    first = await store.approve(request.id, approver_id="U_B", claim=claim)
    # Not the last approval: nothing to claim yet.
    assert (first.counted, first.became_approved, first.claimed) == (True, False, False)
    assert (first.request.state, first.request.executor_id) == (RequestState.PENDING, None)
    clock.advance(seconds=1)
    last = await store.approve(request.id, approver_id="U_A", claim=claim)
    assert (last.counted, last.became_approved, last.claimed) == (True, True, True)
    assert last.request.state is RequestState.EXECUTING
    assert last.request.executor_id == "replica-1"
    assert last.request.lease_until == clock() + timedelta(seconds=30)
    assert last.request.approvers == ("U_B", "U_A")
    assert last.request.sealed_secret == SEALED  # the executor still needs it
    assert await store.get(request.id) == last.request
    audit = await store.list_audit(request_id=request.id)
    assert [(e.event, e.actor_id) for e in audit] == [
        ("requested", "U_REQ"),
        ("approval-counted", "U_B"),
        ("approval-counted", "U_A"),
        ("approved", "U_A"),
        ("executing", "replica-1"),
    ]
    assert [e.detail for e in audit[2:]] == [
        {"approval_count": 2, "approvals_required": 2},
        {"approvers": ["U_B", "U_A"]},
        {"lease_seconds": 30},
    ]
    assert {e.channel_id for e in audit} == {"C_OPS"}
    # It is claimed: no other executor can take it.
    assert await store.claim_execution(request.id, executor_id="replica-2", lease_seconds=30) is None


async def test_claim_with_an_approval_that_does_not_count_changes_nothing(store: Store, clock: ManualClock) -> None:
    request = await approved(store, clock)
    again = await store.approve(request.id, approver_id="U_A1", claim=ExecutionClaim("replica-1", 30))
    assert (again.counted, again.became_approved, again.claimed) == (False, False, False)
    assert (again.request.state, again.request.executor_id) == (RequestState.APPROVED, None)
    assert "executing" not in await events(store, request.id)


async def test_approval_claim_argument_checks(store: Store, clock: ManualClock) -> None:
    request = await store.create_request(new_request(clock, approvals_required=1))
    with pytest.raises(ValueError, match="positive"):
        await store.approve(request.id, approver_id="U_A", claim=ExecutionClaim("replica-1", 0))
    assert (await store.get(request.id)).state is RequestState.PENDING


async def test_approve_expired_request_is_stale(store: Store, clock: ManualClock, db_engine: AsyncEngine) -> None:
    request = await store.create_request(new_request(clock))
    clock.set(request.expires_at)  # expires_at itself is already too late
    with pytest.raises(StaleRequest, match="expired") as caught:
        await store.approve(request.id, approver_id="U_A")
    assert not isinstance(caught.value, IllegalTransition)  # pending -> approved is legal, just too late
    assert (await store.get(request.id)).state is RequestState.PENDING
    assert await approval_rows(db_engine, request.id) == 0
    assert await events(store, request.id) == ["requested"]


@pytest.mark.parametrize(
    ("state", "wording"),
    [
        (RequestState.APPROVED, "already approved"),
        (RequestState.REJECTED, "rejected"),
        (RequestState.CANCELLED, "cancelled"),
        (RequestState.EXPIRED, "expired"),
        (RequestState.EXECUTING, "already running"),
        (RequestState.SUCCEEDED, "already run"),
    ],
)
async def test_approve_when_no_longer_pending(
    store: Store, clock: ManualClock, db_engine: AsyncEngine, state: RequestState, wording: str
) -> None:
    request = await reach(store, clock, state)
    rows_before = await approval_rows(db_engine, request.id)
    trail_before = await events(store, request.id)
    with pytest.raises(IllegalTransition, match=wording) as caught:
        await store.approve(request.id, approver_id="U_LATE")
    assert caught.value.current == state.value
    assert caught.value.target == "approved"
    assert (await store.get(request.id)).state is state
    assert await approval_rows(db_engine, request.id) == rows_before
    assert await events(store, request.id) == trail_before


async def test_approve_unknown_request(store: Store) -> None:
    with pytest.raises(RequestNotFound):
        await store.approve("f" * 32, approver_id="U_A")


# --------------------------------------------------------------------------------------------------
# reject / cancel


async def test_reject_pending(store: Store, clock: ManualClock) -> None:
    request = await store.create_request(new_request(clock))
    rejected = await store.reject(request.id, user_id="U_A", note="wrong cluster")
    assert rejected.state is RequestState.REJECTED
    assert rejected.sealed_secret is None
    audit = await store.list_audit(request_id=request.id)
    assert [(e.event, e.actor_id, e.detail) for e in audit][-1] == ("rejected", "U_A", {"note": "wrong cluster"})


async def test_reject_after_approval_is_stale(store: Store, clock: ManualClock) -> None:
    request = await approved(store, clock)
    with pytest.raises(StaleRequest, match="already approved"):
        await store.reject(request.id, user_id="U_A")
    assert (await store.get(request.id)).state is RequestState.APPROVED


@pytest.mark.parametrize("state", [RequestState.PENDING, RequestState.APPROVED])
async def test_cancel(store: Store, clock: ManualClock, state: RequestState) -> None:
    request = await reach(store, clock, state)
    cancelled = await store.cancel(request.id, user_id="U_REQ")
    assert cancelled.state is RequestState.CANCELLED
    assert cancelled.sealed_secret is None
    assert (await store.list_audit(request_id=request.id))[-1].actor_id == "U_REQ"


async def test_cancel_while_executing_is_illegal(store: Store, clock: ManualClock) -> None:
    request = await executing(store, clock)
    with pytest.raises(IllegalTransition, match="already running"):
        await store.cancel(request.id, user_id="U_REQ")


# --------------------------------------------------------------------------------------------------
# execution


async def test_claim_execution(store: Store, clock: ManualClock) -> None:
    request = await approved(store, clock)
    claimed = await store.claim_execution(request.id, executor_id="replica-1", lease_seconds=30)
    assert claimed is not None
    assert claimed.state is RequestState.EXECUTING
    assert claimed.executor_id == "replica-1"
    assert claimed.lease_until == clock() + timedelta(seconds=30)
    assert claimed.sealed_secret == SEALED  # the executor still needs it
    assert claimed.approvers == ("U_A1", "U_A2")
    assert await store.claim_execution(request.id, executor_id="replica-2", lease_seconds=30) is None
    assert (await store.get(request.id)).executor_id == "replica-1"
    assert (await events(store, request.id)).count("executing") == 1


async def test_claim_pending_is_illegal(store: Store, clock: ManualClock) -> None:
    request = await store.create_request(new_request(clock))
    with pytest.raises(IllegalTransition, match="waiting for approval"):
        await store.claim_execution(request.id, executor_id="replica-1", lease_seconds=30)


@pytest.mark.parametrize(
    "state", [RequestState.CANCELLED, RequestState.EXPIRED, RequestState.SUCCEEDED, RequestState.UNKNOWN]
)
async def test_claim_ended_request_returns_none(store: Store, clock: ManualClock, state: RequestState) -> None:
    request = await reach(store, clock, state)
    assert await store.claim_execution(request.id, executor_id="replica-9", lease_seconds=30) is None


async def test_claim_after_expiry_time_returns_none(store: Store, clock: ManualClock) -> None:
    request = await approved(store, clock)
    clock.set(request.expires_at + timedelta(seconds=1))
    assert await store.claim_execution(request.id, executor_id="replica-1", lease_seconds=30) is None
    assert (await store.get(request.id)).state is RequestState.APPROVED  # the sweeper expires it


async def test_claim_argument_checks(store: Store, clock: ManualClock) -> None:
    with pytest.raises(RequestNotFound):
        await store.claim_execution("x" * 32, executor_id="replica-1", lease_seconds=30)
    request = await approved(store, clock)
    with pytest.raises(ValueError, match="positive"):
        await store.claim_execution(request.id, executor_id="replica-1", lease_seconds=0)


async def test_renew_lease(store: Store, clock: ManualClock) -> None:
    request = await executing(store, clock, lease=10)
    clock.advance(seconds=60)  # lapsed, but nobody resolved it: the executor may still renew
    assert await store.renew_lease(request.id, executor_id="replica-1", lease_seconds=30) is True
    assert (await store.get(request.id)).lease_until == clock() + timedelta(seconds=30)
    assert await store.renew_lease(request.id, executor_id="replica-2", lease_seconds=30) is False
    await store.finish(request.id, executor_id="replica-1", state=RequestState.SUCCEEDED, outcome=OK)
    assert await store.renew_lease(request.id, executor_id="replica-1", lease_seconds=30) is False


@pytest.mark.parametrize("state", [RequestState.SUCCEEDED, RequestState.FAILED, RequestState.UNKNOWN])
async def test_finish(store: Store, clock: ManualClock, state: RequestState) -> None:
    request = await executing(store, clock)
    outcome = OUTCOMES[state]
    assert await store.finish(request.id, executor_id="replica-2", state=state, outcome=outcome) is None
    finished = await store.finish(request.id, executor_id="replica-1", state=state, outcome=outcome)
    assert finished is not None
    assert finished.state is state
    assert finished.outcome == outcome
    assert finished.sealed_secret is None
    assert finished.lease_until is None
    assert finished.executor_id == "replica-1"
    last = (await store.list_audit(request_id=request.id))[-1]
    assert (last.event, last.actor_id) == (state.value, "replica-1")
    assert last.detail == {
        "ok": outcome.ok,
        "status": outcome.status,
        "error_code": outcome.error_code,
        "outcome_unknown": outcome.outcome_unknown,
    }
    # finishing twice does nothing
    assert await store.finish(request.id, executor_id="replica-1", state=state, outcome=outcome) is None


async def test_finish_with_a_non_outcome_state(store: Store, clock: ManualClock) -> None:
    request = await executing(store, clock)
    with pytest.raises(IllegalTransition):
        await store.finish(request.id, executor_id="replica-1", state=RequestState.CANCELLED, outcome=OK)
    with pytest.raises(ValueError, match="release"):
        await store.finish(request.id, executor_id="replica-1", state=RequestState.APPROVED, outcome=OK)
    assert (await store.get(request.id)).state is RequestState.EXECUTING
    with pytest.raises(RequestNotFound):
        await store.finish("y" * 32, executor_id="replica-1", state=RequestState.SUCCEEDED, outcome=OK)


async def test_release_hands_back(store: Store, clock: ManualClock) -> None:
    request = await executing(store, clock)
    assert await store.release(request.id, executor_id="replica-2") is False
    assert await store.release(request.id, executor_id="replica-1") is True
    back = await store.get(request.id)
    assert back.state is RequestState.APPROVED
    assert (back.executor_id, back.lease_until) == (None, None)
    assert back.sealed_secret == SEALED
    assert await store.release(request.id, executor_id="replica-1") is False
    again = await store.claim_execution(request.id, executor_id="replica-2", lease_seconds=30)
    assert again is not None
    assert again.executor_id == "replica-2"
    assert (await events(store, request.id))[-3:] == ["executing", "released", "executing"]


# --------------------------------------------------------------------------------------------------
# sweeps


async def test_expire_due(store: Store, clock: ManualClock) -> None:
    soon = clock() + timedelta(minutes=5)
    pending = await store.create_request(new_request(clock, expires_at=soon))
    approved_one = await approved(store, clock, expires_at=soon)
    later = await store.create_request(new_request(clock, expires_at=clock() + timedelta(hours=1)))
    running = await executing(store, clock)
    assert await store.expire_due() == []

    clock.advance(minutes=5)
    expired = await store.expire_due()
    assert {r.id for r in expired} == {pending.id, approved_one.id}
    assert all(r.state is RequestState.EXPIRED and r.sealed_secret is None for r in expired)
    assert (await store.get(later.id)).state is RequestState.PENDING
    assert (await store.get(running.id)).state is RequestState.EXECUTING  # leases, not expiry, govern it
    assert await store.expire_due() == []
    trail = await store.list_audit(request_id=approved_one.id)
    assert (trail[-1].event, trail[-1].actor_id, trail[-1].detail) == ("expired", None, {"from_state": "approved"})


async def test_stale_executions_and_resolve(store: Store, clock: ManualClock) -> None:
    stale = await executing(store, clock, executor="replica-1", lease=10)
    fresh = await executing(store, clock, executor="replica-2", lease=600)
    assert await store.stale_executions() == []
    # a lease that has not lapsed cannot be resolved
    assert (
        await store.resolve_stale(
            stale.id, executor_id="replica-1", state=RequestState.UNKNOWN, outcome=UNKNOWN, resolver_id="sweeper"
        )
        is None
    )
    clock.advance(seconds=11)
    assert [r.id for r in await store.stale_executions()] == [stale.id]
    # wrong executor: somebody else's claim
    assert (
        await store.resolve_stale(
            stale.id, executor_id="replica-9", state=RequestState.UNKNOWN, outcome=UNKNOWN, resolver_id="sweeper"
        )
        is None
    )
    resolved = await store.resolve_stale(
        stale.id, executor_id="replica-1", state=RequestState.UNKNOWN, outcome=UNKNOWN, resolver_id="sweeper"
    )
    assert resolved is not None
    assert resolved.state is RequestState.UNKNOWN
    assert resolved.sealed_secret is None
    assert resolved.outcome == UNKNOWN
    last = (await store.list_audit(request_id=stale.id))[-1]
    assert (last.event, last.actor_id) == ("unknown", "sweeper")
    assert last.detail["stale_executor_id"] == "replica-1"
    # the late executor cannot overwrite the resolution
    assert await store.finish(stale.id, executor_id="replica-1", state=RequestState.SUCCEEDED, outcome=OK) is None
    assert await store.stale_executions() == []
    assert (await store.get(fresh.id)).state is RequestState.EXECUTING


async def test_renewed_lease_beats_resolver(store: Store, clock: ManualClock) -> None:
    request = await executing(store, clock, lease=10)
    clock.advance(seconds=11)
    assert [r.id for r in await store.stale_executions()] == [request.id]
    assert await store.renew_lease(request.id, executor_id="replica-1", lease_seconds=30)
    assert (
        await store.resolve_stale(
            request.id, executor_id="replica-1", state=RequestState.UNKNOWN, outcome=UNKNOWN, resolver_id="sweeper"
        )
        is None
    )
    assert (await store.get(request.id)).state is RequestState.EXECUTING


async def test_stale_executions_limit_and_order(store: Store, clock: ManualClock) -> None:
    first = await executing(store, clock, executor="r1", lease=5)
    second = await executing(store, clock, executor="r2", lease=1)
    clock.advance(seconds=6)
    assert [r.id for r in await store.stale_executions()] == [second.id, first.id]
    assert [r.id for r in await store.stale_executions(limit=1)] == [second.id]


# --------------------------------------------------------------------------------------------------
# every transition, legal and illegal, against the table in bot.requests

ALL_STATES = list(RequestState)


async def _attempt(store: Store, clock: ManualClock, request: ActionRequest, op: str) -> RequestState | None:
    """Run ``op`` on ``request``; return the state it moved to, or None if it refused."""
    rid = request.id
    try:
        if op == "approve":
            result = await store.approve(rid, approver_id="U_NEW")
            return result.request.state if result.became_approved else None
        if op == "reject":
            return (await store.reject(rid, user_id="U_X")).state
        if op == "cancel":
            return (await store.cancel(rid, user_id="U_X")).state
        if op == "claim":
            claimed = await store.claim_execution(rid, executor_id="replica-x", lease_seconds=30)
            return claimed.state if claimed else None
        if op in ("succeeded", "failed", "unknown"):
            state = RequestState(op)
            executor = request.executor_id or "replica-x"
            done = await store.finish(rid, executor_id=executor, state=state, outcome=OUTCOMES[state])
            return done.state if done else None
        if op == "release":
            return RequestState.APPROVED if await store.release(rid, executor_id=request.executor_id or "r") else None
        assert op == "expire"
        clock.advance(days=1)
        try:
            return RequestState.EXPIRED if rid in {r.id for r in await store.expire_due()} else None
        finally:
            clock.advance(days=-1)
    except IllegalTransition:
        return None


OPS = {
    "approve": RequestState.APPROVED,
    "reject": RequestState.REJECTED,
    "cancel": RequestState.CANCELLED,
    "claim": RequestState.EXECUTING,
    "succeeded": RequestState.SUCCEEDED,
    "failed": RequestState.FAILED,
    "unknown": RequestState.UNKNOWN,
    "release": RequestState.APPROVED,
    "expire": RequestState.EXPIRED,
}


@pytest.mark.parametrize("state", ALL_STATES, ids=[s.value for s in ALL_STATES])
async def test_transition_matrix(store: Store, clock: ManualClock, state: RequestState) -> None:
    for op, target in OPS.items():
        request = await reach(store, clock, state)
        assert request.state is state
        # approve only moves pending on (approved -> approved is not an approval); release only executing.
        legal = target in TRANSITIONS[state] and not (
            (op == "approve" and state is not RequestState.PENDING)
            or (op == "release" and state is not RequestState.EXECUTING)
        )
        # a single extra approval completes a request that has one of two already
        if op == "approve" and legal:
            await store.approve(request.id, approver_id="U_FIRST")
        audit_before = len(await store.list_audit(request_id=request.id))
        moved_to = await _attempt(store, clock, request, op)
        after = await store.get(request.id)
        if legal:
            assert moved_to is target, f"{state.value} --{op}--> should reach {target.value}"
            assert after.state is target
            assert len(await store.list_audit(request_id=request.id)) > audit_before
        else:
            assert moved_to is None, f"{state.value} --{op}--> must be refused"
            assert after.state is state
            assert len(await store.list_audit(request_id=request.id)) == audit_before
        if after.state.is_terminal:
            assert after.sealed_secret is None
        else:
            assert after.sealed_secret == SEALED


# --------------------------------------------------------------------------------------------------
# secrets


TERMINAL_PATHS: dict[str, Callable[[Store, ManualClock], Awaitable[ActionRequest | None]]] = {}


def _path(name: str) -> Callable[[Any], Any]:
    def register(fn: Callable[[Store, ManualClock], Awaitable[ActionRequest | None]]) -> Any:
        TERMINAL_PATHS[name] = fn
        return fn

    return register


@_path("finish-succeeded")
async def _finish_ok(store: Store, clock: ManualClock) -> ActionRequest | None:
    r = await executing(store, clock)
    return await store.finish(r.id, executor_id="replica-1", state=RequestState.SUCCEEDED, outcome=OK)


@_path("finish-failed")
async def _finish_failed(store: Store, clock: ManualClock) -> ActionRequest | None:
    r = await executing(store, clock)
    return await store.finish(r.id, executor_id="replica-1", state=RequestState.FAILED, outcome=FAILED)


@_path("finish-unknown")
async def _finish_unknown(store: Store, clock: ManualClock) -> ActionRequest | None:
    r = await executing(store, clock)
    return await store.finish(r.id, executor_id="replica-1", state=RequestState.UNKNOWN, outcome=UNKNOWN)


@_path("expire-pending")
async def _expire_pending(store: Store, clock: ManualClock) -> ActionRequest | None:
    r = await store.create_request(new_request(clock))
    clock.set(r.expires_at)
    return (await store.expire_due())[0]


@_path("expire-approved")
async def _expire_approved(store: Store, clock: ManualClock) -> ActionRequest | None:
    r = await approved(store, clock)
    clock.set(r.expires_at)
    return (await store.expire_due())[0]


@_path("reject")
async def _reject(store: Store, clock: ManualClock) -> ActionRequest | None:
    r = await store.create_request(new_request(clock))
    return await store.reject(r.id, user_id="U_A")


@_path("cancel-pending")
async def _cancel_pending(store: Store, clock: ManualClock) -> ActionRequest | None:
    r = await store.create_request(new_request(clock))
    return await store.cancel(r.id, user_id="U_REQ")


@_path("cancel-approved")
async def _cancel_approved(store: Store, clock: ManualClock) -> ActionRequest | None:
    r = await approved(store, clock)
    return await store.cancel(r.id, user_id="U_REQ")


@_path("resolve-stale")
async def _resolve(store: Store, clock: ManualClock) -> ActionRequest | None:
    r = await executing(store, clock, lease=1)
    clock.advance(seconds=2)
    return await store.resolve_stale(
        r.id, executor_id="replica-1", state=RequestState.UNKNOWN, outcome=UNKNOWN, resolver_id="sweeper"
    )


@pytest.mark.parametrize("path", sorted(TERMINAL_PATHS))
async def test_sealed_secret_wiped_on_every_terminal_path(
    store: Store, clock: ManualClock, db_engine: AsyncEngine, path: str
) -> None:
    ended = await TERMINAL_PATHS[path](store, clock)
    assert ended is not None
    assert ended.state.is_terminal
    assert ended.sealed_secret is None
    assert ended.secret_fingerprint == "sha256:ab12"  # the fingerprint stays for humans
    async with db_engine.connect() as conn:
        raw = await conn.scalar(select(action_requests.c.sealed_secret).where(action_requests.c.id == ended.id))
        assert raw is None
        # the sealed secret never reached the audit trail, on any path
        details = (await conn.execute(select(audit_events.c.detail))).scalars().all()
    assert SEALED not in json.dumps(details)


# --------------------------------------------------------------------------------------------------
# listing, counting, audit


async def test_list_requests(store: Store, clock: ManualClock) -> None:
    a = await store.create_request(new_request(clock))
    clock.advance(seconds=1)
    b = await store.create_request(new_request(clock, channel_id="C_OTHER"))
    clock.advance(seconds=1)
    c = await approved(store, clock)
    clock.advance(seconds=1)
    d = await store.create_request(new_request(clock))
    await store.reject(d.id, user_id="U_A")

    open_states = {RequestState.PENDING, RequestState.APPROVED}
    assert [r.id for r in await store.list_requests(states=open_states)] == [c.id, b.id, a.id]
    assert [r.id for r in await store.list_requests(states=open_states, channel_id="C_OPS")] == [c.id, a.id]
    assert [r.id for r in await store.list_requests(states=open_states, limit=2)] == [c.id, b.id]
    assert [r.id for r in await store.list_requests(states=[RequestState.REJECTED])] == [d.id]
    assert await store.list_requests(states=[]) == []
    listed = await store.list_requests(states=[RequestState.APPROVED])
    assert listed[0].approvers == ("U_A1", "U_A2")


async def test_count_requests(store: Store, clock: ManualClock) -> None:
    assert await store.count_requests(states=[RequestState.PENDING]) == 0
    for _ in range(3):
        await store.create_request(new_request(clock))
    await approved(store, clock)
    rejected = await store.create_request(new_request(clock))
    await store.reject(rejected.id, user_id="U_A")
    assert await store.count_requests(states=[RequestState.PENDING]) == 3
    assert await store.count_requests(states={RequestState.PENDING, RequestState.APPROVED}) == 4
    assert await store.count_requests(states=[RequestState.REJECTED]) == 1
    assert await store.count_requests(states=[]) == 0


async def test_count_recent_by_counts_requester_and_channel_in_one_read(store: Store, clock: ManualClock) -> None:
    start = clock()
    await store.create_request(new_request(clock))  # U_REQ in the default channel
    clock.advance(minutes=10)
    await store.create_request(new_request(clock, requester_id="U_OTHER"))
    await store.create_request(new_request(clock, channel_id="C_OTHER"))
    default_channel = (await store.list_requests(states=list(RequestState)))[-1].channel_id
    assert await store.count_recent_by(since=start, requester_id="U_REQ", channel_id=default_channel) == (2, 2)
    assert await store.count_recent_by(since=start, requester_id="U_OTHER", channel_id="C_OTHER") == (1, 1)
    later = start + timedelta(minutes=5)
    assert await store.count_recent_by(since=later, requester_id="U_REQ", channel_id=default_channel) == (1, 1)
    assert await store.count_recent_by(since=later, requester_id="U_NOBODY", channel_id="C_NONE") == (0, 0)


async def test_one_statement_reads_open_no_transaction_on_postgres(
    db_backend: Backend, store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command's rate-limit count and every click's read of its request are one statement, so
    on PostgreSQL they run in autocommit: no BEGIN and COMMIT round trips around them. Writes still
    open a transaction, and a read after a write sees it."""
    if db_backend == "sqlite":
        pytest.skip("SQLite keeps its own BEGIN for every transaction (bot.db)")
    import asyncpg

    opened: list[int] = []
    transaction = asyncpg.Connection.transaction

    def counted(self: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
        opened.append(1)
        return transaction(self, *args, **kwargs)

    await store.ping()  # the engine's first connection runs SQLAlchemy's dialect set-up queries
    monkeypatch.setattr(asyncpg.Connection, "transaction", counted)
    request = await store.create_request(new_request(clock))
    assert len(opened) == 1  # the write
    assert (await store.get(request.id)).id == request.id
    since = clock() - timedelta(hours=1)
    assert await store.count_recent_by(since=since, requester_id=request.requester_id, channel_id="C_NONE") == (1, 0)
    assert len(opened) == 1
    await store.approve(request.id, approver_id="U_A")
    assert len(opened) == 2
    assert (await store.get(request.id)).approvers == ("U_A",)
    assert len(opened) == 2


async def test_record_event_and_list_audit(store: Store, clock: ManualClock) -> None:
    await store.record_event(event="denied", actor_id="U_EVE", channel_id="C_OPS", detail={"why": "not an approver"})
    request = await store.create_request(new_request(clock))
    await store.record_event(event="invalid-command", actor_id="U_EVE", request_id=request.id)
    everything = await store.list_audit()
    assert [e.event for e in everything] == ["denied", "requested", "invalid-command"]
    assert everything[0].request_id is None
    assert everything[0].detail == {"why": "not an approver"}
    assert everything[2].detail == {}
    assert everything[0].at == clock()
    assert [e.event for e in await store.list_audit(limit=2)] == ["requested", "invalid-command"]  # most recent
    assert [e.event for e in await store.list_audit(request_id=request.id)] == ["requested", "invalid-command"]
    with pytest.raises(RequestNotFound):
        await store.record_event(event="denied", actor_id="U_EVE", request_id="no-such-request")


# --------------------------------------------------------------------------------------------------
# concurrency on a real connection pool


@pytest.fixture
async def wide_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """Enough connections that every concurrent call really has its own transaction."""
    engine = create_engine(database_url, pool_size=10, max_overflow=20, pool_timeout=30)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def racing_store(wide_engine: AsyncEngine, clock: ManualClock) -> Store:
    return Store(wide_engine, clock=clock)


async def _gather(calls: Sequence[Awaitable[Any]]) -> list[Any]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, StaleRequest)]
    assert not unexpected, unexpected
    return results


@pytest.mark.parametrize("round_", range(3))
async def test_concurrent_distinct_approvers_approve_exactly_once(
    racing_store: Store, clock: ManualClock, wide_engine: AsyncEngine, round_: int
) -> None:
    request = await racing_store.create_request(new_request(clock, approvals_required=2))
    results = await _gather([racing_store.approve(request.id, approver_id=f"U_{i}") for i in range(10)])
    outcomes = [r for r in results if isinstance(r, ApprovalResult)]
    assert sum(r.became_approved for r in outcomes) == 1
    assert sum(r.counted for r in outcomes) == 2
    # everyone else lost cleanly, told it is already approved
    assert all("already approved" in str(r) for r in results if isinstance(r, StaleRequest))
    final = await racing_store.get(request.id)
    assert final.state is RequestState.APPROVED
    assert len(final.approvers) == 2
    assert await approval_rows(wide_engine, request.id) == 2
    async with wide_engine.connect() as conn:
        count = await conn.scalar(select(action_requests.c.approval_count).where(action_requests.c.id == request.id))
    assert count == 2
    assert Counter(await events(racing_store, request.id)) == Counter(
        {"requested": 1, "approval-counted": 2, "approved": 1}
    )


async def test_concurrent_approvals_with_claims_and_claims_have_one_executor(
    racing_store: Store, clock: ManualClock
) -> None:
    request = await racing_store.create_request(new_request(clock, approvals_required=2))
    approvals_ = [
        racing_store.approve(request.id, approver_id=f"U_{i}", claim=ExecutionClaim(f"replica-a{i}", 30))
        for i in range(10)
    ]
    # A sweeper's claims racing the approvals find the request pending (an illegal claim, refused
    # loudly) or already executing: never approved and free to take.
    sweeps = [racing_store.claim_execution(request.id, executor_id=f"replica-s{i}", lease_seconds=30) for i in range(5)]
    results = await asyncio.gather(*approvals_, *sweeps, return_exceptions=True)
    unexpected = [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, StaleRequest | IllegalTransition)
    ]
    assert not unexpected, unexpected
    outcomes = [r for r in results[:10] if isinstance(r, ApprovalResult)]
    assert sum(r.became_approved for r in outcomes) == 1
    (winner,) = [r.request for r in outcomes if r.claimed]
    # The request was never approved-and-unclaimed in between, so no sweeper claim could win.
    assert [r for r in results[10:] if isinstance(r, ActionRequest)] == []
    final = await racing_store.get(request.id)
    assert (final.state, final.executor_id) == (RequestState.EXECUTING, winner.executor_id)
    assert Counter(await events(racing_store, request.id)) == Counter(
        {"requested": 1, "approval-counted": 2, "approved": 1, "executing": 1}
    )


async def test_concurrent_clicks_by_one_approver_count_once(
    racing_store: Store, clock: ManualClock, wide_engine: AsyncEngine
) -> None:
    request = await racing_store.create_request(new_request(clock, approvals_required=2))
    results = await _gather([racing_store.approve(request.id, approver_id="U_SAME") for _ in range(10)])
    assert all(isinstance(r, ApprovalResult) for r in results)
    assert sum(r.counted for r in results) == 1
    assert not any(r.became_approved for r in results)
    final = await racing_store.get(request.id)
    assert (final.state, final.approvers) == (RequestState.PENDING, ("U_SAME",))
    assert await approval_rows(wide_engine, request.id) == 1


async def test_concurrent_mixed_clicks(racing_store: Store, clock: ManualClock, wide_engine: AsyncEngine) -> None:
    request = await racing_store.create_request(new_request(clock, approvals_required=2))
    calls = [racing_store.approve(request.id, approver_id=f"U_{i % 2}") for i in range(12)]
    results = await _gather(calls)
    outcomes = [r for r in results if isinstance(r, ApprovalResult)]
    assert sum(r.became_approved for r in outcomes) == 1
    assert sum(r.counted for r in outcomes) == 2
    final = await racing_store.get(request.id)
    assert final.state is RequestState.APPROVED
    assert sorted(final.approvers) == ["U_0", "U_1"]
    assert await approval_rows(wide_engine, request.id) == 2


async def test_concurrent_claims_have_one_winner(racing_store: Store, clock: ManualClock) -> None:
    request = await approved(racing_store, clock)
    results = await _gather(
        [racing_store.claim_execution(request.id, executor_id=f"replica-{i}", lease_seconds=30) for i in range(20)]
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    final = await racing_store.get(request.id)
    assert final.state is RequestState.EXECUTING
    assert final.executor_id == winners[0].executor_id
    assert (await events(racing_store, request.id)).count("executing") == 1


async def test_concurrent_sweepers_expire_each_request_once(racing_store: Store, clock: ManualClock) -> None:
    due = clock() + timedelta(minutes=1)
    ids = set()
    for i in range(12):
        if i % 3 == 0:
            ids.add((await approved(racing_store, clock, expires_at=due)).id)
        else:
            ids.add((await racing_store.create_request(new_request(clock, expires_at=due))).id)
    clock.advance(minutes=1)
    results = await _gather([racing_store.expire_due() for _ in range(5)])
    expired_ids = [r.id for batch in results for r in batch]
    assert sorted(expired_ids) == sorted(ids)  # every one expired, none twice
    audit = await racing_store.list_audit(limit=1000)
    assert Counter(e.request_id for e in audit if e.event == "expired") == Counter(dict.fromkeys(ids, 1))


async def test_concurrent_resolvers_one_wins(racing_store: Store, clock: ManualClock) -> None:
    request = await executing(racing_store, clock, lease=5)
    clock.advance(seconds=6)
    results = await _gather(
        [
            racing_store.resolve_stale(
                request.id,
                executor_id="replica-1",
                state=RequestState.UNKNOWN,
                outcome=UNKNOWN,
                resolver_id=f"sweeper-{i}",
            )
            for i in range(5)
        ]
    )
    assert len([r for r in results if r is not None]) == 1
    assert (await events(racing_store, request.id)).count("unknown") == 1


@pytest.mark.parametrize("round_", range(3))
async def test_renew_races_resolver_never_both(racing_store: Store, clock: ManualClock, round_: int) -> None:
    request = await executing(racing_store, clock, lease=5)
    clock.advance(seconds=6)
    renewed, resolved = await _gather(
        [
            racing_store.renew_lease(request.id, executor_id="replica-1", lease_seconds=30),
            racing_store.resolve_stale(
                request.id, executor_id="replica-1", state=RequestState.UNKNOWN, outcome=UNKNOWN, resolver_id="s"
            ),
        ]
    )
    final = await racing_store.get(request.id)
    assert renewed != (resolved is not None)  # exactly one of them took effect
    assert final.state is (RequestState.EXECUTING if renewed else RequestState.UNKNOWN)


async def test_claim_races_cancel(racing_store: Store, clock: ManualClock) -> None:
    request = await approved(racing_store, clock)
    claimed, cancelled = await asyncio.gather(
        racing_store.claim_execution(request.id, executor_id="replica-1", lease_seconds=30),
        racing_store.cancel(request.id, user_id="U_REQ"),
        return_exceptions=True,
    )
    final = await racing_store.get(request.id)
    if claimed is not None:
        assert isinstance(cancelled, IllegalTransition)
        assert final.state is RequestState.EXECUTING
    else:
        assert isinstance(cancelled, ActionRequest)
        assert final.state is RequestState.CANCELLED


# --------------------------------------------------------------------------------------------------
# outages


def _assert_unavailable(exc: StoreUnavailable, secret: str = "hunter2") -> None:
    assert str(exc).startswith("The database is unreachable; nothing was changed.")
    assert exc.__cause__ is not None
    assert secret not in str(exc)
    assert secret not in repr(exc.__cause__)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bot:hunter2@127.0.0.1:1/atlas",
        "sqlite:////nonexistent-directory/hunter2/atlas.db",
    ],
    ids=["postgresql-closed-port", "sqlite-unopenable-file"],
)
async def test_unreachable_database(url: str, clock: ManualClock) -> None:
    engine = create_engine(url, connect_timeout=2)
    store = Store(engine, clock=clock)
    calls: list[Callable[[], Awaitable[Any]]] = [
        store.ping,
        lambda: store.get("a" * 32),
        lambda: store.create_request(new_request(clock)),
        lambda: store.approve("a" * 32, approver_id="U_A"),
        lambda: store.claim_execution("a" * 32, executor_id="r", lease_seconds=5),
        store.expire_due,
        lambda: store.record_event(event="denied", actor_id="U"),
    ]
    try:
        for call in calls:
            with pytest.raises(StoreUnavailable) as caught:
                await call()
            if "sqlite" in url:
                assert str(caught.value).startswith("The database is unreachable; nothing was changed.")
            else:
                _assert_unavailable(caught.value)
    finally:
        await engine.dispose()
        await _join_aiosqlite_threads()


async def _join_aiosqlite_threads() -> None:
    # After a failed connect aiosqlite stops its worker thread asynchronously, and the thread then
    # reports back to the event loop. Wait for it here, or it may find this test's loop already closed.
    workers = [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]
    for worker in workers:
        await asyncio.to_thread(worker.join, 5)


async def test_pool_exhaustion_is_unavailable(database_url: str, clock: ManualClock) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    store = Store(engine, clock=clock)
    try:
        async with engine.connect():
            with pytest.raises(StoreUnavailable) as caught:
                await store.ping()
        assert isinstance(caught.value.__cause__, sa_exc.TimeoutError)
        await store.ping()  # and it recovers once a connection is free
    finally:
        await engine.dispose()


async def test_lock_held_too_long_is_unavailable(database_url: str, db_backend: Backend, clock: ManualClock) -> None:
    """A replica frozen mid-transaction: the others fail clearly within the timeout instead of hanging."""
    engine = create_engine(database_url, statement_timeout=0.5, sqlite_busy_timeout_ms=300)
    store = Store(engine, clock=clock)
    try:
        request = await store.create_request(new_request(clock))
        async with engine.connect() as blocker:
            await blocker.execution_options(**{SQLITE_IMMEDIATE: True})
            await blocker.begin()
            await blocker.execute(
                action_requests.update().where(action_requests.c.id == request.id).values(message_ts="held")
            )
            with pytest.raises(StoreUnavailable):
                await asyncio.wait_for(store.approve(request.id, approver_id="U_A"), timeout=10)
            await blocker.rollback()
        assert (await store.approve(request.id, approver_id="U_A")).counted
    finally:
        await engine.dispose()


async def test_database_vanishing_is_unavailable(db_backend: Backend, clock: ManualClock) -> None:
    if db_backend == "sqlite":
        pytest.skip("an open SQLite file cannot vanish from under its connections")
    url = await make_database(db_backend)
    engine = create_engine(url)
    store = Store(engine, clock=clock)
    try:
        await store.ping()
        await drop_database(url)  # WITH (FORCE) also terminates our pooled connection
        with pytest.raises(StoreUnavailable):
            await store.get("a" * 32)
    finally:
        await engine.dispose()
        await drop_database(url)


async def test_programming_errors_are_not_disguised_as_outages(db_backend: Backend, clock: ManualClock) -> None:
    url = await make_database(db_backend, migrate=False)  # no tables: a bug, not an outage
    engine = create_engine(url)
    try:
        with pytest.raises(sa_exc.DBAPIError) as caught:
            await Store(engine, clock=clock).get("a" * 32)
        assert not isinstance(caught.value, StoreUnavailable)
    finally:
        await engine.dispose()
        await drop_database(url)


def test_messages_are_for_people() -> None:
    assert UNAVAILABLE_MESSAGE.startswith("The database is unreachable; nothing was changed.")
    assert "may or may not" in COMMIT_UNCERTAIN_MESSAGE


async def test_sqlite_write_transactions_begin_immediate(tmp_path: Any, clock: ManualClock) -> None:
    """Two writers never interleave on SQLite: the second waits for the first instead of failing."""
    url = await make_database("sqlite", directory=tmp_path)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(**{SQLITE_IMMEDIATE: True})
            await conn.begin()
            # BEGIN IMMEDIATE took the write lock up front: a plain write elsewhere must wait.
            other = create_engine(url, sqlite_busy_timeout_ms=100)
            try:
                with pytest.raises(StoreUnavailable):
                    await Store(other, clock=clock).record_event(event="x", actor_id=None)
            finally:
                await other.dispose()
            await conn.execute(text("SELECT 1"))
            await conn.rollback()
    finally:
        await engine.dispose()

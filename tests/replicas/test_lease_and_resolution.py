"""The pieces the replica tests rely on, in isolation: how a stale execution ends (pure), and the
lease an executor keeps, hands back and saves its outcome through (against a recording store)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from bot.errors import StoreUnavailable
from bot.lease import leased, persist
from bot.requests import ActionRequest, Outcome, RequestState
from bot.store import Store
from bot.sweeper import stale_resolution
from commands import load_registry

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _executing(action: str = "delete-idp") -> ActionRequest:
    return ActionRequest(
        id="0" * 32,
        action=action,
        target={"federation_settings_id": "a" * 24, "identity_provider_id": "b" * 24},
        target_label="IdP",
        requester_id="U0ALICE",
        requester_team_id="T0APP",
        channel_id="C0INCIDENT",
        reason="test",
        state=RequestState.EXECUTING,
        approvals_required=1,
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        executor_id="replica-a",
        lease_until=NOW,
    )


def test_a_read_showing_the_end_state_means_succeeded_and_says_how_it_was_known() -> None:
    spec = load_registry()["delete-idp"]
    state, outcome = stale_resolution(spec, _executing(), True)
    assert state is RequestState.SUCCEEDED and outcome.ok
    assert outcome.summary == (
        "Confirmed by reading Atlas after the executing replica (replica-a) vanished: "
        "Atlas shows that the identity provider is gone."
    )


def test_a_read_showing_no_change_means_failed_and_safe_to_request_again() -> None:
    spec = load_registry()["delete-idp"]
    state, outcome = stale_resolution(spec, _executing(), False)
    assert state is RequestState.FAILED and not outcome.ok and outcome.retry_safe
    assert "did not take effect" in outcome.summary and "replica-a" in outcome.summary


@pytest.mark.parametrize(("verified", "error", "says"), [(None, None, "no Atlas read can tell"), (None, "x", "(x)")])
def test_no_read_or_a_failed_read_means_unknown_with_what_to_check(
    verified: bool | None, error: str | None, says: str
) -> None:
    spec = load_registry()["revoke-jwks"]
    state, outcome = stale_resolution(spec, _executing("revoke-jwks"), verified, error)
    assert state is RequestState.UNKNOWN and outcome.outcome_unknown and not outcome.ok
    assert says in outcome.summary and "Activity Feed" in outcome.summary


async def test_persist_retries_through_a_blip_and_gives_up_after_its_budget() -> None:
    failures = iter([StoreUnavailable("down"), StoreUnavailable("down")])

    async def flaky() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "saved"

    assert await persist(flaky, within=2, first_delay=0.01) == "saved"

    async def down() -> str:
        raise StoreUnavailable("down")

    with pytest.raises(StoreUnavailable):
        await persist(down, within=0.05, first_delay=0.01)


class _Store:
    """Records the lease calls an executor makes."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.stored: ActionRequest | None = None

    async def renew_lease(self, request_id: str, *, executor_id: str, lease_seconds: float) -> bool:
        self.calls.append("renew")
        return True

    async def release(self, request_id: str, *, executor_id: str) -> bool:
        self.calls.append("release")
        return True

    async def finish(self, request_id: str, **kwargs: Any) -> ActionRequest | None:
        self.calls.append("finish")
        return None

    async def get(self, request_id: str) -> ActionRequest:
        assert self.stored is not None
        return self.stored


async def test_the_lease_is_renewed_while_working_and_handed_back_only_before_the_call() -> None:
    store = _Store()

    async def work(*, sent: bool) -> None:
        async with leased(cast(Store, store), "r1", executor_id="replica-a", lease_seconds=0.09) as lease:
            lease.sent = sent
            await asyncio.sleep(10)

    for sent in (False, True):
        task = asyncio.create_task(work(sent=sent))
        await asyncio.sleep(0.1)  # three renewals of a 0.09 s lease
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    first, second = store.calls[: store.calls.index("release") + 1], store.calls[store.calls.index("release") + 1 :]
    assert first.count("renew") >= 2 and first[-1] == "release"
    assert "renew" in second and "release" not in second


async def test_an_outcome_whose_commit_reply_was_lost_is_recognised_as_ours() -> None:
    store = _Store()
    outcome = Outcome(ok=True, summary="Atlas accepted the request.")
    store.stored = _executing().model_copy(update={"state": RequestState.SUCCEEDED, "outcome": outcome})
    async with leased(cast(Store, store), "r1", executor_id="replica-a", lease_seconds=30) as lease:
        lease.sent = True
        assert await lease.finish(state=RequestState.SUCCEEDED, outcome=outcome) == store.stored
        # A resolver's outcome differs from ours: then another replica ended it.
        other = Outcome(ok=False, outcome_unknown=True, summary="resolved elsewhere")
        assert await lease.finish(state=RequestState.UNKNOWN, outcome=other) is None

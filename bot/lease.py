"""An execution's lease: kept alive while its replica works, handed back if it stops before Atlas.

:meth:`bot.store.Store.claim_execution` leases a request to one replica (``lease_until``). Every
other replica's sweeper reads a lapsed lease as "that replica vanished" and resolves the request
(:mod:`bot.sweeper`), so a live executor renews the lease every third of its length for as long
as it works, however slow Atlas is.

If the work stops before the Atlas call was sent (an error, or shutdown cancelling it at its
deadline), nothing happened in Atlas: the request goes back to ``approved`` (``release``) for any
replica to claim. Once the call may have been sent, only an outcome ends the execution: the
executor's own (:meth:`Lease.finish`), or the stale-lease sweep's if the executor dies.

A database blip must not turn an outcome the executor knows into one a resolver has to guess, so
saving it is retried for as long as the lease would have lasted (:func:`persist`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from bot.errors import StoreUnavailable
from bot.requests import ActionRequest, Outcome, RequestState
from bot.store import Store

__all__ = ["HAND_BACK_SECONDS", "Lease", "leased", "persist"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a stopping executor keeps trying to hand a request back (shutdown waits about this long).
HAND_BACK_SECONDS = 4.0


async def persist(call: Callable[[], Awaitable[T]], *, within: float, first_delay: float = 0.25) -> T:
    """``await call()``, retried with backoff while the database is unavailable, for ``within`` seconds.

    Only for calls that are safe to repeat: the store's conditional transitions are.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    delay = first_delay
    while True:
        try:
            return await call()
        except StoreUnavailable:
            if loop.time() + delay > deadline:
                raise
            log.warning("database unavailable; retrying in %.2f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


class Lease:
    """The lease one replica holds on one request while it executes it."""

    def __init__(self, store: Store, request_id: str, *, executor_id: str, lease_seconds: float) -> None:
        self._store = store
        self._request_id = request_id
        self._executor_id = executor_id
        self._lease_seconds = lease_seconds
        # Set just before the Atlas call: from then on a hand-back could run the action twice.
        self.sent = False

    async def keep_alive(self) -> None:
        """Renew every third of the lease until cancelled, or until someone else holds the request."""
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                held = await self._store.renew_lease(
                    self._request_id, executor_id=self._executor_id, lease_seconds=self._lease_seconds
                )
            except StoreUnavailable:
                continue  # the next beat tries again; an expired lease is renewable until resolved
            if not held:
                log.warning("request %s: lease lost to a resolver", self._request_id[:8])
                return

    async def hand_back(self) -> bool:
        """executing -> approved; False when the database stayed away (the stale sweep resolves it)."""
        try:
            released = await persist(
                lambda: self._store.release(self._request_id, executor_id=self._executor_id),
                within=min(HAND_BACK_SECONDS, self._lease_seconds),
            )
        except StoreUnavailable:
            log.warning("request %s: could not hand it back; the stale-lease sweep resolves it", self._request_id[:8])
            return False
        if released:
            log.info("request %s: handed back before its Atlas call; any replica may run it", self._request_id[:8])
        return released

    async def finish(self, *, state: RequestState, outcome: Outcome) -> ActionRequest | None:
        """Save the outcome (retried through a database blip); None if a resolver ended it first."""
        finished = await persist(
            lambda: self._store.finish(self._request_id, executor_id=self._executor_id, state=state, outcome=outcome),
            within=self._lease_seconds,
        )
        if finished is not None:
            return finished
        # An attempt whose COMMIT was lost may have landed after all: then the stored outcome is ours.
        current = await persist(lambda: self._store.get(self._request_id), within=self._lease_seconds)
        return current if current.state is state and current.outcome == outcome else None


@asynccontextmanager
async def leased(store: Store, request_id: str, *, executor_id: str, lease_seconds: float) -> AsyncIterator[Lease]:
    """Keep the lease alive inside the block; leaving it early, before ``sent``, hands the request back."""
    lease = Lease(store, request_id, executor_id=executor_id, lease_seconds=lease_seconds)
    beat = asyncio.get_running_loop().create_task(lease.keep_alive())
    try:
        yield lease
    except BaseException:
        if not lease.sent:
            await lease.hand_back()
        raise
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat

"""The sweeper every replica runs: safe on all of them at once, because every change it makes
is a conditional transition that exactly one caller can win.

Each pass expires requests past their approval window, executes approved requests nobody has
claimed (their approver's replica died between the approval and the claim), and resolves
executions whose replica vanished (lease past its deadline) as ``unknown``, saying what to
check in the thread.
"""

from __future__ import annotations

import asyncio
import logging

from bot.errors import ChatOpsError
from bot.requests import Outcome, RequestState
from bot.service import ChatOps

__all__ = ["Sweeper"]

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, service: ChatOps, *, replica_id: str, interval_seconds: float) -> None:
        self._service = service
        self._replica_id = replica_id
        self._interval = interval_seconds

    async def run_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except ChatOpsError as exc:
                log.warning("sweep skipped: %s", exc.user_message)
            await asyncio.sleep(self._interval)

    async def sweep(self) -> None:
        service, store = self._service, self._service.store
        for expired in await store.expire_due():
            service.metrics.requests.labels(expired.action, "expired").inc()
            await service.post_in_thread(expired, ":hourglass: Expired without enough approvals. Nothing was run.")
            await service.refresh_message(expired)
        for approved in await store.list_requests(states=[RequestState.APPROVED], limit=20):
            await service.execute(approved.id)
        for stale in await store.stale_executions():
            outcome = Outcome(
                ok=False,
                outcome_unknown=True,
                summary=(
                    f"The replica executing this ({stale.executor_id}) stopped before reporting. The Atlas "
                    "call may or may not have happened: check the target in Atlas before requesting again."
                ),
            )
            resolved = await store.resolve_stale(
                stale.id,
                executor_id=stale.executor_id or "",
                state=RequestState.UNKNOWN,
                outcome=outcome,
                resolver_id=self._replica_id,
            )
            if resolved is not None:
                service.metrics.requests.labels(resolved.action, "unknown").inc()
                await service.post_in_thread(resolved, service.result_text(resolved))
                await service.refresh_message(resolved)
        pending = await store.list_requests(states=[RequestState.PENDING], limit=1000)
        service.metrics.pending.set(len(pending))

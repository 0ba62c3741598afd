"""The sweeper every replica runs: safe on all of them at once, because every change it makes
is a conditional transition that exactly one caller can win.

Each pass

* expires requests past their approval window;
* starts approved requests nobody has claimed (their approver's replica died, or handed them back
  while shutting down), as tracked background work so a draining replica waits for them;
* resolves executions whose replica vanished (lease past its deadline). Where a read of the target
  can tell the outcome (the action's ``verify``: IdP gone, grant gone, federation gone) Atlas is
  read again: the request ends ``succeeded`` (confirmed by that read) or ``failed`` (Atlas shows
  it did not take effect). Where no read can tell (revoke-jwks, revoke-token), or the read fails,
  it ends ``unknown`` and the thread says what to check. Nothing stays ``executing`` forever.

A failing pass is logged and the next one runs anyway: a dead sweeper would leave requests
``executing`` for good.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.actions import ActionSpec
from bot.atlas.errors import AtlasError
from bot.errors import ChatOpsError, InvalidCommand
from bot.requests import ActionRequest, Outcome, RequestState
from bot.service import ChatOps
from bot.views import escape_mrkdwn

__all__ = ["VERIFY_TIMEOUT_SECONDS", "Sweeper", "stale_resolution"]

log = logging.getLogger(__name__)

# One read of the target; past this the outcome is left unknown.
VERIFY_TIMEOUT_SECONDS = 8.0
# Approved-but-unclaimed requests started per pass.
APPROVED_PER_PASS = 20

_CHECK_BY_HAND = (
    "Check the target in Atlas (the organization's or project's Activity Feed shows the call if it landed) "
    "before requesting the action again."
)


def _vanished(request: ActionRequest) -> str:
    return f"The replica executing this ({request.executor_id or 'unknown'}) stopped before reporting"


def stale_resolution(
    spec: ActionSpec[Any] | None, request: ActionRequest, verified: bool | None, read_error: str | None = None
) -> tuple[RequestState, Outcome]:
    """How a stale execution ends, given what a fresh read of its target showed (pure).

    ``verified`` is the action's ``verify`` answer (None: no read can tell, or it failed with
    ``read_error``).
    """
    what = spec.verified_state if spec is not None and spec.verified_state else "the action took effect"
    if verified is True:
        summary = (
            f"Confirmed by reading Atlas after the executing replica ({request.executor_id}) vanished: "
            f"Atlas shows that {what}."
        )
        return RequestState.SUCCEEDED, Outcome(ok=True, summary=summary)
    if verified is False:
        summary = (
            f"{_vanished(request)}, and reading Atlas afterwards shows the action did not take effect "
            f"(Atlas does not show that {what}). Nothing changed; request it again if it is still needed."
        )
        return RequestState.FAILED, Outcome(
            ok=False, error_code="EXECUTOR_VANISHED", retry_safe=True, summary=summary, detail=summary
        )
    if read_error is not None:
        summary = (
            f"{_vanished(request)}, and reading the target back from Atlas failed ({read_error}). "
            f"The Atlas call may or may not have happened. {_CHECK_BY_HAND}"
        )
    else:
        summary = (
            f"{_vanished(request)}. The Atlas call may or may not have happened, and no Atlas read can tell "
            f"for this action. {_CHECK_BY_HAND}"
        )
    return RequestState.UNKNOWN, Outcome(
        ok=False, error_code="EXECUTOR_VANISHED", outcome_unknown=True, summary=summary, detail=summary
    )


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
            except Exception as exc:
                # Not swallowed: logged with its traceback, and the next pass still runs.
                log.error("sweep failed: %s", type(exc).__name__, exc_info=exc)
            await asyncio.sleep(self._interval)

    async def sweep(self) -> None:
        service, store = self._service, self._service.store
        for expired in await store.expire_due():
            service.metrics.requests.labels(expired.action, "expired").inc()
            await service.post_in_thread(expired, ":hourglass: Expired without enough approvals. Nothing was run.")
            await service.refresh_message(expired)
        for approved in await store.list_requests(states=[RequestState.APPROVED], limit=APPROVED_PER_PASS):
            service.spawn(service.execute(approved.id))
        for stale in await store.stale_executions():
            await self.resolve(stale)
        # A count, not the rows: with 10,000 pending requests, reading out 1,000 of them every pass
        # cost about 3% of the bot's CPU under load in bench/ (and the gauge stopped at 1,000).
        service.metrics.pending.set(await store.count_requests(states=[RequestState.PENDING]))

    async def _read_back(self, spec: ActionSpec[Any] | None, request: ActionRequest) -> tuple[bool | None, str | None]:
        """The action's ``verify`` answer for this target, or (None, why it could not be read)."""
        if spec is None or spec.verify is None:
            return None, None
        try:
            args = spec.validate(request.target)
            async with asyncio.timeout(VERIFY_TIMEOUT_SECONDS):
                return await spec.verify(self._service.atlas, args), None
        except AtlasError as exc:
            return None, f"{type(exc).__name__} {exc.status or ''} {exc.error_code or ''}".strip()
        except TimeoutError:
            return None, f"no answer within {VERIFY_TIMEOUT_SECONDS:.0f} s"
        except InvalidCommand:
            return None, "the stored target no longer validates"

    async def resolve(self, stale: ActionRequest) -> ActionRequest | None:
        """End one stale execution; None when its executor renewed or finished, or another sweeper won."""
        service = self._service
        spec = service.registry.get(stale.action)
        verified, read_error = await self._read_back(spec, stale)
        state, outcome = stale_resolution(spec, stale, verified, read_error)
        resolved = await service.store.resolve_stale(
            stale.id,
            executor_id=stale.executor_id or "",
            state=state,
            outcome=outcome,
            resolver_id=self._replica_id,
        )
        if resolved is None:
            return None
        log.warning(
            "request %s: executor %s vanished (lease lapsed); resolved as %s (%s)",
            resolved.short_id,
            stale.executor_id,
            resolved.state.value,
            "no read can tell" if verified is None and read_error is None else "after reading the target in Atlas",
        )
        service.metrics.requests.labels(resolved.action, resolved.state.value).inc()
        if resolved.state is RequestState.SUCCEEDED:
            text = f":white_check_mark: *Succeeded.* {escape_mrkdwn(outcome.summary)}"
        else:
            text = service.result_text(resolved)
        await service.post_in_thread(resolved, text)
        await service.refresh_message(resolved)
        return resolved

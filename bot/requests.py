"""The action request: what was asked, by whom, and where it stands.

Pure: no I/O. The store persists these values and applies transitions as conditional
updates (``UPDATE ... WHERE state = <from>``), so this module is the single source of
truth for which moves are legal; an illegal move raises :class:`IllegalTransition`.

    pending --approve(N reached)--> approved --claim--> executing --> succeeded
       |                                                    |------> failed
       |--reject--> rejected                                '------> unknown
       |--expire--> expired      (approved may also expire if nobody claims it)
       '--cancel--> cancelled
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import IllegalTransition
from bot.preview import Preview

__all__ = [
    "TERMINAL_STATES",
    "TRANSITIONS",
    "ActionRequest",
    "AuditEvent",
    "NewActionRequest",
    "Outcome",
    "RequestState",
    "check_transition",
]


class RequestState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[RequestState] = frozenset(
    {
        RequestState.SUCCEEDED,
        RequestState.FAILED,
        RequestState.UNKNOWN,
        RequestState.REJECTED,
        RequestState.EXPIRED,
        RequestState.CANCELLED,
    }
)

# from-state -> the states it may move to. Anything else is a bug or a race someone lost.
TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    RequestState.PENDING: frozenset(
        {RequestState.APPROVED, RequestState.REJECTED, RequestState.EXPIRED, RequestState.CANCELLED}
    ),
    RequestState.APPROVED: frozenset({RequestState.EXECUTING, RequestState.EXPIRED, RequestState.CANCELLED}),
    # executing -> approved is the graceful hand-back of a replica shutting down before it called Atlas.
    RequestState.EXECUTING: frozenset(
        {RequestState.SUCCEEDED, RequestState.FAILED, RequestState.UNKNOWN, RequestState.APPROVED}
    ),
    **{state: frozenset() for state in TERMINAL_STATES},
}


def check_transition(current: RequestState, target: RequestState) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> target`` is in the table."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current.value, target.value)


class Outcome(BaseModel):
    """What Atlas answered to the execution; stored with the request and shown in the thread."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    status: int | None = None
    error_code: str | None = None
    detail: str | None = None
    retry_safe: bool = False
    outcome_unknown: bool = False
    summary: str = ""


class NewActionRequest(BaseModel):
    """Everything known when a requester submits the confirmation modal."""

    model_config = ConfigDict(frozen=True)

    action: str
    target: dict[str, str]
    target_label: str
    requester_id: str
    requester_team_id: str
    channel_id: str
    reason: str
    approvals_required: int = Field(ge=1)
    expires_at: datetime
    # revoke-token only: a fingerprint for humans, and the token sealed with the bot's key
    # (never the token itself) until the request ends, when the store wipes it.
    secret_fingerprint: str | None = None
    sealed_secret: str | None = None
    profile: str | None = None
    # What the requester and approvers see of the target (evidence goes to the audit trail only),
    # and its digest, compared with a fresh read just before execution.
    preview: Preview | None = None
    preview_digest: str | None = None


class ActionRequest(BaseModel):
    """A stored request as the store returns it."""

    model_config = ConfigDict(frozen=True)

    id: str
    action: str
    target: dict[str, str]
    target_label: str
    requester_id: str
    requester_team_id: str
    channel_id: str
    reason: str
    state: RequestState
    approvals_required: int
    approvers: tuple[str, ...] = ()
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    message_channel: str | None = None
    message_ts: str | None = None
    executor_id: str | None = None
    lease_until: datetime | None = None
    outcome: Outcome | None = None
    secret_fingerprint: str | None = None
    sealed_secret: str | None = None
    profile: str | None = None
    preview: Preview | None = None
    preview_digest: str | None = None

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def approvals_missing(self) -> int:
        return max(0, self.approvals_required - len(self.approvers))


class AuditEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    request_id: str | None
    at: datetime
    actor_id: str | None
    event: str
    channel_id: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)

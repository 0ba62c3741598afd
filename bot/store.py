"""Persistence of action requests, approvals and the audit trail; the database is the coordinator.

Every state change is ONE conditional statement (``UPDATE ... WHERE id = :id AND state = <from> ...
RETURNING``) plus the audit row for it, in one transaction. Several replicas may race on the same
request; the row lock and the re-checked ``WHERE`` decide who wins, so at most one of them ever
moves a request out of a given state. That is what makes execution exactly-once.

Why each method is safe under concurrency:

* PostgreSQL, READ COMMITTED: an ``UPDATE`` that finds the row locked waits for the other
  transaction, then re-evaluates its ``WHERE`` against the committed row. A loser therefore matches
  nothing instead of overwriting the winner, and ``approval_count + 1`` always adds to the latest
  count (no lost update).
* SQLite: writers are serialized by the database lock. Write transactions start with
  ``BEGIN IMMEDIATE`` (see :data:`bot.db.SQLITE_IMMEDIATE`), so they queue on ``busy_timeout``
  instead of failing mid-transaction, and each sees the previous writer's commit.

``approve`` updates the request row *before* inserting the approval row: the row lock taken by the
update serializes approvers of one request, so the approval's ``ordinal`` (its position, used to
return approvers in order) is simply the new count, and a second click by the same person fails on
the ``(request_id, user_id)`` primary key and is rolled back with everything else.

Time bounds (``expires_at``) gate only the moves towards execution (approve, claim); rejecting,
cancelling and expiring an overdue request are always allowed because they make it safer.

No business rules live here beyond the transition table in :mod:`bot.requests`: who may approve,
whether a requester may approve their own request, rate limits, etc. are decided by the caller.

Audit ``detail`` is a dict the caller provides and is stored verbatim: callers must never put a
secret (a token, a key, a sealed secret) in it. The store itself writes only ids, counts, states,
HTTP statuses and Atlas error codes there.

Every database outage (refused connection, timeout, pool exhausted, connection lost) is turned into
:class:`StoreUnavailable` in one place, :func:`translate_errors`.
"""

from __future__ import annotations

import enum
import functools
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, ParamSpec, TypeVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ColumnElement,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Row,
    Select,
    String,
    Table,
    Text,
    UniqueConstraint,
    Update,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeDecorator

from bot.db import SQLITE_IMMEDIATE
from bot.errors import IllegalTransition, RequestNotFound, StaleRequest, StoreUnavailable
from bot.preview import Preview
from bot.requests import (
    TERMINAL_STATES,
    TRANSITIONS,
    ActionRequest,
    AuditEvent,
    NewActionRequest,
    Outcome,
    RequestState,
    check_transition,
)

__all__ = [
    "EVIDENCE_EVENT",
    "ApprovalResult",
    "ExecutionClaim",
    "Store",
    "TransitionEvent",
    "action_requests",
    "approvals",
    "audit_events",
    "metadata",
    "translate_errors",
]

logger = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE: Final = (
    "The database is unreachable; nothing was changed. Try again in a minute; if this keeps "
    "happening, ask the bot's operators to check its database."
)
# The connection died while COMMIT was in flight: the server may or may not have applied it. Every
# transition is conditional, so retrying is safe, and an execution claim that did land is recovered
# by the stale-lease sweep rather than run twice.
COMMIT_UNCERTAIN_MESSAGE: Final = (
    "The database connection was lost while saving; the change may or may not have been saved. "
    "Check the request's status before trying again."
)
# Every pooled connection stayed busy for the whole pool_timeout: a burst, not an outage.
BUSY_MESSAGE: Final = "The bot is too busy to reach its database right now; nothing was changed. Try again in a minute."


# The audit event holding a request's preview evidence (written with ``requested``; not a transition).
EVIDENCE_EVENT: Final = "evidence"


class TransitionEvent(enum.StrEnum):
    """The audit ``event`` names the store writes with each transition."""

    REQUESTED = "requested"
    APPROVAL_COUNTED = "approval-counted"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    EXECUTING = "executing"
    RELEASED = "released"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


# --------------------------------------------------------------------------------------------------
# Tables


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``. SQLite has no time zones, so values are stored as naive UTC in
    SQLAlchemy's fixed-width text format, which keeps ``<``/``>`` comparisons in SQL correct, and
    come back as aware UTC. Naive datetimes are refused: guessing their zone is how expiries drift.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: the store only accepts timezone-aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_STATE_VALUES = ", ".join(f"'{state.value}'" for state in RequestState)

action_requests = Table(
    "action_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("action", String, nullable=False),
    Column("target", JSON, nullable=False),
    Column("target_label", String, nullable=False),
    Column("requester_id", String, nullable=False),
    Column("requester_team_id", String, nullable=False),
    Column("channel_id", String, nullable=False),
    Column("reason", Text, nullable=False),
    # Indexed as the leading column of the (state, ...) indexes below; a lone index would be redundant.
    Column("state", String(16), nullable=False),
    Column("approvals_required", Integer, nullable=False),
    Column("approval_count", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("message_channel", String, nullable=True),
    Column("message_ts", String, nullable=True),
    Column("executor_id", String, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("outcome", JSON, nullable=True),
    Column("secret_fingerprint", String, nullable=True),
    # Opaque ciphertext (never the token). Wiped to NULL when the request reaches a terminal state.
    Column("sealed_secret", Text, nullable=True),
    Column("profile", String, nullable=True),
    # What the requester and approvers were shown (facts, blockers, warnings; the bulky evidence
    # lives in the audit trail), and its digest, compared with a fresh read before execution.
    Column("preview", JSON, nullable=True),
    Column("preview_digest", String(64), nullable=True),
    CheckConstraint(f"state IN ({_STATE_VALUES})", name="state"),
    CheckConstraint("approvals_required >= 1", name="approvals_required"),
    CheckConstraint("approval_count >= 0", name="approval_count"),
    Index(None, "state", "expires_at"),
    Index(None, "state", "lease_until"),
    Index(None, "requester_id", "created_at"),
    Index(None, "channel_id", "created_at"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("request_id", String(32), ForeignKey("action_requests.id"), primary_key=True),
    # The primary key makes one person count once, however many times or replicas they click through.
    Column("user_id", String, primary_key=True),
    # 1-based position in approval order; equals the request's approval_count right after it counted.
    Column("ordinal", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    UniqueConstraint("request_id", "ordinal"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(32), ForeignKey("action_requests.id"), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_id", String, nullable=True),
    Column("event", String(64), nullable=False),
    Column("channel_id", String, nullable=True),
    # Caller-provided, stored verbatim: never a secret.
    Column("detail", JSON, nullable=False),
    # One request's trail in order (list_audit); id is the order of writing.
    Index(None, "request_id", "id"),
)


# --------------------------------------------------------------------------------------------------
# Error translation: the one place where database failures become StoreUnavailable

_P = ParamSpec("_P")
_R = TypeVar("_R")

# SQLSTATE classes meaning "the database is not usable right now" rather than "the statement is wrong":
# 08 connection exception, 28 invalid authorization, 3D invalid catalog (database missing),
# 40 transaction rollback (serialization failure/deadlock: rolled back, safe to retry),
# 53 insufficient resources (too many connections, disk full), 57 operator intervention
# (statement_timeout, server shutting down or starting up).
_UNAVAILABLE_SQLSTATE_CLASSES: Final = frozenset({"08", "28", "3D", "40", "53", "57"})
# 55P03 lock_not_available, 25P03 idle_in_transaction_session_timeout.
_UNAVAILABLE_SQLSTATES: Final = frozenset({"55P03", "25P03"})
# SQLite reports schema and syntax mistakes as OperationalError too; those are bugs to surface, not outages.
_SQLITE_PROGRAMMING_ERROR: Final = re.compile(r"no such (table|column|index)|syntax error|has no column")


class _CommitFailed(Exception):
    """COMMIT raised: whether it was applied is unknown. Carries the original error."""

    def __init__(self, original: Exception) -> None:
        super().__init__(type(original).__name__)
        self.original = original


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # pool checkout timed out / connection could not be (re)established
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES
        from_sqlite = type(orig).__module__.startswith("sqlite3")
        if isinstance(exc, sa_exc.InterfaceError):
            # sqlite3's InterfaceError means a bad bind parameter, i.e. a bug.
            return not from_sqlite
        if isinstance(exc, sa_exc.OperationalError):
            return not (from_sqlite and _SQLITE_PROGRAMMING_ERROR.search(str(orig)))
        return False
    # Raw connect failures: refused, unreachable host, DNS, connect timeout (TimeoutError is an OSError).
    return isinstance(exc, OSError)


def translate_errors(fn: Callable[_P, Awaitable[_R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Decorate an async function so database outages leave it as :class:`StoreUnavailable`."""

    @functools.wraps(fn)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await fn(*args, **kwargs)
        except _CommitFailed as exc:
            if _is_unavailable(exc.original):
                logger.warning("database failed during COMMIT: %s", type(exc.original).__name__)
                raise StoreUnavailable(COMMIT_UNCERTAIN_MESSAGE) from exc.original
            raise exc.original from None
        except Exception as exc:
            if _is_unavailable(exc):
                # The type name only: driver messages can carry host names and SQL parameters.
                logger.warning("database unavailable: %s", type(exc).__name__)
                busy = isinstance(exc, sa_exc.TimeoutError)  # the pool's wait for a free connection
                raise StoreUnavailable(BUSY_MESSAGE if busy else UNAVAILABLE_MESSAGE) from exc
            raise

    return wrapper


# --------------------------------------------------------------------------------------------------
# The store


@dataclass(frozen=True, slots=True)
class ExecutionClaim:
    """Who runs a request whose last approval this is, and for how long its first lease lasts."""

    executor_id: str
    lease_seconds: float


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    request: ActionRequest
    # False when this person had already approved: nothing changed.
    counted: bool
    # True for exactly one approval of a request: the one that reached approvals_required.
    became_approved: bool
    # True when that approval also leased the request to the caller's ExecutionClaim, in the same
    # transaction: ``request`` is then executing, exactly as claim_execution would have returned it.
    claimed: bool = False


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _sources(target: RequestState) -> tuple[RequestState, ...]:
    """The states the transition table allows to move to ``target``, in a stable order."""
    return tuple(state for state in RequestState if target in TRANSITIONS[state])


_DESCRIBE: Final[dict[RequestState, str]] = {
    RequestState.PENDING: "is still waiting for approval",
    RequestState.APPROVED: "is already approved",
    RequestState.EXECUTING: "is already running",
    RequestState.SUCCEEDED: "has already run successfully",
    RequestState.FAILED: "has already run and failed",
    RequestState.UNKNOWN: "has already run and its outcome is unknown",
    RequestState.REJECTED: "was rejected",
    RequestState.EXPIRED: "has expired",
    RequestState.CANCELLED: "was cancelled",
}


def _illegal(
    current: RequestState, target: RequestState, *, doing: str, message: str | None = None
) -> IllegalTransition:
    error = IllegalTransition(current.value, target.value)
    # errors.IllegalTransition words its message for developers; reword it for Slack, keep the type.
    error.args = (message or f"This request {_DESCRIBE[current]}; it can no longer be {doing}.",)
    return error


def _refusal(
    current: ActionRequest,
    target: RequestState,
    *,
    sources: Collection[RequestState],
    doing: str,
    now: datetime,
) -> StaleRequest:
    """Why a conditional update on ``current`` matched nothing, as an error for the person in Slack.

    A move this operation cannot make from the current state is an :class:`IllegalTransition` (a lost
    race, or a caller bug); one it could make but whose other conditions failed (the clock) is a
    plain :class:`StaleRequest`. ``sources`` are the states the operation moves from: the table may
    allow ``current -> target`` through another operation (executing -> approved is a release, not
    an approval).
    """
    if current.state not in sources:
        return _illegal(current.state, target, doing=doing)
    try:
        check_transition(current.state, target)
    except IllegalTransition:
        return _illegal(current.state, target, doing=doing)
    if current.expires_at <= now:
        return StaleRequest(f"This request has expired; it can no longer be {doing}.")
    return StaleRequest(f"This request changed while you were acting on it; it can no longer be {doing}.")


def _not_found(request_id: str) -> RequestNotFound:
    shown = request_id if len(request_id) <= 40 else request_id[:40] + "..."
    return RequestNotFound(f"There is no request with id {shown!r}.")


class _Duplicate(Exception):
    """The approver's row already exists (raised inside the transaction so it rolls back)."""


class _NoMatch(Exception):
    """A conditional update matched no row (raised inside the transaction so it rolls back)."""


class Store:
    """Async repository over an engine the composition root owns (the store never disposes it)."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._engine = engine
        # One-statement reads on PostgreSQL run in autocommit: a lone statement reads one snapshot
        # anyway, and BEGIN and COMMIT around it were two more round trips for every command's
        # rate-limit count and every click's read of its request. SQLite keeps its own BEGIN (bot.db).
        self._one_statement_reads = (
            engine if engine.dialect.name == "sqlite" else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._clock = clock

    # -- plumbing ----------------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the store's clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn:
            if write:
                await conn.execution_options(**{SQLITE_IMMEDIATE: True})
            trans = await conn.begin()
            try:
                yield conn
            except BaseException:
                await trans.rollback()
                raise
            try:
                await trans.commit()
            except Exception as exc:
                raise _CommitFailed(exc) from exc

    @asynccontextmanager
    async def _one_statement_read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for exactly one read-only statement (several would not share a snapshot)."""
        async with self._one_statement_reads.connect() as conn:
            yield conn

    async def _audit(self, conn: AsyncConnection, *rows: dict[str, Any]) -> None:
        """Write audit events (:func:`_audit_row` each), in order: their ids keep it."""
        await conn.execute(_INSERT_AUDIT_EVENT, rows[0] if len(rows) == 1 else list(rows))

    @staticmethod
    def _requests_with_approvers(
        *where: ColumnElement[bool], newest_first: bool = False, limit: int | None = None
    ) -> Select[Any]:
        """Requests matching ``where`` joined to their approvers, in ONE statement.

        One statement reads one snapshot even under READ COMMITTED, so a request's count and its
        approvers always agree.
        """
        page_query = select(action_requests).where(*where)
        if newest_first:
            page_query = page_query.order_by(action_requests.c.created_at.desc(), action_requests.c.id.desc())
        if limit is not None:
            page_query = page_query.limit(limit)
        page = page_query.subquery("page")
        order: list[ColumnElement[Any]] = [page.c.created_at.desc(), page.c.id.desc()] if newest_first else [page.c.id]
        return (
            select(page, approvals.c.user_id.label("approver_id"))
            .select_from(page.outerjoin(approvals, approvals.c.request_id == page.c.id))
            .order_by(*order, approvals.c.ordinal)
        )

    @staticmethod
    def _assemble(rows: Sequence[Row[Any]]) -> list[ActionRequest]:
        grouped: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for row in rows:
            mapping = row._mapping
            entry = grouped.get(mapping["id"])
            if entry is None:
                fields = {column.name: mapping[column.name] for column in action_requests.c}
                entry = grouped[mapping["id"]] = (fields, [])
            if mapping["approver_id"] is not None:
                entry[1].append(mapping["approver_id"])
        requests: list[ActionRequest] = []
        for fields, approver_ids in grouped.values():
            outcome = fields.pop("outcome")
            preview = fields.pop("preview")
            fields.pop("approval_count")
            requests.append(
                ActionRequest(
                    **fields,
                    approvers=tuple(approver_ids),
                    outcome=Outcome.model_validate(outcome) if outcome is not None else None,
                    preview=Preview.model_validate(preview) if preview is not None else None,
                )
            )
        return requests

    async def _fetch(self, conn: AsyncConnection, request_id: str) -> ActionRequest:
        rows = (await conn.execute(_REQUEST_BY_ID, {"request_id": request_id})).all()
        found = self._assemble(rows)
        if not found:
            raise _not_found(request_id)
        return found[0]

    async def _current(self, request_id: str) -> ActionRequest:
        async with self._one_statement_read() as conn:
            return await self._fetch(conn, request_id)

    async def _fetch_many(self, conn: AsyncConnection, query: Select[Any]) -> list[ActionRequest]:
        return self._assemble((await conn.execute(query)).all())

    # -- creating and reading ----------------------------------------------------------------------

    @translate_errors
    async def create_request(self, new: NewActionRequest) -> ActionRequest:
        """Store a new pending request (audit: ``requested``, then ``evidence`` when its preview read
        Atlas: the target's configuration as Atlas returned it, so it can be recreated by hand).

        The evidence is written in the request's own transaction: a request is never stored without
        it (a replica dying in between), and it costs no transaction of its own."""
        if new.expires_at.tzinfo is None or new.expires_at.utcoffset() is None:
            raise ValueError("expires_at must be timezone-aware")
        now = self._now()
        request_id = uuid.uuid4().hex
        async with self._transaction(write=True) as conn:
            await conn.execute(
                _INSERT_REQUEST,
                {
                    "id": request_id,
                    "action": new.action,
                    "target": dict(new.target),
                    "target_label": new.target_label,
                    "requester_id": new.requester_id,
                    "requester_team_id": new.requester_team_id,
                    "channel_id": new.channel_id,
                    "reason": new.reason,
                    "state": RequestState.PENDING.value,
                    "approvals_required": new.approvals_required,
                    "approval_count": 0,
                    "created_at": now,
                    "updated_at": now,
                    "expires_at": new.expires_at,
                    "secret_fingerprint": new.secret_fingerprint,
                    "sealed_secret": new.sealed_secret,
                    "profile": new.profile,
                    "preview": new.preview.model_dump(mode="json", exclude={"evidence"}) if new.preview else None,
                    "preview_digest": new.preview_digest,
                },
            )
            rows = [
                _audit_row(
                    at=now,
                    event=TransitionEvent.REQUESTED,
                    actor_id=new.requester_id,
                    request_id=request_id,
                    channel_id=new.channel_id,
                    detail={
                        "action": new.action,
                        "target_label": new.target_label,
                        "approvals_required": new.approvals_required,
                        "expires_at": new.expires_at.astimezone(UTC).isoformat(),
                    },
                )
            ]
            if new.preview is not None and new.preview.available:
                rows.append(
                    _audit_row(
                        at=now,
                        event=EVIDENCE_EVENT,
                        actor_id=new.requester_id,
                        request_id=request_id,
                        channel_id=new.channel_id,
                        detail={"digest": new.preview_digest, "evidence": new.preview.evidence},
                    )
                )
            await self._audit(conn, *rows)
            return await self._fetch(conn, request_id)

    @translate_errors
    async def get(self, request_id: str) -> ActionRequest:
        """The request with this id; :class:`RequestNotFound` if there is none."""
        return await self._current(request_id)

    @translate_errors
    async def set_message(self, request_id: str, *, channel: str, ts: str, only_if_unset: bool = False) -> None:
        """Remember the Slack message that shows this request (to update it later). With
        ``only_if_unset`` a message already remembered stays (no error either way)."""
        condition = [action_requests.c.id == request_id]
        if only_if_unset:
            condition.append(action_requests.c.message_ts.is_(None))
        async with self._transaction(write=True) as conn:
            result = await conn.execute(
                update(action_requests)
                .where(*condition)
                .values(message_channel=channel, message_ts=ts, updated_at=self._now())
                .returning(action_requests.c.id)
            )
            if result.first() is None and not only_if_unset:
                raise _not_found(request_id)

    # -- approval ----------------------------------------------------------------------------------

    @translate_errors
    async def approve(
        self, request_id: str, *, approver_id: str, claim: ExecutionClaim | None = None
    ) -> ApprovalResult:
        """Count ``approver_id``'s approval of a pending, unexpired request.

        Returns ``counted=False`` (and changes nothing) when this person already approved, whatever
        the request's state now. Raises :class:`StaleRequest` when the request is no longer pending
        or has expired, :class:`RequestNotFound` when there is no such request. Exactly one counted
        approval per request has ``became_approved=True``.

        With ``claim``, the approval that makes the request approved also moves it on to executing,
        leased to ``claim.executor_id``, in the same transaction (``claimed=True``): the two
        conditional transitions :meth:`claim_execution` would make one after the other, without a
        second transaction between the last click and the Atlas call.
        """
        check_transition(RequestState.PENDING, RequestState.APPROVED)
        if claim is not None:
            check_transition(RequestState.APPROVED, RequestState.EXECUTING)
            if claim.lease_seconds <= 0:
                raise ValueError("lease_seconds must be positive")
        now = self._now()
        try:
            async with self._transaction(write=True) as conn:
                row = (await conn.execute(_COUNT_APPROVAL, {"p_id": request_id, "p_now": now})).first()
                if row is None:
                    raise _NoMatch
                try:
                    await conn.execute(
                        _INSERT_APPROVAL,
                        {"request_id": request_id, "user_id": approver_id, "ordinal": row.approval_count, "at": now},
                    )
                except sa_exc.IntegrityError as exc:
                    # The (request_id, user_id) primary key: this person already counted. Leaving
                    # the block rolls back the count bump too.
                    raise _Duplicate from exc
                became_approved = row.state == RequestState.APPROVED.value
                claimed = False
                if became_approved and claim is not None:
                    # This transaction holds the row since its UPDATE, so the claim cannot lose a
                    # race; it is still conditional, like every transition.
                    claimed = (
                        await conn.execute(
                            _CLAIM, _claim_params(request_id, now, claim.executor_id, claim.lease_seconds)
                        )
                    ).first() is not None
                request = await self._fetch(conn, request_id)
                audit = {"at": now, "request_id": request_id, "channel_id": row.channel_id}
                events = [
                    _audit_row(
                        **audit,
                        event=TransitionEvent.APPROVAL_COUNTED,
                        actor_id=approver_id,
                        detail={"approval_count": row.approval_count, "approvals_required": row.approvals_required},
                    )
                ]
                if became_approved:
                    events.append(
                        _audit_row(
                            **audit,
                            event=TransitionEvent.APPROVED,
                            actor_id=approver_id,
                            detail={"approvers": list(request.approvers)},
                        )
                    )
                if claimed:
                    assert claim is not None
                    events.append(
                        _audit_row(
                            **audit,
                            event=TransitionEvent.EXECUTING,
                            actor_id=claim.executor_id,
                            detail={"lease_seconds": claim.lease_seconds},
                        )
                    )
                # This approval's events in one executemany call.
                await self._audit(conn, *events)
        except _Duplicate:
            return ApprovalResult(request=await self._current(request_id), counted=False, became_approved=False)
        except _NoMatch:
            current = await self._current(request_id)
            if approver_id in current.approvers:
                return ApprovalResult(request=current, counted=False, became_approved=False)
            raise _refusal(
                current, RequestState.APPROVED, sources=(RequestState.PENDING,), doing="approved", now=now
            ) from None
        return ApprovalResult(request=request, counted=True, became_approved=became_approved, claimed=claimed)

    async def _end_by_user(
        self,
        request_id: str,
        *,
        target: RequestState,
        user_id: str,
        event: TransitionEvent,
        doing: str,
        detail: Mapping[str, Any] | None = None,
    ) -> ActionRequest:
        """``reject``/``cancel``: a person ends the request from any state the table allows."""
        sources = _sources(target)
        for source in sources:
            check_transition(source, target)
        now = self._now()
        try:
            async with self._transaction(write=True) as conn:
                row = (
                    await conn.execute(
                        update(action_requests)
                        .where(
                            action_requests.c.id == request_id,
                            action_requests.c.state.in_([state.value for state in sources]),
                        )
                        .values(state=target.value, sealed_secret=None, lease_until=None, updated_at=now)
                        .returning(action_requests.c.channel_id)
                    )
                ).first()
                if row is None:
                    raise _NoMatch
                await self._audit(
                    conn,
                    _audit_row(
                        at=now,
                        event=event,
                        actor_id=user_id,
                        request_id=request_id,
                        channel_id=row.channel_id,
                        detail=detail,
                    ),
                )
                return await self._fetch(conn, request_id)
        except _NoMatch:
            current = await self._current(request_id)
            raise _refusal(current, target, sources=sources, doing=doing, now=now) from None

    @translate_errors
    async def reject(self, request_id: str, *, user_id: str, note: str | None = None) -> ActionRequest:
        """pending -> rejected (audit ``rejected`` with the note); :class:`StaleRequest` otherwise."""
        return await self._end_by_user(
            request_id,
            target=RequestState.REJECTED,
            user_id=user_id,
            event=TransitionEvent.REJECTED,
            doing="rejected",
            detail={"note": note} if note else None,
        )

    @translate_errors
    async def cancel(self, request_id: str, *, user_id: str) -> ActionRequest:
        """pending/approved -> cancelled; :class:`StaleRequest` otherwise."""
        return await self._end_by_user(
            request_id,
            target=RequestState.CANCELLED,
            user_id=user_id,
            event=TransitionEvent.CANCELLED,
            doing="cancelled",
        )

    # -- execution ---------------------------------------------------------------------------------

    @translate_errors
    async def claim_execution(self, request_id: str, *, executor_id: str, lease_seconds: float) -> ActionRequest | None:
        """approved -> executing, leased to ``executor_id``: the exactly-once gate.

        Returns the request if THIS call won it. Returns ``None`` when the request is not claimable
        any more (another executor won, or it was cancelled or expired meanwhile) — never an error for
        a lost race. Raises :class:`IllegalTransition` only for a request that was never approved.
        """
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        for source in _CLAIMABLE:
            check_transition(source, RequestState.EXECUTING)
        now = self._now()
        try:
            async with self._transaction(write=True) as conn:
                row = (await conn.execute(_CLAIM, _claim_params(request_id, now, executor_id, lease_seconds))).first()
                if row is None:
                    raise _NoMatch
                await self._audit(
                    conn,
                    _audit_row(
                        at=now,
                        event=TransitionEvent.EXECUTING,
                        actor_id=executor_id,
                        request_id=request_id,
                        channel_id=row.channel_id,
                        detail={"lease_seconds": lease_seconds},
                    ),
                )
                return await self._fetch(conn, request_id)
        except _NoMatch:
            current = await self._current(request_id)
            if current.state is RequestState.PENDING:
                # Not a lost race: the caller tried to run a request nobody approved. A bug, loudly.
                raise _illegal(
                    current.state,
                    RequestState.EXECUTING,
                    doing="run",
                    message="This request is still waiting for approval; it cannot run yet.",
                ) from None
            return None

    @translate_errors
    async def renew_lease(self, request_id: str, *, executor_id: str, lease_seconds: float) -> bool:
        """Extend ``executor_id``'s lease; False if it no longer holds the execution.

        An expired lease can still be renewed as long as no resolver has taken the request over:
        a live executor beats the stale-lease sweep.
        """
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        now = self._now()
        async with self._transaction(write=True) as conn:
            result = await conn.execute(
                update(action_requests)
                .where(
                    action_requests.c.id == request_id,
                    action_requests.c.state == RequestState.EXECUTING.value,
                    action_requests.c.executor_id == executor_id,
                )
                .values(lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
                .returning(action_requests.c.id)
            )
            return result.first() is not None

    @staticmethod
    def _check_outcome_state(state: RequestState) -> None:
        check_transition(RequestState.EXECUTING, state)
        if state not in TERMINAL_STATES:
            raise ValueError(f"an outcome ends the execution; {state.value!r} is not terminal (use release())")

    @staticmethod
    def _outcome_detail(outcome: Outcome) -> dict[str, Any]:
        # Status and Atlas error code only; the free-text detail lives in the outcome column.
        return {
            "ok": outcome.ok,
            "status": outcome.status,
            "error_code": outcome.error_code,
            "outcome_unknown": outcome.outcome_unknown,
        }

    async def _end_execution(
        self,
        request_id: str,
        *,
        statement: Update,
        executor_id: str,
        state: RequestState,
        outcome: Outcome,
        actor_id: str,
        detail: Mapping[str, Any],
        now: datetime,
    ) -> ActionRequest | None:
        """Run ``statement`` (:data:`_FINISH` or :data:`_RESOLVE_STALE`): executing -> ``state``."""
        params = {
            "p_id": request_id,
            "p_executor_id": executor_id,
            "p_now": now,
            "p_state": state.value,
            "p_outcome": outcome.model_dump(mode="json"),
        }
        try:
            async with self._transaction(write=True) as conn:
                row = (await conn.execute(statement, params)).first()
                if row is None:
                    raise _NoMatch
                await self._audit(
                    conn,
                    _audit_row(
                        at=now,
                        event=TransitionEvent(state.value),
                        actor_id=actor_id,
                        request_id=request_id,
                        channel_id=row.channel_id,
                        detail=detail,
                    ),
                )
                return await self._fetch(conn, request_id)
        except _NoMatch:
            await self._current(request_id)  # RequestNotFound for an unknown id
            return None

    @translate_errors
    async def finish(
        self, request_id: str, *, executor_id: str, state: RequestState, outcome: Outcome
    ) -> ActionRequest | None:
        """executing -> succeeded/failed/unknown, only for the executor holding it; wipes the secret.

        ``None`` when ``executor_id`` no longer holds the execution (a resolver took it over). The
        executor may still finish after its lease lapsed, as long as nobody resolved it: it knows
        the real outcome.
        """
        self._check_outcome_state(state)
        now = self._now()
        return await self._end_execution(
            request_id,
            statement=_FINISH,
            executor_id=executor_id,
            state=state,
            outcome=outcome,
            actor_id=executor_id,
            detail=self._outcome_detail(outcome),
            now=now,
        )

    @translate_errors
    async def release(self, request_id: str, *, executor_id: str) -> bool:
        """executing -> approved: hand the request back before the Atlas call was sent."""
        check_transition(RequestState.EXECUTING, RequestState.APPROVED)
        now = self._now()
        async with self._transaction(write=True) as conn:
            row = (
                await conn.execute(
                    update(action_requests)
                    .where(
                        action_requests.c.id == request_id,
                        action_requests.c.state == RequestState.EXECUTING.value,
                        action_requests.c.executor_id == executor_id,
                    )
                    .values(state=RequestState.APPROVED.value, executor_id=None, lease_until=None, updated_at=now)
                    .returning(action_requests.c.channel_id)
                )
            ).first()
            if row is None:
                return False
            await self._audit(
                conn,
                _audit_row(
                    at=now,
                    event=TransitionEvent.RELEASED,
                    actor_id=executor_id,
                    request_id=request_id,
                    channel_id=row.channel_id,
                ),
            )
            return True

    # -- sweeps ------------------------------------------------------------------------------------

    @translate_errors
    async def expire_due(self, *, limit: int = 500) -> list[ActionRequest]:
        """Expire pending/approved requests past ``expires_at``; returns those THIS call expired.

        Each row is expired by its own conditional update and transaction, so sweepers on several
        replicas never expire (or audit) a request twice, and never deadlock on each other's batches.
        """
        sources = _sources(RequestState.EXPIRED)
        for source in sources:
            check_transition(source, RequestState.EXPIRED)
        now = self._now()
        async with self._transaction(write=False) as conn:
            due = (
                await conn.execute(
                    select(action_requests.c.id, action_requests.c.state)
                    .where(
                        action_requests.c.state.in_([state.value for state in sources]),
                        action_requests.c.expires_at <= now,
                    )
                    .order_by(action_requests.c.expires_at, action_requests.c.id)
                    .limit(limit)
                )
            ).all()
        expired: list[ActionRequest] = []
        for request_id, seen_state in due:
            async with self._transaction(write=True) as conn:
                row = (
                    await conn.execute(
                        update(action_requests)
                        .where(
                            action_requests.c.id == request_id,
                            # The state we saw, so the audit can say what expired; if it moved on
                            # since (approved, or another sweeper), this row is not ours.
                            action_requests.c.state == seen_state,
                            action_requests.c.expires_at <= now,
                        )
                        .values(
                            state=RequestState.EXPIRED.value,
                            sealed_secret=None,
                            lease_until=None,
                            updated_at=now,
                        )
                        .returning(action_requests.c.channel_id)
                    )
                ).first()
                if row is None:
                    continue
                await self._audit(
                    conn,
                    _audit_row(
                        at=now,
                        event=TransitionEvent.EXPIRED,
                        actor_id=None,
                        request_id=request_id,
                        channel_id=row.channel_id,
                        detail={"from_state": seen_state},
                    ),
                )
                expired.append(await self._fetch(conn, request_id))
        return expired

    @translate_errors
    async def stale_executions(self, *, limit: int = 50) -> list[ActionRequest]:
        """Executing requests whose lease has lapsed (the executor may have died), oldest lease first."""
        now = self._now()
        async with self._transaction(write=False) as conn:
            page = (
                select(action_requests.c.id)
                .where(
                    action_requests.c.state == RequestState.EXECUTING.value,
                    action_requests.c.lease_until < now,
                )
                .order_by(action_requests.c.lease_until, action_requests.c.id)
                .limit(limit)
            )
            found = await self._fetch_many(conn, self._requests_with_approvers(action_requests.c.id.in_(page)))
        return sorted(found, key=lambda request: (request.lease_until or now, request.id))

    @translate_errors
    async def resolve_stale(
        self,
        request_id: str,
        *,
        executor_id: str,
        state: RequestState,
        outcome: Outcome,
        resolver_id: str,
    ) -> ActionRequest | None:
        """End an execution whose lease lapsed: only if ``executor_id`` still holds it AND its lease is
        still lapsed now. ``None`` when the executor renewed or finished, or another resolver won."""
        self._check_outcome_state(state)
        now = self._now()
        detail = {
            **self._outcome_detail(outcome),
            "stale_executor_id": executor_id,
            "resolution": "stale-lease",
        }
        return await self._end_execution(
            request_id,
            statement=_RESOLVE_STALE,
            executor_id=executor_id,
            state=state,
            outcome=outcome,
            actor_id=resolver_id,
            detail=detail,
            now=now,
        )

    # -- queries -----------------------------------------------------------------------------------

    @translate_errors
    async def list_requests(
        self,
        *,
        states: Collection[RequestState],
        channel_id: str | None = None,
        limit: int = 50,
    ) -> list[ActionRequest]:
        """Requests in ``states`` (optionally of one channel), newest first."""
        if not states:
            return []
        conditions: list[ColumnElement[bool]] = [
            action_requests.c.state.in_(sorted(RequestState(state).value for state in states))
        ]
        if channel_id is not None:
            conditions.append(action_requests.c.channel_id == channel_id)
        async with self._transaction(write=False) as conn:
            return await self._fetch_many(
                conn, self._requests_with_approvers(*conditions, newest_first=True, limit=limit)
            )

    @translate_errors
    async def count_requests(self, *, states: Collection[RequestState]) -> int:
        """How many requests are in ``states`` (one COUNT on the state index, no rows read out)."""
        if not states:
            return 0
        async with self._transaction(write=False) as conn:
            counted = await conn.scalar(
                select(func.count())
                .select_from(action_requests)
                .where(action_requests.c.state.in_(sorted(RequestState(state).value for state in states)))
            )
        return int(counted or 0)

    @translate_errors
    async def count_recent_by(self, *, since: datetime, requester_id: str, channel_id: str) -> tuple[int, int]:
        """(requests by ``requester_id``, requests in ``channel_id``) created at or after ``since``:
        both rate limits in one statement, each count on its own index."""
        async with self._one_statement_read() as conn:
            row = (
                await conn.execute(
                    _RECENT_COUNTS, {"since": since, "requester_id": requester_id, "channel_id": channel_id}
                )
            ).one()
        return int(row.by_requester), int(row.in_channel)

    # -- audit -------------------------------------------------------------------------------------

    @translate_errors
    async def record_event(
        self,
        *,
        event: str,
        actor_id: str | None,
        request_id: str | None = None,
        channel_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Audit something that is not a transition (a denied attempt, an invalid command, ...).

        ``detail`` is stored verbatim and shown to auditors: never put a secret in it.
        """
        now = self._now()
        try:
            async with self._transaction(write=True) as conn:
                await self._audit(
                    conn,
                    _audit_row(
                        at=now,
                        event=event,
                        actor_id=actor_id,
                        request_id=request_id,
                        channel_id=channel_id,
                        detail=detail,
                    ),
                )
        except sa_exc.IntegrityError as exc:
            if request_id is None:
                raise
            raise _not_found(request_id) from exc

    @translate_errors
    async def list_audit(self, *, request_id: str | None = None, limit: int = 200) -> list[AuditEvent]:
        """The most recent ``limit`` audit events (of one request, if given), oldest first."""
        query = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
        if request_id is not None:
            query = query.where(audit_events.c.request_id == request_id)
        async with self._transaction(write=False) as conn:
            rows = (await conn.execute(query)).all()
        return [AuditEvent.model_validate(dict(row._mapping)) for row in reversed(rows)]

    # -- health ------------------------------------------------------------------------------------

    @translate_errors
    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers ``SELECT 1``."""
        async with self._transaction(write=False) as conn:
            await conn.execute(select(1))


# Statements on the hot paths, built once: constructing a SELECT with a subquery costs more CPU
# than SQLite takes to run it (profiled: about a tenth of an Approve click's CPU).
_REQUEST_BY_ID: Final = Store._requests_with_approvers(action_requests.c.id == bindparam("request_id"))


def _recent_count(column: Column[str], key: str) -> ColumnElement[int]:
    return (
        select(func.count())
        .select_from(action_requests)
        .where(column == bindparam(key), action_requests.c.created_at >= bindparam("since"))
        .scalar_subquery()
    )


def _audit_row(
    *,
    at: datetime,
    event: str,
    actor_id: str | None,
    request_id: str | None,
    channel_id: str | None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit_events row's parameters, for :data:`_INSERT_AUDIT_EVENT`."""
    return {
        "request_id": request_id,
        "at": at,
        "actor_id": actor_id,
        "event": event,
        "channel_id": channel_id,
        "detail": dict(detail or {}),
    }


def _param(name: str, column: Column[Any]) -> BindParameter[Any]:
    """A bound parameter typed like ``column`` (so its TypeDecorator, e.g. UTC datetimes, applies)."""
    return bindparam(name, type_=column.type)


def _claim_params(request_id: str, now: datetime, executor_id: str, lease_seconds: float) -> dict[str, Any]:
    return {
        "p_id": request_id,
        "p_now": now,
        "p_executor_id": executor_id,
        "p_lease_until": now + timedelta(seconds=lease_seconds),
    }


# Built once: a statement built per call costs its construction and its cache key on every call
# (profiled: about a quarter of an approval's CPU on PostgreSQL, in bench.store_bench).
_INSERT_REQUEST: Final = insert(action_requests)
_INSERT_APPROVAL: Final = insert(approvals)
_INSERT_AUDIT_EVENT: Final = insert(audit_events)

_NOW: Final = _param("p_now", action_requests.c.updated_at)

# pending -> approved when this approval reaches approvals_required (else pending, one more counted).
_COUNT_APPROVAL: Final = (
    update(action_requests)
    .where(
        action_requests.c.id == bindparam("p_id"),
        action_requests.c.state == RequestState.PENDING.value,
        action_requests.c.expires_at > _NOW,
    )
    .values(
        approval_count=action_requests.c.approval_count + 1,
        state=case(
            (
                action_requests.c.approval_count + 1 >= action_requests.c.approvals_required,
                RequestState.APPROVED.value,
            ),
            else_=action_requests.c.state,
        ),
        updated_at=_NOW,
    )
    .returning(
        action_requests.c.state,
        action_requests.c.approval_count,
        action_requests.c.approvals_required,
        action_requests.c.channel_id,
    )
)

# approved -> executing, leased: the exactly-once gate (claim_execution, and approve with a claim).
_CLAIMABLE: Final = _sources(RequestState.EXECUTING)
_CLAIM: Final = (
    update(action_requests)
    .where(
        action_requests.c.id == bindparam("p_id"),
        action_requests.c.state.in_([state.value for state in _CLAIMABLE]),
        action_requests.c.expires_at > _NOW,
    )
    .values(
        state=RequestState.EXECUTING.value,
        executor_id=bindparam("p_executor_id"),
        lease_until=_param("p_lease_until", action_requests.c.lease_until),
        updated_at=_NOW,
    )
    .returning(action_requests.c.channel_id)
)


def _end_execution_statement(*held_by: ColumnElement[bool]) -> Update:
    """executing -> an outcome's state, for the execution ``held_by`` describes; wipes the secret."""
    return (
        update(action_requests)
        .where(
            action_requests.c.id == bindparam("p_id"),
            action_requests.c.state == RequestState.EXECUTING.value,
            *held_by,
        )
        .values(
            state=bindparam("p_state"),
            outcome=_param("p_outcome", action_requests.c.outcome),
            sealed_secret=None,
            lease_until=None,
            updated_at=_NOW,
        )
        .returning(action_requests.c.channel_id)
    )


# The executor's own outcome, even after its lease lapsed, as long as nobody resolved it.
_FINISH: Final = _end_execution_statement(action_requests.c.executor_id == bindparam("p_executor_id"))
# A resolver's outcome: only while that executor still holds it AND its lease is still lapsed.
_RESOLVE_STALE: Final = _end_execution_statement(
    action_requests.c.executor_id == bindparam("p_executor_id"), action_requests.c.lease_until < _NOW
)
_RECENT_COUNTS: Final = select(
    _recent_count(action_requests.c.requester_id, "requester_id").label("by_requester"),
    _recent_count(action_requests.c.channel_id, "channel_id").label("in_channel"),
)

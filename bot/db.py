"""Database URLs and engines: the only place that knows which driver talks to which database.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is the production store that
several replicas share. Both are tuned here for a small (2-core) machine and to fail fast: when the
database goes away, a Slack click must get a clear error within seconds instead of hanging until
Slack's own timeout.

Nothing here reads the environment: the composition root passes the URL in.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Dialect, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from bot.errors import ConfigurationError

__all__ = [
    "PING_AFTER_IDLE_SECONDS",
    "SQLITE_IMMEDIATE",
    "create_engine",
    "default_database_url",
    "is_sqlite",
    "normalize_database_url",
    "redact_url",
]

# Execution option a caller sets on a connection whose transaction will write. On SQLite it turns the
# transaction's BEGIN into BEGIN IMMEDIATE, taking the write lock up front: a deferred transaction that
# reads and later writes can fail with SQLITE_BUSY at once (busy_timeout cannot help once it holds a
# read snapshot another writer has moved past). Other dialects ignore it.
SQLITE_IMMEDIATE: Final = "atlas_chatops_sqlite_immediate"

DEFAULT_SQLITE_PATH: Final = "./atlas-chatops.db"

# Per process, sized for 2 cores. A replica is one event loop and every statement it sends is a
# single-row indexed read or write of a few milliseconds: 4 connections keep it busy, and 4 more absorb
# a burst of clicks (past that a checkout queues for ``pool_timeout``, then fails as StoreUnavailable).
# Two replicas stay at 16 server connections (plus one while ``migrate`` runs), inside the 20 of the
# smallest managed PostgreSQL plans; a 2-core PostgreSQL would only queue more of them on its CPUs.
POOL_SIZE: Final = 4
MAX_OVERFLOW: Final = 4
# Slack gets its ack before any database work, so a burst of clicks becomes a burst of concurrent
# tasks that queue here for a connection: waiting is right, failing them is not. A database that is
# really away fails much sooner, at connect (refused at once, or after ``connect_timeout``).
POOL_TIMEOUT: Final = 20.0
# A pooled PostgreSQL connection that sat idle this long is pinged before use; one used more recently
# is not. SQLAlchemy's pool_pre_ping pings on every checkout, and asyncpg's ping is three round trips
# (BEGIN, an empty statement, ROLLBACK): under a burst that was a third of a rate-limit read's cost.
# A connection that was working a second ago and died since fails its statement instead, which
# invalidates the whole pool, exactly as a ping failing would.
PING_AFTER_IDLE_SECONDS: Final = 1.0
_IDLE_SINCE: Final = "atlas_chatops_idle_since"

_ACCEPTED_FORMS: Final = (
    "postgres://USER:PASSWORD@HOST:5432/DBNAME, postgresql://..., postgresql+asyncpg://..., "
    "sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite+aiosqlite:///path.db"
)

# scheme as given -> scheme with the async driver we ship. Explicit async drivers map to themselves;
# any other driver (psycopg2, pysqlite, ...) is refused because the async engine would reject it later
# with a far less helpful error.
_SCHEMES: Final[dict[str, str]] = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}

_SCHEME_RE: Final = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
# Fallback for strings make_url cannot parse: hide anything between "user:" and "@".
_USERINFO_PASSWORD_RE: Final = re.compile(r"(?P<head>://[^:/@]*):[^@/]*@")


def _invalid(detail: str) -> ConfigurationError:
    return ConfigurationError(f"DATABASE_URL {detail}. Accepted forms: {_ACCEPTED_FORMS}.")


def normalize_database_url(url: str) -> str:
    """Return ``url`` with the async driver spelled out, or raise :class:`ConfigurationError`.

    PaaS providers hand out ``postgres://`` / ``postgresql://``; both become ``postgresql+asyncpg://``
    (and a ``sslmode`` query parameter becomes asyncpg's ``ssl``). ``sqlite:///path`` becomes
    ``sqlite+aiosqlite:///path``. The error never echoes the URL, only its scheme, so a password cannot
    end up in a log or a Slack message.
    """
    candidate = url.strip()
    if not candidate:
        raise _invalid("is empty")
    match = _SCHEME_RE.match(candidate)
    if match is None:
        raise _invalid("is not a URL (it has no 'scheme://' prefix)")
    scheme = match.group("scheme").lower()
    target = _SCHEMES.get(scheme)
    if target is None:
        raise _invalid(f"uses the unsupported scheme {scheme!r}")
    rest = candidate[match.end() :]
    normalized = f"{target}://{rest}"
    try:
        parsed = make_url(normalized)
    except (ArgumentError, ValueError):
        # ArgumentError's text contains the URL itself, password included: drop it from the chain.
        raise _invalid("could not be parsed") from None
    if target == "postgresql+asyncpg":
        if "sslmode" in parsed.query:
            # asyncpg takes the libpq sslmode values ("require", "verify-full", ...) as ``ssl``.
            sslmode = parsed.query["sslmode"]
            parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": sslmode})
            normalized = parsed.render_as_string(hide_password=False)
    elif not parsed.database:
        raise _invalid("names no SQLite file (use sqlite:///path/to/file.db)")
    return normalized


def default_database_url() -> str:
    """The embedded default: a SQLite file in the working directory."""
    return normalize_database_url(f"sqlite:///{DEFAULT_SQLITE_PATH}")


def redact_url(url: str | URL) -> str:
    """``url`` fit for a log line: the password replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _USERINFO_PASSWORD_RE.sub(r"\g<head>:***@", url)


def is_sqlite(url: str | URL) -> bool:
    parsed = url if isinstance(url, URL) else make_url(url)
    return parsed.get_backend_name() == "sqlite"


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database or url.query.get("mode") == "memory"


def create_engine(
    url: str,
    *,
    pool_size: int = POOL_SIZE,
    max_overflow: int = MAX_OVERFLOW,
    pool_timeout: float = POOL_TIMEOUT,
    connect_timeout: float = 3.0,
    statement_timeout: float = 10.0,
    sqlite_busy_timeout_ms: int = 5000,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
    echo: bool = False,
) -> AsyncEngine:
    """An :class:`AsyncEngine` for ``url`` (normalized first), tuned to fail fast.

    PostgreSQL: a small pool (see :data:`POOL_SIZE`), a ping before using a connection that sat idle
    for ``ping_after_idle`` seconds, so one the network dropped (or the server restarted) meanwhile is
    replaced instead of failing a request (see :data:`PING_AFTER_IDLE_SECONDS`), a connect timeout short enough
    that a click during an outage gets its clear "database unreachable" answer within seconds, a wait
    for a free connection (``pool_timeout``) that absorbs bursts, a server-side ``statement_timeout``
    and a slightly longer client-side ``command_timeout`` (the server cancels first and the connection
    stays usable; the client timeout only fires when the server itself is gone), and an idle-in-transaction
    timeout so a frozen replica cannot hold a row lock forever.

    SQLite: WAL (readers never block the writer), ``busy_timeout`` so writers queue instead of failing,
    foreign keys on, and SQLAlchemy in charge of BEGIN so write transactions can be ``BEGIN IMMEDIATE``
    (see :data:`SQLITE_IMMEDIATE`).
    """
    parsed = make_url(normalize_database_url(url))
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            busy_timeout_ms=sqlite_busy_timeout_ms,
            echo=echo,
        )
    statement_ms = int(statement_timeout * 1000)
    connect_args: dict[str, Any] = {
        "timeout": connect_timeout,
        "command_timeout": statement_timeout + 2.0,
        "server_settings": {
            "application_name": "atlas-chatops",
            "statement_timeout": str(statement_ms),
            "idle_in_transaction_session_timeout": str(max(3 * statement_ms, 30_000)),
        },
    }
    engine = create_async_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # PaaS proxies and load balancers silently drop long-idle connections.
        pool_recycle=1800,
        connect_args=connect_args,
        echo=echo,
    )
    _ping_when_idle(engine, ping_after_idle)
    return engine


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection on checkout only if it was checked in ``idle_seconds`` ago or more.

    A connection just made is not pinged (it has no check-in time yet). A failed ping raises
    DisconnectionError from the checkout event, which SQLAlchemy documents as the way to have the
    pool replace the connection and retry; a disconnect invalidates every connection pooled before
    it, as pool_pre_ping does, since a restarted server has dropped them all.
    """
    dialect: Dialect = engine.dialect

    def on_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None:  # None: the connection was invalidated, not returned
            record.info[_IDLE_SINCE] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            # Checkout runs inside SQLAlchemy's greenlet, where the async driver's ping can be awaited.
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise InvalidatePoolError(f"ping failed: {type(exc).__name__}") from exc
            raise DisconnectionError(f"ping failed: {type(exc).__name__}") from exc

    event.listen(engine.sync_engine, "checkin", on_checkin)
    event.listen(engine.sync_engine, "checkout", on_checkout)


def _create_sqlite_engine(
    url: URL,
    *,
    pool_size: int,
    max_overflow: int,
    pool_timeout: float,
    busy_timeout_ms: int,
    echo: bool,
) -> AsyncEngine:
    if _is_sqlite_memory(url):
        # SQLAlchemy gives in-memory databases a StaticPool, which takes no sizing arguments.
        engine = create_async_engine(url, echo=echo)
    else:
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            echo=echo,
        )

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Stop the sqlite3 module from issuing its own (deferred) BEGIN; on_begin below does it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    def on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(SQLITE_IMMEDIATE) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)
    return engine

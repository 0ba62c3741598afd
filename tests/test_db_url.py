"""DATABASE_URL normalization, redaction and the engine settings each backend gets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import (
    MAX_OVERFLOW,
    PING_AFTER_IDLE_SECONDS,
    POOL_SIZE,
    POOL_TIMEOUT,
    create_engine,
    default_database_url,
    is_sqlite,
    normalize_database_url,
    redact_url,
)
from bot.errors import ConfigurationError
from tests.db import terminate_backend

NORMALIZED = [
    # what PaaS providers hand out
    ("postgres://user:pw@db.example.com:5432/app", "postgresql+asyncpg://user:pw@db.example.com:5432/app"),
    ("postgresql://user:pw@db.example.com/app", "postgresql+asyncpg://user:pw@db.example.com/app"),
    ("POSTGRES://user:pw@db.example.com/app", "postgresql+asyncpg://user:pw@db.example.com/app"),
    ("  postgres://user@db/app\n", "postgresql+asyncpg://user@db/app"),
    # libpq's sslmode becomes asyncpg's ssl
    ("postgres://user:pw@db/app?sslmode=require", "postgresql+asyncpg://user:pw@db/app?ssl=require"),
    # URL-encoded password characters survive untouched
    ("postgresql://user:p%40ss%25w@db/app", "postgresql+asyncpg://user:p%40ss%25w@db/app"),
    ("postgresql:///app", "postgresql+asyncpg:///app"),
    # explicit async drivers are left alone
    ("postgresql+asyncpg://user:pw@db:6543/app", "postgresql+asyncpg://user:pw@db:6543/app"),
    ("sqlite+aiosqlite:///data/bot.db", "sqlite+aiosqlite:///data/bot.db"),
    # SQLite
    ("sqlite:///atlas-chatops.db", "sqlite+aiosqlite:///atlas-chatops.db"),
    ("sqlite:////var/lib/bot/atlas.db", "sqlite+aiosqlite:////var/lib/bot/atlas.db"),
]

REFUSED = [
    ("", "is empty"),
    ("   ", "is empty"),
    ("hunter2-secret", "is not a URL"),
    ("mysql://user:hunter2-secret@db/app", "unsupported scheme 'mysql'"),
    ("postgresql+psycopg2://user:hunter2-secret@db/app", "unsupported scheme 'postgresql+psycopg2'"),
    ("sqlite+pysqlite:///x.db", "unsupported scheme 'sqlite+pysqlite'"),
    ("https://user:hunter2-secret@example.com/", "unsupported scheme 'https'"),
    ("postgres://user:hunter2-secret@db:notaport/app", "could not be parsed"),
    ("sqlite://", "names no SQLite file"),
]


@pytest.mark.parametrize(("given", "expected"), NORMALIZED)
def test_normalize_database_url(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected
    # idempotent: a normalized URL is accepted as is
    assert normalize_database_url(expected) == expected


@pytest.mark.parametrize(("given", "why"), REFUSED)
def test_normalize_refuses_with_accepted_forms_and_no_password(given: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        normalize_database_url(given)
    message = str(caught.value)
    assert "DATABASE_URL" in message
    assert why in message
    for form in (
        "postgres://",
        "postgresql://",
        "postgresql+asyncpg://",
        "sqlite:///",
        "sqlite+aiosqlite:///",
    ):
        assert form in message
    assert "hunter2" not in message
    # nothing in the chain carries it either (tracebacks end up in logs)
    cause = caught.value.__cause__ or caught.value.__context__
    assert cause is None or "hunter2" not in repr(cause)


def test_default_database_url_is_a_local_sqlite_file() -> None:
    url = default_database_url()
    assert url == "sqlite+aiosqlite:///./atlas-chatops.db"
    assert is_sqlite(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+asyncpg://bot:hunter2@db:5432/app", "postgresql+asyncpg://bot:***@db:5432/app"),
        ("postgres://bot:hunter2@db/app", "postgres://bot:***@db/app"),
        ("postgresql://bot@db/app", "postgresql://bot@db/app"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        # not parseable by SQLAlchemy: the fallback still hides the password
        ("weird://bot:hunter2@db:1:2/app", "weird://bot:***@db:1:2/app"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(make_url(url) if "weird" not in url else url) == expected


def test_create_engine_refuses_bad_url() -> None:
    with pytest.raises(ConfigurationError):
        create_engine("mysql://root:hunter2@db/app")


async def _scalar(engine: AsyncEngine, sql: str) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'settings.db'}")
    try:
        assert await _scalar(engine, "PRAGMA journal_mode") == "wal"
        assert await _scalar(engine, "PRAGMA foreign_keys") == 1
        assert await _scalar(engine, "PRAGMA busy_timeout") == 5000
        assert engine.pool.size() == POOL_SIZE  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_sqlite_memory_engine_works() -> None:
    engine = create_engine("sqlite:///:memory:")
    try:
        assert await _scalar(engine, "SELECT 1") == 1
        assert await _scalar(engine, "PRAGMA foreign_keys") == 1
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_postgres_engine_settings(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert await _scalar(engine, "SHOW statement_timeout") == "10s"
        assert await _scalar(engine, "SHOW idle_in_transaction_session_timeout") == "30s"
        assert await _scalar(engine, "SHOW application_name") == "atlas-chatops"
        assert await _scalar(engine, "SHOW transaction_isolation") == "read committed"
        pool = engine.pool
        # Sized for 2 cores: two replicas stay within 16 server connections (see bot/db.py).
        assert (POOL_SIZE, MAX_OVERFLOW, POOL_TIMEOUT) == (4, 4, 20.0)
        assert pool.size() == POOL_SIZE  # type: ignore[attr-defined]
        assert pool._max_overflow == MAX_OVERFLOW  # type: ignore[attr-defined]
        # Pinged only after sitting idle (see test_idle_connections_are_pinged_and_busy_ones_are_not).
        assert pool._pre_ping is False
        assert PING_AFTER_IDLE_SECONDS == 1.0
        assert pool._timeout == POOL_TIMEOUT  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def _backend_pid(engine: AsyncEngine) -> int:
    return int(await _scalar(engine, "SELECT pg_backend_pid()"))  # type: ignore[call-overload]


def _count_pings(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ping the pool's checkout listener sends, counted (it still really pings)."""
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


@pytest.mark.postgres
@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_idle_connections_are_pinged_and_busy_ones_are_not(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, ping_after_idle=0.2)
    pings = _count_pings(engine, monkeypatch)
    try:
        first = await _backend_pid(engine)  # a new connection: nothing to ping
        for _ in range(5):  # back to back, as under a burst: the same connection, no ping
            assert await _backend_pid(engine) == first
        assert pings == []
        await asyncio.sleep(0.3)
        assert await _backend_pid(engine) == first  # idle 0.3 s: pinged, alive, kept
        assert pings == [1]
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_a_connection_the_server_dropped_while_idle_is_replaced_unseen(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What pool_pre_ping gave, kept for connections idle past the threshold: the server restarting
    (here: killing the backend) between two requests does not fail the second one."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0, ping_after_idle=0.2)
    pings = _count_pings(engine, monkeypatch)
    try:
        dropped = await _backend_pid(engine)
        assert await terminate_backend(dropped)
        await asyncio.sleep(0.3)
        replacement = await _backend_pid(engine)
        assert replacement != dropped
        assert pings == [1]  # the dropped one's failed ping; the replacement is new, so not pinged
    finally:
        await engine.dispose()

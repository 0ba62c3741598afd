"""Database fixtures shared by every test (other concerns live in conftest files of subfolders).

PostgreSQL at ``ATLAS_CHATOPS_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``)
is probed once per session. Unreachable: the ``postgresql`` half of ``db_backend`` is skipped and the
run says so in its header and summary, unless ``ATLAS_CHATOPS_REQUIRE_POSTGRES=1`` (CI), which
makes an unreachable server end the session with an error instead.

Fixtures:
    db_backend    "sqlite" | "postgresql" (parametrized: every test using it runs on both; tests/e2e
                  pairs it with the work modes instead)
    database_url  a fresh database migrated to head, dropped afterwards (``+driver`` URL)
    db_engine     an AsyncEngine on it from bot.db.create_engine, disposed afterwards
    clock         a tests.db.ManualClock: frozen until ``clock.advance(seconds=...)``
    store         bot.store.Store(db_engine, clock=clock)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import create_engine, redact_url
from bot.store import Store
from tests.db import Backend, ManualClock, admin_pg_url, drop_database, make_database, pg_reachable

_PG_UNREACHABLE = pytest.StashKey[str | None]()
FALLBACK_LINE = "PostgreSQL unreachable: store tests ran on SQLite only"


def _postgres_required() -> bool:
    return os.environ.get("ATLAS_CHATOPS_REQUIRE_POSTGRES", "").strip().lower() in {"1", "true", "yes"}


def pytest_configure(config: pytest.Config) -> None:
    # Probed here, before any test's event loop exists, so the header can already tell.
    config.stash[_PG_UNREACHABLE] = asyncio.run(pg_reachable())


def pytest_sessionstart(session: pytest.Session) -> None:
    reason = session.config.stash[_PG_UNREACHABLE]
    if reason is not None and _postgres_required():
        pytest.exit(
            f"ATLAS_CHATOPS_REQUIRE_POSTGRES is set but PostgreSQL at {redact_url(admin_pg_url())} "
            f"is unreachable ({reason}). Start it, or point ATLAS_CHATOPS_TEST_PG_URL at one.",
            returncode=1,
        )


def pytest_report_header(config: pytest.Config) -> str:
    reason = config.stash.get(_PG_UNREACHABLE, None)
    if reason is None:
        return f"database backends: sqlite, postgresql ({redact_url(admin_pg_url())})"
    return f"database backends: sqlite only; PostgreSQL unreachable at {redact_url(admin_pg_url())} ({reason})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if config.stash.get(_PG_UNREACHABLE, None) is not None:
        terminalreporter.write_line(FALLBACK_LINE, yellow=True, bold=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> Backend:
    return backend_or_skip(request)


def backend_or_skip(request: pytest.FixtureRequest) -> Backend:
    """``request.param`` as the backend, the test skipped if it is PostgreSQL and unreachable."""
    backend = cast(Backend, request.param)
    if backend == "postgresql":
        reason = request.config.stash[_PG_UNREACHABLE]
        if reason is not None:
            pytest.skip(f"PostgreSQL unreachable ({reason}); set ATLAS_CHATOPS_REQUIRE_POSTGRES=1 to fail instead")
    return backend


@pytest.fixture
async def database_url(db_backend: Backend, tmp_path: Path) -> AsyncIterator[str]:
    url = await make_database(db_backend, directory=tmp_path if db_backend == "sqlite" else None)
    try:
        yield url
    finally:
        await drop_database(url)


@pytest.fixture
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(db_engine: AsyncEngine, clock: ManualClock) -> Store:
    return Store(db_engine, clock=clock)

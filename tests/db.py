"""Throwaway databases for tests, usable outside pytest (e.g. by multi-process tests).

PostgreSQL: a uniquely named database ``acops_<hex>`` created on the server of the admin URL (env
``ATLAS_CHATOPS_TEST_PG_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``) and dropped
``WITH (FORCE)``. SQLite: a file in a fresh temporary directory (or the one given).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from bot.db import normalize_database_url
from bot.migrate import upgrade

__all__ = [
    "Backend",
    "ManualClock",
    "admin_pg_url",
    "drop_database",
    "make_database",
    "pg_reachable",
    "terminate_backend",
]

Backend = Literal["sqlite", "postgresql"]

DEFAULT_ADMIN_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
_PREFIX = "acops_"
_SQLITE_DIR_PREFIX = "acops-sqlite-"


def admin_pg_url() -> str:
    """The libpq-style URL of a database we may connect to in order to create others."""
    return os.environ.get("ATLAS_CHATOPS_TEST_PG_URL") or DEFAULT_ADMIN_PG_URL


def _libpq(url: str) -> str:
    """asyncpg wants plain ``postgresql://``, not SQLAlchemy's ``postgresql+asyncpg://``."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def pg_reachable(connect_timeout: float = 3.0) -> str | None:
    """None if the admin database answers, else why not (for the report)."""
    try:
        conn = await asyncpg.connect(_libpq(normalize_database_url(admin_pg_url())), timeout=connect_timeout)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def make_database(backend: Backend, *, directory: Path | None = None, migrate: bool = True) -> str:
    """Create an empty, isolated database and return its ``+driver`` URL (migrated to head unless told)."""
    if backend == "sqlite":
        folder = directory if directory is not None else Path(tempfile.mkdtemp(prefix=_SQLITE_DIR_PREFIX))
        url = normalize_database_url(f"sqlite:///{folder / f'{_PREFIX}{uuid.uuid4().hex[:12]}.db'}")
    elif backend == "postgresql":
        name = f"{_PREFIX}{uuid.uuid4().hex}"
        admin = normalize_database_url(admin_pg_url())
        conn = await asyncpg.connect(_libpq(admin), timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    if migrate:
        try:
            await upgrade(url)
        except BaseException:
            await drop_database(url)
            raise
    return url


async def drop_database(url: str) -> None:
    """Remove a database made by :func:`make_database` (idempotent)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite":
        path = Path(database)
        for suffix in ("", "-wal", "-shm", "-journal"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        if path.parent.name.startswith(_SQLITE_DIR_PREFIX):
            shutil.rmtree(path.parent, ignore_errors=True)
        return
    if not database.startswith(_PREFIX):
        raise ValueError("refusing to drop a database this helper did not create")
    conn = await asyncpg.connect(_libpq(normalize_database_url(admin_pg_url())), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


async def terminate_backend(pid: int) -> bool:
    """Kill one PostgreSQL server process (a pooled connection's backend), as a restart or a dropped
    network would, from the admin database; True if the server found it."""
    conn = await asyncpg.connect(_libpq(normalize_database_url(admin_pg_url())), timeout=10)
    try:
        return bool(await conn.fetchval("SELECT pg_terminate_backend($1)", pid))
    finally:
        await conn.close()


class ManualClock:
    """A clock for :class:`bot.store.Store` that only moves when told to (``advance``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start if start is not None else datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

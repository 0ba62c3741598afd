"""Alembic environment: runs the migrations against ``sqlalchemy.url`` from the Alembic config.

The URL is set programmatically by :func:`bot.migrate.alembic_config`; nothing here reads the
environment or a module-level setting. The engine comes from :func:`bot.db.create_engine`, so on
SQLite the migration runs inside a real transaction (SQLAlchemy emits BEGIN) and a failed revision
leaves nothing half-applied, as on PostgreSQL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.db import SQLITE_IMMEDIATE, create_engine, normalize_database_url
from bot.errors import ConfigurationError
from bot.store import metadata

# Migrations may rewrite big tables one day: give them more time than a Slack click gets, and let a
# second migrator wait for the first instead of giving up.
_MIGRATION_STATEMENT_TIMEOUT_S = 600.0
_SQLITE_MIGRATION_BUSY_TIMEOUT_MS = 600_000
# pg_advisory_xact_lock key shared by every atlas-chatops migrator ("acops" in ASCII).
_MIGRATION_LOCK_KEY = 0x61636F7073


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise ConfigurationError(
            "No database URL for the migration: run it through bot.migrate (which sets sqlalchemy.url)."
        )
    return normalize_database_url(url)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=_url().startswith("sqlite"),
        transactional_ddl=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas starting together all run "upgrade head": the first migrates, the others wait
            # here until it commits and then read the new version and find nothing to do. (On
            # SQLite the transaction began IMMEDIATE, which serializes migrators the same way.)
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_engine(
        _url(),
        pool_size=1,
        max_overflow=0,
        statement_timeout=_MIGRATION_STATEMENT_TIMEOUT_S,
        sqlite_busy_timeout_ms=_SQLITE_MIGRATION_BUSY_TIMEOUT_MS,
    )
    try:
        async with engine.connect() as connection:
            await connection.execution_options(**{SQLITE_IMMEDIATE: True})
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    # bot.migrate runs Alembic in a worker thread, so this thread has no event loop of its own yet.
    asyncio.run(run_migrations_online())

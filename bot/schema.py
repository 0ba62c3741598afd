"""Is the database's schema the one this code expects? Used by ``serve`` and ``check``.

``serve`` migrates the embedded SQLite database itself (a fresh machine needs no extra step),
but never a shared PostgreSQL: several replicas starting at once must not race on DDL, so
there the ``release`` step (``atlas-chatops migrate``) does it, and ``serve`` refuses to start
on a schema that is behind, with a message saying so.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import create_engine, normalize_database_url
from bot.errors import ChatOpsError, ConfigurationError, StoreUnavailable
from bot.migrate import alembic_config, upgrade

__all__ = ["SchemaStatus", "ensure_schema", "schema_status"]


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head


def _head(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if head is None:
        raise ConfigurationError("the package ships no migrations (bot/migrations is missing)")
    return head


async def schema_status(engine: AsyncEngine) -> SchemaStatus:
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    except (OperationalError, DBAPIError, OSError) as exc:
        raise StoreUnavailable("The database is unreachable (check DATABASE_URL).") from exc
    return SchemaStatus(current=current, head=_head(engine.url.render_as_string(hide_password=False)))


async def ensure_schema(url: str) -> SchemaStatus:
    """Migrate SQLite to head; for other databases, insist the release step already did."""
    if normalize_database_url(url).startswith("sqlite"):
        await upgrade(url)
    engine = create_engine(url)
    try:
        status = await schema_status(engine)
    finally:
        await engine.dispose()
    if not status.at_head:
        raise ConfigurationError(
            f"DATABASE_URL: the schema is at revision {status.current or 'none'}, this version needs "
            f"{status.head}. Run `atlas-chatops migrate` (the Procfile's release step) first."
        )
    return status


def main() -> int:
    """``python -m bot.schema``: the work process runs it once at start (see bot.work_process)."""
    import os

    from bot.logs import configure_logging
    from bot.settings import Settings

    environ = dict(os.environ)
    try:
        settings = Settings.from_environ(environ)
        configure_logging(level=settings.log_level, fmt=settings.log_format, secrets=settings.secret_values(environ))
        asyncio.run(ensure_schema(settings.database_url))
    except ChatOpsError as exc:
        # The message is written for people and never carries a secret (bot.errors).
        print(json.dumps({"configuration": isinstance(exc, ConfigurationError), "message": exc.user_message}))
        return 2 if isinstance(exc, ConfigurationError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

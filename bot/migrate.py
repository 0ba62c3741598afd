"""Schema migrations, run from code (the CLI's ``migrate``; :mod:`bot.schema` at startup).

The Alembic scripts ship inside the package (``bot/migrations``) and are found as a package resource,
so this works from an installed wheel as well as from a checkout. Several processes may run
:func:`upgrade` at once: the migration itself takes a lock (an advisory lock on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite; see ``bot/migrations/env.py``), so one migrates and the others then
find nothing to do.

Database outages surface as :class:`bot.errors.StoreUnavailable`, as they do from the store.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from alembic import command
from alembic.config import Config

from bot.db import normalize_database_url
from bot.store import translate_errors

__all__ = ["alembic_config", "downgrade", "upgrade"]

SCRIPT_LOCATION = "bot:migrations"

# Alembic's ``context`` is a module-level proxy: two commands running at once in one process would
# clobber each other's. Replicas are separate processes and are serialized by the database instead.
_COMMAND_LOCK = threading.Lock()


def _scripts_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # Without it Alembic warns that it falls back to legacy path splitting.
    config.set_main_option("path_separator", "os")
    return config


def alembic_config(url: str) -> Config:
    """An Alembic :class:`Config` for ``url`` without any .ini file."""
    config = _scripts_config()
    # The config is a ConfigParser: a literal '%' (URL-encoded password characters) must be doubled.
    config.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    return config


def _run(fn: Callable[[Config, str], None], config: Config, revision: str) -> None:
    with _COMMAND_LOCK:
        fn(config, revision)


@translate_errors
async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``."""
    # Alembic's commands are synchronous and env.py runs its own event loop (asyncio.run), which
    # cannot nest in the caller's: give it a worker thread.
    await asyncio.to_thread(_run, command.upgrade, alembic_config(url), revision)


@translate_errors
async def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"`` drops everything)."""
    await asyncio.to_thread(_run, command.downgrade, alembic_config(url), revision)

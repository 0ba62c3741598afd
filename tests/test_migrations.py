"""The shipped Alembic migrations: they run both ways on both backends and match bot.store's tables."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, MetaData, String, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import create_engine
from bot.errors import StoreUnavailable
from bot.migrate import alembic_config, downgrade, upgrade
from bot.store import metadata
from tests.db import Backend, drop_database, make_database

TABLES = {"action_requests", "approvals", "audit_events"}
REPO_ROOT = Path(__file__).resolve().parents[1]


async def _diff(engine: AsyncEngine, target: MetaData) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, target))

    async with engine.connect() as conn:
        return await conn.run_sync(compare)


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def _revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def test_scripts_are_found_as_package_resource() -> None:
    config = alembic_config("sqlite:///unused.db")
    assert config.get_main_option("script_location") == "bot:migrations"
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == ["0001"]  # one head: no accidental branches
    assert [rev.revision for rev in scripts.walk_revisions()] == ["0001"]


def test_config_keeps_percent_encoded_passwords() -> None:
    config = alembic_config("postgres://bot:p%40ss%25@db/app")
    assert config.get_main_option("sqlalchemy.url") == "postgresql+asyncpg://bot:p%40ss%25@db/app"


async def test_head_matches_store_metadata(db_engine: AsyncEngine) -> None:
    assert await _diff(db_engine, metadata) == []
    assert await _revision(db_engine) == "0001"


async def test_comparison_would_notice_a_drift(db_engine: AsyncEngine) -> None:
    # Guards the test above against passing vacuously.
    drifted = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["approvals"].append_column(Column("note", String(), nullable=True))
    diff = await _diff(db_engine, drifted)
    assert any(entry[0] == "add_column" and entry[3].name == "note" for entry in diff), diff


async def test_upgrade_downgrade_upgrade(db_backend: Backend) -> None:
    url = await make_database(db_backend, migrate=False)
    engine = create_engine(url)
    try:
        assert await _tables(engine) == set()
        await upgrade(url)
        assert await _tables(engine) >= TABLES
        assert await _revision(engine) == "0001"

        await downgrade(url, "base")
        assert await _tables(engine) & TABLES == set()
        assert await _revision(engine) is None

        await upgrade(url, "head")
        assert await _tables(engine) >= TABLES
        assert await _diff(engine, metadata) == []
        # upgrading an up-to-date database is a no-op
        await upgrade(url)
        assert await _revision(engine) == "0001"
    finally:
        await engine.dispose()
        await drop_database(url)


async def test_unreachable_database_fails_the_migration_clearly() -> None:
    with pytest.raises(StoreUnavailable) as caught:
        await upgrade("postgresql://bot:hunter2@127.0.0.1:1/app")
    assert "hunter2" not in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)


_UPGRADE_IN_A_PROCESS = "import asyncio, sys; from bot.migrate import upgrade; asyncio.run(upgrade(sys.argv[1]))"


@pytest.mark.slow
async def test_racing_processes_migrate_once(db_backend: Backend) -> None:
    """Replicas started together all run "upgrade head": exactly one migrates, none fails."""
    url = await make_database(db_backend, migrate=False)
    try:
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _UPGRADE_IN_A_PROCESS,
                url,
                cwd=REPO_ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(4)
        ]
        outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), timeout=120)
        failures = [err.decode() for p, (_, err) in zip(processes, outputs, strict=True) if p.returncode != 0]
        assert not failures, failures[0]
        engine = create_engine(url)
        try:
            assert await _revision(engine) == "0001"
            assert await _diff(engine, metadata) == []
        finally:
            await engine.dispose()
    finally:
        await drop_database(url)

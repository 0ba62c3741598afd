"""Fixtures for the multi-process replica tests: a fresh PostgreSQL database, the fakes, the cluster.

These tests need PostgreSQL (SQLite cannot be shared by several hosts). When it is unreachable they
are skipped with the reason, unless ``ATLAS_CHATOPS_REQUIRE_POSTGRES`` is set, in which case the
session already stopped with an error (see ``tests/conftest.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import create_engine
from bot.store import Store
from tests.conftest import _PG_UNREACHABLE
from tests.db import drop_database, make_database
from tests.fakes.fake_atlas import FakeAtlas
from tests.fakes.fake_slack import FakeSlack
from tests.replicas.cluster import BOB, BOT_TOKEN, Cluster


@pytest.fixture
async def pg_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    reason = request.config.stash[_PG_UNREACHABLE]
    if reason is not None:
        pytest.skip(
            f"PostgreSQL unreachable ({reason}): several replicas need one shared PostgreSQL; "
            "set ATLAS_CHATOPS_REQUIRE_POSTGRES=1 to fail instead"
        )
    url = await make_database("postgresql")
    try:
        yield url
    finally:
        await drop_database(url)


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> Store:
    return Store(engine)


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN)
    await fake.start()
    fake.add_usergroup(id="S0APPROVERS", handle="atlas-approvers", users=[BOB])
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def fake_atlas() -> AsyncIterator[FakeAtlas]:
    fake = FakeAtlas(rate_limit_capacity=1_000_000)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def cluster(tmp_path: Path, pg_url: str, fake_slack: FakeSlack, fake_atlas: FakeAtlas) -> AsyncIterator[Cluster]:
    client_id, client_secret = fake_atlas.add_service_account()
    connector = aiohttp.TCPConnector(limit=400)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        cluster = Cluster(
            tmp_path=tmp_path,
            database_url=pg_url,
            fake_slack=fake_slack,
            fake_atlas=fake_atlas,
            http=http,
            atlas_client_id=client_id,
            atlas_client_secret=client_secret,
        )
        try:
            yield cluster
        finally:
            await cluster.kill_all()

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from tests.conftest import backend_or_skip
from tests.db import Backend
from tests.e2e.harness import Harness, WorkMode, running_bot

# (work mode, database): the service's loop and thread on PostgreSQL, the production store; the
# plain loop on SQLite too; a real work process on SQLite, as `serve` runs by default (tests/replicas
# run real `serve` processes, work process included, on PostgreSQL). What the store does differently
# on each database is tested in tests/test_store.py and tests/hostile on both.
IN_PROCESS: list[tuple[WorkMode, Backend]] = [
    ("one-loop", "sqlite"),
    ("one-loop", "postgresql"),
    ("work-thread", "postgresql"),
]
THROUGH_A_WORK_PROCESS: list[tuple[WorkMode, Backend]] = [("work-process", "sqlite")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test using ``harness`` runs in the combinations of :data:`IN_PROCESS`; those marked
    ``work_process`` (they observe the bot only as Slack, Atlas and the database do) also in
    :data:`THROUGH_A_WORK_PROCESS`."""
    if "harness" not in metafunc.fixturenames:
        if "db_backend" in metafunc.fixturenames:  # a test starting its own bot: both databases
            metafunc.parametrize(
                "db_backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
            )
        return
    combinations = list(IN_PROCESS)
    if metafunc.definition.get_closest_marker("work_process") is not None:
        combinations += THROUGH_A_WORK_PROCESS
    metafunc.parametrize(
        ("harness", "db_backend"),
        [
            pytest.param(
                mode, backend, id=f"{backend}-{mode}", marks=[pytest.mark.postgres] if backend == "postgresql" else []
            )
            for mode, backend in combinations
        ],
        indirect=True,
    )


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> Backend:
    """As tests/conftest.py's, without params of its own: :func:`pytest_generate_tests` pairs it
    with the work mode."""
    return backend_or_skip(request)


@pytest.fixture
async def harness(
    request: pytest.FixtureRequest, database_url: str, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Harness]:
    """The bot in the work mode the test is parametrised with (see :func:`pytest_generate_tests`):
    every flow must behave the same each way."""
    # Capture everything, DEBUG included, so secret-hygiene checks see what an operator would.
    caplog.set_level(logging.DEBUG)
    mode: WorkMode = request.param
    async with running_bot(
        database_url,
        extra_env={"ATLAS_CHATOPS_GROUP_CACHE_SECONDS": "0"},
        work_thread=mode == "work-thread",
        work_process=mode == "work-process",
    ) as h:
        yield h

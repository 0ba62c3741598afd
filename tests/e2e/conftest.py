from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from tests.e2e.harness import Harness, WorkMode, running_bot

IN_PROCESS_MODES: list[WorkMode] = ["one-loop", "work-thread"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test using ``harness`` runs with the service on the HTTP server's loop and on its own
    thread; those marked ``work_process`` (they observe the bot only as Slack, Atlas and the
    database do) also against a real work process, as ``serve`` runs by default."""
    if "harness" in metafunc.fixturenames:
        modes = list(IN_PROCESS_MODES)
        if metafunc.definition.get_closest_marker("work_process") is not None:
            modes.append("work-process")
        metafunc.parametrize("harness", modes, indirect=True)


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

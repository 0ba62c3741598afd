from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from tests.e2e.harness import Harness, running_bot


@pytest.fixture(params=["one-loop", "work-thread"])
async def harness(
    request: pytest.FixtureRequest, database_url: str, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Harness]:
    """The bot with its service on the HTTP server's loop, and on its own thread as ``serve``
    runs it (bot.work_loop): every flow must behave the same either way."""
    # Capture everything, DEBUG included, so secret-hygiene checks see what an operator would.
    caplog.set_level(logging.DEBUG)
    async with running_bot(
        database_url,
        extra_env={"ATLAS_CHATOPS_GROUP_CACHE_SECONDS": "0"},
        work_thread=request.param == "work-thread",
    ) as h:
        yield h

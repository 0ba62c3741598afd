from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from tests.e2e.harness import Harness, running_bot


@pytest.fixture
async def harness(database_url: str, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Harness]:
    # Capture everything, DEBUG included, so secret-hygiene checks see what an operator would.
    caplog.set_level(logging.DEBUG)
    async with running_bot(database_url, extra_env={"ATLAS_CHATOPS_GROUP_CACHE_SECONDS": "0"}) as h:
        yield h

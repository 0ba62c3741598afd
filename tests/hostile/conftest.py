from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.hostile.harness import HostileHarness, capture_everything, hostile_bot
from tests.hostile.tally import summary_lines


@pytest.fixture
async def hostile(database_url: str, caplog: pytest.LogCaptureFixture) -> AsyncIterator[HostileHarness]:
    # Everything, DEBUG included: what an operator running LOG_LEVEL=DEBUG would see.
    capture_everything(caplog)
    async with hostile_bot(database_url) as h:
        yield h


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for line in summary_lines(verbose=config.get_verbosity() > 0):
        terminalreporter.write_line(line)

"""Log set-up: what third-party loggers cost and write at the bot's level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.logs import configure_logging, pin_slack_library_levels


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    """Put the logging module back as it was: configure_logging changes global state."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in list(logging.root.manager.loggerDict)}
    handler = Records()
    try:
        yield handler
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in list(logging.root.manager.loggerDict):
            logging.getLogger(name).setLevel(levels.get(name, logging.NOTSET))


def _configure(level: str, handler: Records) -> None:
    configure_logging(level=level, fmt="text", secrets=[])
    logging.getLogger().addHandler(handler)


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_slack_clients_build_no_debug_message_above_debug(records: Records, level: str) -> None:
    # A logger slack_sdk made at start-up, left at NOTSET as libraries leave theirs.
    made_at_start_up = logging.getLogger("slack_sdk.socket_mode.aiohttp")
    made_at_start_up.setLevel(logging.NOTSET)
    _configure(level, records)
    pin_slack_library_levels()
    # slack_sdk formats a whole request into a DEBUG message when `logger.level <= DEBUG`.
    for logger in (
        AsyncWebClient(token="xoxb-test").logger,
        AsyncWebhookClient("http://127.0.0.1:1/hook").logger,
        made_at_start_up,
    ):
        assert not logger.level <= logging.DEBUG, logger.name
        assert logger.level == logging.getLevelName(level)


def test_at_debug_the_slack_clients_still_log_debug(records: Records) -> None:
    _configure("DEBUG", records)
    pin_slack_library_levels()
    logger = AsyncWebClient(token="xoxb-test").logger
    assert logger.level == logging.DEBUG
    logger.debug("kept")
    assert [r.getMessage() for r in records.records] == ["kept"]


async def _one_httpx_request() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200))) as client:
        (await client.get("http://atlas.test/api/atlas/v2/orgs")).raise_for_status()


async def test_httpx_request_lines_are_dropped_at_info(records: Records) -> None:
    _configure("INFO", records)
    await _one_httpx_request()
    assert [r for r in records.records if r.name.startswith("httpx")] == []
    logging.getLogger("bot.test").info("the bot's own INFO lines stay")
    assert [r.getMessage() for r in records.records] == ["the bot's own INFO lines stay"]


async def test_httpx_request_lines_are_kept_at_debug(records: Records) -> None:
    _configure("DEBUG", records)
    await _one_httpx_request()
    lines = [r.getMessage() for r in records.records if r.name == "httpx"]
    assert any(line.startswith("HTTP Request: GET http://atlas.test/api/atlas/v2/orgs") for line in lines), lines

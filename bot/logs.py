"""Logging set-up: plain text or one JSON object per line, and a last line of defence that
scrubs any known secret value from every record before it is written."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime

__all__ = [
    "JsonFormatter",
    "RequestIdFilter",
    "SecretScrubber",
    "bind_request_id",
    "configure_logging",
    "pin_slack_library_levels",
]

# The action request the current task works on. asyncio copies the context into tasks it creates,
# so the execution spawned after an approval logs under the same id.
_request_id: ContextVar[str | None] = ContextVar("atlas_chatops_request_id", default=None)


def bind_request_id(request_id: str | None) -> None:
    """Tag every log line written from here on in this task (and tasks it starts) with the id."""
    _request_id.set(request_id)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = _request_id.get() or "-"
        return True


class SecretScrubber(logging.Filter):
    """Replaces known secret values in the final message. Our code never logs secrets; this
    catches a third-party library that might (a URL with a token, a header dump)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        scrubbed = message
        for secret in self._secrets:
            scrubbed = scrubbed.replace(secret, "[REDACTED]")
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id and request_id != "-":
            entry["request_id"] = request_id
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, level: str, fmt: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")
    )
    handler.addFilter(RequestIdFilter())
    handler.addFilter(SecretScrubber(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx writes a line at INFO for every request it sends: for this bot, every Atlas read of
    # every preview and re-check (the bot logs its own executions). At DEBUG they are kept.
    # Alembic (1.20 here) logs a line at INFO for each of its plugins as it loads them.
    for name in ("httpx", "alembic.runtime.plugins"):
        quiet = logging.getLogger(name)
        quiet.setLevel(max(root.level, logging.WARNING) if root.level > logging.DEBUG else root.level)


# Loggers slack_sdk makes per client or per call, after start-up; the sweep below cannot see them yet.
_SLACK_CALL_LOGGERS = ("slack_sdk.web.async_base_client", "slack_sdk.webhook.async_client")


def pin_slack_library_levels() -> None:
    """Give slack_sdk's and Bolt's loggers the root's level explicitly.

    Both libraries decide whether to build a DEBUG message with ``logger.level <= DEBUG``, which is
    true for a logger left at NOTSET whatever the root's level: every Web API call then formatted
    its whole request (a modal's view dict, with repr) into a message nobody logs, about 4% of the
    bot's CPU per command in ``bench/``. Call once everything is built (Socket Mode's client, Bolt's
    listeners), so that loggers made at start-up are covered too.
    """
    level = logging.getLogger().level
    for name in (*_SLACK_CALL_LOGGERS, *list(logging.root.manager.loggerDict)):
        if name.startswith(("slack_sdk", "slack_bolt")):
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(level)

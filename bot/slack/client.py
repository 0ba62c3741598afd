"""The Slack Web API client, as both sides build it (the work side with a keep-alive session)."""

from __future__ import annotations

from aiohttp import ClientSession
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings

__all__ = ["SLACK_TIMEOUT_SECONDS", "build_slack_client"]


SLACK_TIMEOUT_SECONDS = 10


def build_slack_client(settings: Settings, *, session: ClientSession | None = None) -> AsyncWebClient:
    """Without ``session`` slack_sdk opens a new connection (a TCP and TLS handshake) for every call;
    the bot passes one keep-alive session so views.open does not pay that inside the trigger window."""
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=SLACK_TIMEOUT_SECONDS,
        session=session,
        # Slack says when to retry (429 + Retry-After); connection errors are retried once.
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
        ],
    )

"""Pure retry decisions: which failures may be repeated, and how long to wait before the next try."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.atlas._operations import Operation
from bot.atlas.errors import (
    AtlasConnectError,
    AtlasConnectionLostError,
    AtlasError,
    AtlasRateLimitError,
    AtlasServerError,
    AtlasTimeoutError,
)

__all__ = ["RATE_LIMIT_CODES", "RetryPolicy", "backoff_delay", "is_retryable"]

RATE_LIMIT_CODES = frozenset({"RATE_LIMITED", "RATE_LIMITED_TOKEN_BUCKET"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    deadline: float = 30.0
    base_delay: float = 0.5
    max_delay: float = 8.0


def is_retryable(error: AtlasError, operation: Operation) -> bool:
    if isinstance(error, AtlasConnectError):
        return True
    if isinstance(error, (AtlasTimeoutError, AtlasConnectionLostError)):
        # Sent but unanswered: repeat only what cannot act twice.
        return operation.idempotent
    if isinstance(error, AtlasRateLimitError):
        if error.status != 429:
            return False
        # The OAuth endpoints answer 429 with an OAuth body, not an Atlas errorCode.
        return error.error_code in RATE_LIMIT_CODES or error.oauth_error is not None
    if isinstance(error, AtlasServerError):
        if error.status == 503:
            return True
        # A gateway error may hide a write that happened behind it.
        return error.status in (502, 504) and operation.idempotent
    return False


def backoff_delay(error: AtlasError, attempt: int, policy: RetryPolicy, random: Callable[[], float]) -> float:
    """Retry-After when Atlas sent one, else capped exponential backoff with full jitter."""
    retry_after: object = getattr(error, "retry_after", None)
    if isinstance(retry_after, (int, float)) and retry_after >= 0:
        return float(retry_after)
    ceiling: float = min(policy.max_delay, policy.base_delay * 2.0 ** (attempt - 1))
    return random() * ceiling

"""Client-side limiter for ``/api/oauth/*`` (token and revoke): at most 10 requests per minute.

A sliding window: a caller waits until the oldest of the last ``limit`` requests leaves the window,
unless that wait would overrun its call's remaining time budget, in which case it fails fast with a
rate-limit error that says how long to wait. The budget is relative (seconds), so the limiter's clock
need not be the caller's.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from bot.atlas.errors import AtlasRateLimitError

__all__ = ["OAuthRateLimiter"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class OAuthRateLimiter:
    def __init__(
        self,
        *,
        limit: int = 10,
        period: float = 60.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("limit must be >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self.clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        # FIFO fairness: callers queue on the lock instead of racing for a freed slot.
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"OAuthRateLimiter(limit={self.limit}, period={self.period})"

    async def acquire(self, *, operation: str, budget: float | None) -> None:
        deadline = None if budget is None else self.clock() + budget
        async with self._lock:
            while True:
                now = self.clock()
                while self._sent and now - self._sent[0] >= self.period:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                wait = self._sent[0] + self.period - now
                if deadline is not None and now + wait > deadline:
                    raise AtlasRateLimitError(
                        f"{operation}: the client-side limit of {self.limit} OAuth requests per "
                        f"{self.period:g} s is reached; retry in {wait:.0f} s",
                        operation=operation,
                        status=None,
                        error_code="CLIENT_OAUTH_RATE_LIMITED",
                        retry_after=wait,
                    )
                await self._sleep(wait)

"""Service-account OAuth (client credentials) as an httpx auth flow.

The flow does no I/O of its own: it yields the token request and is sent the response. One token is
cached and shared; it is refreshed ``refresh_margin`` seconds before expiry, by one caller at a time
(the others wait on the lock and reuse the result). A 401 on an API call invalidates the token that
call used, fetches a new one once, and replays the request once.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncGenerator, Callable
from typing import Final

import httpx
from pydantic import SecretStr

from bot.atlas._operations import OAUTH_TOKEN, OPERATIONS
from bot.atlas._ratelimit import OAuthRateLimiter
from bot.atlas._translate import error_from_response, parse_model
from bot.atlas.models import OAuthToken

__all__ = ["LABEL_EXTENSION", "REMAINING_EXTENSION", "OAuthClientCredentialsAuth", "basic_auth_header"]

# Request extensions the client sets so the flow can respect the call's deadline and name the call.
# The deadline travels as a callable returning the seconds left, so no clock is shared implicitly.
REMAINING_EXTENSION: Final = "atlas_remaining"
LABEL_EXTENSION: Final = "atlas_operation"

_FORM: Final = "application/x-www-form-urlencoded"


def basic_auth_header(client_id: str, client_secret: SecretStr) -> str:
    raw = f"{client_id}:{client_secret.get_secret_value()}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class OAuthClientCredentialsAuth(httpx.Auth):
    def __init__(
        self,
        client_id: str,
        client_secret: SecretStr,
        *,
        refresh_margin: float = 60.0,
        limiter: OAuthRateLimiter | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.client_id = client_id
        self._basic = SecretStr(basic_auth_header(client_id, client_secret))
        self.refresh_margin = refresh_margin
        self.limiter = limiter if limiter is not None else OAuthRateLimiter()
        self.clock = clock if clock is not None else self.limiter.clock
        self._token: SecretStr | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.token_requests = 0

    def __repr__(self) -> str:
        cached = self._token is not None
        return f"OAuthClientCredentialsAuth(client_id={self.client_id!r}, cached_token={cached})"

    def invalidate(self) -> None:
        self._token = None

    def _fresh_token(self) -> SecretStr | None:
        if self._token is not None and self.clock() < self._refresh_at:
            return self._token
        return None

    def _token_request(self, request: httpx.Request) -> httpx.Request:
        extensions = {k: v for k, v in request.extensions.items() if k in ("timeout", REMAINING_EXTENSION)}
        return httpx.Request(
            "POST",
            request.url.join(OAUTH_TOKEN.path),
            headers={
                "Authorization": self._basic.get_secret_value(),
                "Content-Type": _FORM,
                "Accept": OAUTH_TOKEN.accept,
                "User-Agent": request.headers.get("User-Agent", "atlas-chatops"),
            },
            content=b"grant_type=client_credentials",
            extensions=extensions,
        )

    def _store(self, response: httpx.Response, sent_at: float, label: str) -> SecretStr:
        operation = OPERATIONS.get(label, OAUTH_TOKEN)
        if response.status_code != 200:
            raise error_from_response(response, operation=operation, label=label)
        token = parse_model(response, OAuthToken, label=f"{label} (OAuth token)")
        # Never wait for a token that is refreshed on every call: cap the margin at half its life.
        margin = min(self.refresh_margin, token.expires_in / 2)
        self._token = SecretStr(token.access_token)
        self._refresh_at = sent_at + token.expires_in - margin
        return self._token

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        label = str(request.extensions.get(LABEL_EXTENSION, "atlas"))
        remaining = request.extensions.get(REMAINING_EXTENSION)
        token = self._fresh_token()
        if token is None:
            async with self._lock:
                token = self._fresh_token()
                if token is None:
                    await self.limiter.acquire(operation=label, budget=remaining() if callable(remaining) else None)
                    sent_at = self.clock()
                    self.token_requests += 1
                    response = yield self._token_request(request)
                    await response.aread()
                    token = self._store(response, sent_at, label)
        request.headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        response = yield request
        if response.status_code != 401:
            return
        async with self._lock:
            current = self._fresh_token()
            if current is None or current.get_secret_value() == token.get_secret_value():
                await self.limiter.acquire(operation=label, budget=remaining() if callable(remaining) else None)
                sent_at = self.clock()
                self.token_requests += 1
                response = yield self._token_request(request)
                await response.aread()
                current = self._store(response, sent_at, label)
        request.headers["Authorization"] = f"Bearer {current.get_secret_value()}"
        yield request

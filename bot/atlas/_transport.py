"""httpx transports for the Atlas client: every request over aiohttp, which here never resends.

Why aiohttp under httpx:

* CPU. httpx's default transport (httpcore's connection pool with its anyio locks and cancel scopes)
  costs about 1.5 ms of CPU per request at a concurrency of 20 on our hosts; the same
  ``httpx.AsyncClient`` over aiohttp costs about 0.3 ms (encode/httpx#3215, "httpx.AsyncClient has
  much worse performance than aiohttp.ClientSession with concurrent requests"). In ``bench/`` the
  one DELETE of an Approve click over httpx's transport was about a fifth of the click's CPU on the
  work side, more than its two preview re-reads over aiohttp together. ``httpx.AsyncClient`` stays
  on top: auth flows, our retries and the error translation in ``_translate`` all work on httpx types.
* Safety. ``aiohttp.ClientSession`` silently sends a request again when a connection drops and its
  method is in ``aiohttp.client.IDEMPOTENT_METHODS``, which includes DELETE. The bot's destructive
  DELETEs (revoke JWKS, delete IdP, delete federation) must never reach Atlas twice. Every session
  here switches that resend off (``_retry_connection``, as aiohttp's own test client does), so the
  client's ``RetryPolicy`` (backoff, deadline, attempt count, never for a write that may have
  arrived) is the only place a request is repeated. An aiohttp without that switch is refused when
  the transport is built (the bot does not start), never used with its resend on; then go back to
  ``httpx.AsyncHTTPTransport`` for writes, which never resends. aiohttp has it from 3.11 (3.10
  has none: its GETs, PUTs and DELETEs are resent), hence the pin in pyproject.toml.

Every aiohttp failure becomes the httpx exception that says whether the request can have reached the
server (see :func:`_map_error`). Messages name the exception class, the method and the URL path;
aiohttp exceptions are not chained, because ``ClientResponseError`` carries the request headers
(the bearer token) in its ``request_info``.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import httpx
import yarl

__all__ = [
    "MAX_CONNECTIONS",
    "READ_METHODS",
    "AiohttpTransport",
    "MethodSplitTransport",
    "aiohttp_resend_can_be_disabled",
]

READ_METHODS = frozenset({"GET", "HEAD"})

# Connections to Atlas per transport. Both libraries default to 100, and a request waiting for a
# connection spends its own deadline there: with 200 executions in flight against an Atlas taking
# 2 s per request, each execution's two re-reads queued behind 100 connections for longer than the
# 8 s preview deadline, and 350 of 850 approved requests stopped as PREVIEW_UNAVAILABLE without
# ever reaching Atlas. Atlas's own limit is its 429 with Retry-After (the client honours it); the
# pool should not be a second, silent one. 256 each stays well inside the usual 1024 descriptors.
MAX_CONNECTIONS = 256

# httpx always sends these itself; aiohttp must not add its own (e.g. an Accept-Encoding listing
# codings httpx cannot decode, or its User-Agent).
_SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent")

# str() of these never includes request headers: OS errors, host:port, parser and timeout messages.
# ClientResponseError is left out: its str has the URL with the query, its repr has the headers.
_SAFE_TO_QUOTE = (aiohttp.ClientOSError, aiohttp.ServerConnectionError, aiohttp.ClientPayloadError)


def aiohttp_resend_can_be_disabled() -> bool:
    """Whether this aiohttp has the session switch that turns its silent resend off."""
    return "_retry_connection" in getattr(aiohttp.ClientSession, "ATTRS", frozenset())


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests through one lazily created ``aiohttp.ClientSession`` that never resends.

    It reads the whole body before returning and hands httpx the raw, still encoded bytes, so httpx
    decodes Content-Encoding as with its own transport. ``pool`` names it in logs and tests ("reads",
    "writes"). Use through :class:`MethodSplitTransport`.
    """

    def __init__(self, *, pool: str, limit: int = MAX_CONNECTIONS, keepalive_timeout: float = 5.0) -> None:
        if not aiohttp_resend_can_be_disabled():
            raise RuntimeError("this aiohttp cannot switch its resend off; use httpx.AsyncHTTPTransport")
        self.pool = pool
        self._limit = limit
        self._keepalive_timeout = keepalive_timeout  # httpx's default keep-alive expiry
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use so it binds to the running loop; no await between check and set.
        session = self._session
        if session is None:
            if self._closed:
                raise RuntimeError(f"AiohttpTransport ({self.pool}) is closed")
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                keepalive_timeout=self._keepalive_timeout,
                ssl=httpx.create_ssl_context(),  # verification as httpx's default (honours SSL_CERT_FILE)
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
                skip_auto_headers=_SKIP_AUTO_HEADERS,
                auto_decompress=False,
                trust_env=False,
            )
            # aiohttp resends GET/HEAD, PUT and DELETE once on a dropped connection; aiohttp's own
            # test client switches it off the same way. Our RetryPolicy is the one place to retry,
            # and it never repeats a write that may have reached Atlas.
            session._retry_connection = False
            self._session = session
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._get_session()
        url = request.url
        if url.userinfo:
            url = url.copy_with(userinfo=b"")  # httpcore never sends userinfo; aiohttp would turn it into auth
        body = await request.aread()
        error: httpx.TransportError
        try:
            async with session.request(
                request.method,
                yarl.URL(str(url), encoded=True),  # httpx has percent-encoded it; do not requote
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                auto_decompress=False,
                timeout=_client_timeout(request.extensions.get("timeout")),
            ) as response:
                content = await response.read()
                version = response.version or aiohttp.HttpVersion11
                return httpx.Response(
                    response.status,
                    headers=response.raw_headers,
                    stream=httpx.ByteStream(content),
                    request=request,
                    extensions={
                        "http_version": f"HTTP/{version.major}.{version.minor}".encode(),
                        "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
                    },
                )
        except (TimeoutError, aiohttp.ClientError) as exc:
            error = _map_error(exc, request)
        # Raised outside the except block so the aiohttp exception is neither __cause__ nor __context__.
        raise error

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class MethodSplitTransport(httpx.AsyncBaseTransport):
    """GET and HEAD over one :class:`AiohttpTransport` pool; POST, DELETE and the rest over another,
    so a write never waits for a connection behind a burst of reads."""

    def __init__(
        self,
        *,
        reads: httpx.AsyncBaseTransport | None = None,
        writes: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.reads = reads or AiohttpTransport(pool="reads")
        self.writes = writes or AiohttpTransport(pool="writes")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.reads if request.method in READ_METHODS else self.writes
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        try:
            await self.reads.aclose()
        finally:
            await self.writes.aclose()


def _client_timeout(timeout: Mapping[str, float | None] | None) -> aiohttp.ClientTimeout:
    """httpx's {connect, read, write, pool} as aiohttp timeouts (aiohttp has no write timeout).

    aiohttp's ``connect`` covers waiting for a pooled connection plus connecting, so it gets
    pool + connect; ``sock_connect`` bounds the connect itself and ``sock_read`` each read.
    """
    if not timeout:
        return aiohttp.ClientTimeout(total=None)
    connect, read, pool = timeout.get("connect"), timeout.get("read"), timeout.get("pool")
    return aiohttp.ClientTimeout(
        total=None,
        connect=None if connect is None or pool is None else connect + pool,
        sock_connect=connect,
        sock_read=read,
    )


def _map_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception that says whether the request can have reached the server.

    Subclasses first: ConnectionTimeoutError is a ServerTimeoutError, ClientConnectorError (and its
    SSL/certificate/DNS subclasses) a ClientOSError, and every ServerTimeoutError a TimeoutError
    (asyncio.TimeoutError is the builtin TimeoutError).
    """
    cls: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # connecting, or waiting for a pooled connection
        cls = httpx.ConnectTimeout
    elif isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ServerFingerprintMismatch)):
        cls = httpx.ConnectError  # the request was not written
    elif isinstance(exc, (aiohttp.ServerTimeoutError, TimeoutError)):
        cls = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        cls = httpx.RemoteProtocolError
    elif isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ClientOSError)):
        cls = httpx.ReadError
    elif isinstance(exc, aiohttp.ClientResponseError):  # a malformed status line or headers
        cls = httpx.RemoteProtocolError
    elif isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        cls = httpx.UnsupportedProtocol  # as httpx's own transport; nothing was sent
    else:  # any other ClientError: assume the request may have been sent
        cls = httpx.ReadError
    return cls(f"{type(exc).__name__}{_detail(exc)} ({request.method} {request.url.path})", request=request)


def _detail(exc: BaseException) -> str:
    if not isinstance(exc, _SAFE_TO_QUOTE):
        return ""
    try:
        text = str(exc)
    except Exception:  # a half-built aiohttp exception must not hide the mapped one
        return ""
    return f": {text}" if text else ""

"""The default transport: GET/HEAD and writes over aiohttp pools of their own, with aiohttp's resend off,
on real loopback sockets.

``RawServer`` is a tiny hand-written HTTP/1.1 server, so a test controls every byte of the answer
(gzip bodies, repeated headers, closing without answering, never answering) and counts connections
and requests exactly.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import logging
import socket
import ssl
import traceback
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx
import pytest

from bot.atlas import (
    AtlasClient,
    AtlasConnectError,
    AtlasConnectionLostError,
    AtlasTimeoutError,
    RetryPolicy,
)
from bot.atlas._operations import OPERATIONS
from bot.atlas._transport import (
    MAX_CONNECTIONS,
    AiohttpTransport,
    MethodSplitTransport,
    aiohttp_resend_can_be_disabled,
)
from bot.atlas.client import USER_AGENT
from tests.atlas.conftest import FakeClock
from tests.fakes.fake_atlas import FakeAtlas

TOKEN = "TOPSECRET-bearer-token-0001"
FED_ID = "a" * 24
IDP_ID = "b" * 24
GROUP_ID = "c" * 24
CONN_KEY: Any = SimpleNamespace(host="atlas.test", port=443, ssl=True, is_ssl=True)
ORGS = {"results": [{"id": "d" * 24, "name": "Org one"}], "totalCount": 1}


class Bearer(httpx.Auth):
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {TOKEN}"
        yield request


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[str, str]]
    connection: int

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


Answer = Callable[[Seen], Awaitable[bytes | None]]


def http_response(body: bytes = b"", *, status: str = "200 OK", headers: list[tuple[str, str]] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_response(payload: Any, *, extra: list[tuple[str, str]] | None = None) -> bytes:
    headers = [("Content-Type", "application/json"), *(extra or [])]
    return http_response(json.dumps(payload).encode(), headers=headers)


class RawServer:
    """HTTP/1.1 on 127.0.0.1; ``answer`` returns the bytes to send, or None to close without answering."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[Seen] = []
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.released = asyncio.Event()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        self.released.set()
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def hang(self) -> None:
        await self.released.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self._writers.append(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
                method, target, _ = request_line.split(" ", 2)
                headers = [(k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in header_lines)]
                seen = Seen(method, target, headers, number)
                length = int(next(iter(seen.header_values("Content-Length")), "0"))
                if length:
                    await reader.readexactly(length)
                self.requests.append(seen)
                reply = await self.answer(seen)
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
        finally:
            writer.close()


ServerFactory = Callable[[Answer], Awaitable[tuple[RawServer, str]]]


@pytest.fixture
async def raw_server() -> AsyncIterator[ServerFactory]:
    servers: list[RawServer] = []

    async def start(answer: Answer) -> tuple[RawServer, str]:
        server = RawServer(answer)
        servers.append(server)
        return server, await server.start()

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def raw_client(clock: FakeClock) -> AsyncIterator[Callable[..., AtlasClient]]:
    """AtlasClient with the default transport, Bearer auth, the fake clock and an instant sleep."""
    clients: list[AtlasClient] = []

    def build(base_url: str, *, retry: RetryPolicy | None = None, timeout: float = 5.0) -> AtlasClient:
        client = AtlasClient(
            auth=Bearer(),
            base_url=base_url,
            retry=retry,
            timeout=timeout,
            sleep=clock.sleep,
            clock=clock,
            random=lambda: 0.5,
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Record which pool handled each request ("reads" or "writes"), and any use of httpx's own transport."""
    seen: dict[str, list[str]] = {"reads": [], "writes": [], "httpx": []}
    original = AiohttpTransport.handle_async_request

    async def spy(self: AiohttpTransport, request: httpx.Request) -> httpx.Response:
        seen[self.pool].append(f"{request.method} {request.url.path}")
        return await original(self, request)

    async def httpx_spy(
        self: Any, request: httpx.Request, _original: Any = httpx.AsyncHTTPTransport.handle_async_request
    ) -> Any:
        seen["httpx"].append(f"{request.method} {request.url.path}")
        return await _original(self, request)

    monkeypatch.setattr(AiohttpTransport, "handle_async_request", spy)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", httpx_spy)
    return seen


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the whole client through the default transport -------------------------------------------------


async def test_reads_and_writes_go_over_their_own_aiohttp_pools_against_fake_atlas(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any], routed: dict[str, list[str]]
) -> None:
    fed, idp = seed["federationSettingsId"], seed["idps"]["oidc"]
    orgs = await client.list_orgs(items_per_page=10, include_count=True)
    assert orgs.results
    assert (await client.get_identity_provider(fed, idp)).id == idp
    assert (await client.get_project(seed["groupId"])).id == seed["groupId"]
    await client.revoke_identity_provider_jwks(fed, idp)

    # The fake checks routes, Accept versions, auth and parameters against the contract: all passed.
    assert [(r.method, r.status) for r in fake.requests] == [
        ("POST", 200),
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
        ("DELETE", 204),
    ]
    assert fake.count("revokeJwks") == 1
    assert [entry.split()[0] for entry in routed["reads"]] == ["GET", "GET", "GET"]
    assert routed["writes"] == ["POST /api/oauth/token", f"DELETE {fake.requests[-1].path}"]
    assert routed["httpx"] == []


async def test_head_is_a_read_and_other_methods_are_writes() -> None:
    handled: list[str] = []

    def recorder(name: str) -> httpx.MockTransport:
        return httpx.MockTransport(lambda request: handled.append(f"{name} {request.method}") or httpx.Response(204))

    transport = MethodSplitTransport(reads=recorder("reads"), writes=recorder("writes"))
    async with httpx.AsyncClient(transport=transport, base_url="http://atlas.test") as http:
        for method in ("GET", "HEAD", "DELETE", "POST", "PUT", "PATCH", "OPTIONS"):
            await http.request(method, "/x")
    assert handled == [
        "reads GET",
        "reads HEAD",
        "writes DELETE",
        "writes POST",
        "writes PUT",
        "writes PATCH",
        "writes OPTIONS",
    ]


# -- what goes out and what comes back --------------------------------------------------------------


async def test_gzip_body_is_decoded_by_the_client(
    raw_server: ServerFactory, raw_client: Callable[..., AtlasClient], routed: dict[str, list[str]]
) -> None:
    async def answer(seen: Seen) -> bytes:
        return http_response(
            gzip.compress(json.dumps(ORGS).encode()),
            headers=[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
        )

    _, base_url = await raw_server(answer)
    orgs = await raw_client(base_url).list_orgs()
    assert [org.name for org in orgs.results] == ["Org one"]
    assert routed["reads"] == ["GET /api/atlas/v2/orgs"]


async def test_repeated_headers_status_and_raw_body_survive(raw_server: ServerFactory) -> None:
    payload = json.dumps(ORGS).encode()
    compressed = gzip.compress(payload, mtime=0)

    async def answer(seen: Seen) -> bytes:
        return http_response(
            compressed,
            status="203 Non-Authoritative Information",
            headers=[
                ("Content-Encoding", "gzip"),
                ("Set-Cookie", "a=1; Path=/"),
                ("Set-Cookie", "b=2; Path=/"),
                ("X-Repeated", "one"),
                ("X-Repeated", "two"),
            ],
        )

    server, base_url = await raw_server(answer)
    # A host name, not an IP: aiohttp's default cookie jar ignores cookies from IP addresses.
    base_url = base_url.replace("127.0.0.1", "localhost")
    async with httpx.AsyncClient(transport=MethodSplitTransport(), base_url=base_url) as http:
        response = await http.get("/any")
        assert response.status_code == 203
        assert response.reason_phrase == "Non-Authoritative Information"
        assert response.http_version == "HTTP/1.1"
        assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
        assert response.headers.get_list("x-repeated") == ["one", "two"]
        assert response.headers["content-length"] == str(len(compressed))  # not rewritten
        assert response.content == payload
        assert dict(http.cookies) == {"a": "1", "b": "2"}  # httpx's jar keeps the cookies ...
        http.cookies.clear()
        await http.get("/again")
    assert server.requests[1].header_values("Cookie") == []  # ... and aiohttp's keeps none


async def test_query_and_headers_arrive_as_sent(
    raw_server: ServerFactory, raw_client: Callable[..., AtlasClient]
) -> None:
    async def answer(seen: Seen) -> bytes:
        return json_response(ORGS)

    server, base_url = await raw_server(answer)
    name = "a b+c/d%e&f=g~ü"
    await raw_client(base_url).list_orgs(name=name, items_per_page=5, page_num=2, include_count=True)

    (seen,) = server.requests
    expected = httpx.URL(
        "/api/atlas/v2/orgs",
        params=[("itemsPerPage", 5), ("pageNum", 2), ("includeCount", True), ("name", name)],
    )
    assert seen.target == expected.raw_path.decode()  # exactly httpx's encoding, not requoted
    assert seen.header_values("Accept") == [OPERATIONS["listOrgs"].accept]
    assert seen.header_values("Authorization") == [f"Bearer {TOKEN}"]
    assert seen.header_values("User-Agent") == [USER_AGENT]  # aiohttp added none of its own
    with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204))) as plain:
        assert seen.header_values("Accept-Encoding") == [plain.headers["Accept-Encoding"]]
    assert seen.header_values("Cookie") == []


# -- failures: whether the request can have reached the server --------------------------------------


async def test_connection_refused_on_a_get_is_a_connect_error(
    raw_client: Callable[..., AtlasClient], clock: FakeClock
) -> None:
    client = raw_client(f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(AtlasConnectError) as caught:
        await client.get_project(GROUP_ID)
    assert caught.value.retry_safe is True and caught.value.outcome_unknown is False
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.ConnectError)
    assert cause.request.url.path == f"/api/atlas/v2/groups/{GROUP_ID}"
    assert clock.sleeps == [0.25, 0.5, 1.0]  # all four attempts of the default policy


async def test_get_closed_without_an_answer_is_retried_by_the_client_only(
    raw_server: ServerFactory, raw_client: Callable[..., AtlasClient], clock: FakeClock
) -> None:
    async def answer(seen: Seen) -> None:
        return None

    server, base_url = await raw_server(answer)
    client = raw_client(base_url, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(AtlasConnectionLostError) as caught:
        await client.get_project(GROUP_ID)
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    # Exactly one request per attempt of the client's RetryPolicy: aiohttp's own resend is off.
    assert len(server.requests) == 3
    assert server.connections == 3
    assert len(clock.sleeps) == 2


async def test_get_answered_on_the_second_attempt_succeeds(
    raw_server: ServerFactory, raw_client: Callable[..., AtlasClient], clock: FakeClock
) -> None:
    async def answer(seen: Seen) -> bytes | None:
        return None if seen.connection == 1 else json_response(ORGS)

    server, base_url = await raw_server(answer)
    orgs = await raw_client(base_url).list_orgs()
    assert orgs.total_count == 1
    assert len(server.requests) == 2
    assert len(clock.sleeps) == 1  # the client's retry, after its backoff


async def test_get_never_answered_is_a_timeout(
    raw_server: ServerFactory, raw_client: Callable[..., AtlasClient]
) -> None:
    server: RawServer

    async def answer(seen: Seen) -> None:
        await server.hang()

    server, base_url = await raw_server(answer)
    client = raw_client(base_url, retry=RetryPolicy(max_attempts=2), timeout=0.2)
    with pytest.raises(AtlasTimeoutError) as caught:
        await client.get_project(GROUP_ID)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert caught.value.retry_safe is True  # a read: safe to repeat
    assert len(server.requests) == 2


async def test_delete_closed_without_an_answer_reaches_the_server_exactly_once(
    raw_server: ServerFactory, raw_client: Callable[..., AtlasClient], clock: FakeClock, routed: dict[str, list[str]]
) -> None:
    async def answer(seen: Seen) -> None:
        return None  # read the DELETE, then close: it may have happened

    server, base_url = await raw_server(answer)
    with pytest.raises(AtlasConnectionLostError) as caught:
        await raw_client(base_url).revoke_identity_provider_jwks(FED_ID, IDP_ID)
    assert caught.value.outcome_unknown is True and caught.value.retry_safe is False
    assert [seen.method for seen in server.requests] == ["DELETE"]
    assert server.connections == 1
    assert clock.sleeps == []
    assert routed["reads"] == []
    assert routed["writes"] == [f"DELETE /api/atlas/v2/federationSettings/{FED_ID}/identityProviders/{IDP_ID}/jwks"]


@pytest.mark.parametrize("resend_left_on", [False, True], ids=["as_built", "control_resend_on"])
async def test_a_delete_on_a_dropped_keep_alive_connection_reaches_the_server_once(
    resend_left_on: bool, raw_server: ServerFactory, clock: FakeClock
) -> None:
    server: RawServer

    async def answer(seen: Seen) -> bytes | None:
        # The first DELETE is answered and its connection kept alive; the next one on that pooled
        # connection is read and the connection closed unanswered: the case in which aiohttp, left
        # alone, sends a GET, PUT or DELETE again on a new connection.
        if seen.connection == 1 and len(server.requests) > 1:
            return None
        return http_response(status="204 No Content")

    server, base_url = await raw_server(answer)
    transport = AiohttpTransport(pool="writes")
    if resend_left_on:
        # The control: with aiohttp's own resend on, this very exchange sends the DELETE twice,
        # so the as-built case below is a test that can fail.
        transport._get_session()._retry_connection = True
    client = AtlasClient(auth=Bearer(), base_url=base_url, transport=transport, sleep=clock.sleep, clock=clock)
    try:
        await client.revoke_identity_provider_jwks(FED_ID, IDP_ID)  # answered, connection kept alive
        if resend_left_on:
            await client.revoke_identity_provider_jwks(FED_ID, IDP_ID)  # aiohttp resends it on a new connection
            assert [seen.connection for seen in server.requests] == [1, 1, 2]
            return
        with pytest.raises(AtlasConnectionLostError) as caught:
            await client.revoke_identity_provider_jwks(FED_ID, IDP_ID)
    finally:
        await client.aclose()
    assert caught.value.outcome_unknown is True and caught.value.retry_safe is False
    assert [(seen.method, seen.connection) for seen in server.requests] == [("DELETE", 1), ("DELETE", 1)]
    assert server.connections == 1
    assert clock.sleeps == []  # the client's RetryPolicy does not repeat a write that may have arrived


def test_an_aiohttp_without_the_resend_switch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert aiohttp_resend_can_be_disabled()  # the installed aiohttp (pyproject pins >= 3.11) has it
    monkeypatch.setattr(aiohttp.ClientSession, "ATTRS", aiohttp.ClientSession.ATTRS - {"_retry_connection"})
    assert not aiohttp_resend_can_be_disabled()
    with pytest.raises(RuntimeError, match="cannot switch its resend off"):
        MethodSplitTransport()


async def test_every_session_has_the_resend_off() -> None:
    transport = MethodSplitTransport()
    try:
        for pool in (transport.reads, transport.writes):
            assert isinstance(pool, AiohttpTransport)
            assert pool._get_session()._retry_connection is False
        assert transport.reads._get_session() is not transport.writes._get_session()
    finally:
        await transport.aclose()


async def test_malformed_response_is_a_protocol_error_without_the_token(
    raw_server: ServerFactory, raw_client: Callable[..., AtlasClient]
) -> None:
    async def answer(seen: Seen) -> bytes:
        return b"garbage\r\n\r\n"

    _, base_url = await raw_server(answer)
    client = raw_client(base_url, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(AtlasConnectionLostError) as caught:
        await client.get_project(GROUP_ID)
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.RemoteProtocolError)
    # aiohttp's ClientResponseError keeps the request headers; it must not ride along in the chain.
    assert cause.__cause__ is None and cause.__context__ is None
    text = "".join(traceback.format_exception(caught.value)) + repr(caught.value) + repr(cause)
    assert TOKEN not in text
    assert "ClientResponseError" in str(cause)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("t"), httpx.ConnectTimeout),
        (aiohttp.ClientConnectorError(CONN_KEY, OSError(111, "refused")), httpx.ConnectError),
        (aiohttp.ClientConnectorCertificateError(CONN_KEY, ssl.SSLCertVerificationError("bad")), httpx.ConnectError),
        (aiohttp.ClientConnectorDNSError(CONN_KEY, OSError(-2, "no such host")), httpx.ConnectError),
        (aiohttp.ServerFingerprintMismatch(b"a", b"b", "atlas.test", 443), httpx.ConnectError),
        (aiohttp.SocketTimeoutError("t"), httpx.ReadTimeout),
        (aiohttp.ServerTimeoutError("t"), httpx.ReadTimeout),
        (TimeoutError(), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("short"), httpx.ReadError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (aiohttp.ClientConnectionResetError("reset"), httpx.ReadError),
        (aiohttp.InvalidURL("x"), httpx.UnsupportedProtocol),
        (aiohttp.ClientError("other"), httpx.ReadError),
    ],
)
async def test_every_aiohttp_failure_becomes_the_matching_httpx_error(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, expected: type[httpx.TransportError]
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise exc

    transport = AiohttpTransport(pool="reads")
    async with httpx.AsyncClient(transport=transport, base_url="http://atlas.test") as http:
        monkeypatch.setattr(transport._get_session(), "request", boom)
        with pytest.raises(httpx.TransportError) as caught:
            await http.get("/api/x", headers={"Authorization": f"Bearer {TOKEN}"})
    assert type(caught.value) is expected
    assert caught.value.request.url.path == "/api/x"
    assert type(exc).__name__ in str(caught.value) and TOKEN not in str(caught.value)


# -- connections ----------------------------------------------------------------------------------


async def test_sequential_gets_reuse_one_keep_alive_connection(
    raw_server: ServerFactory, raw_client: Callable[..., AtlasClient]
) -> None:
    async def answer(seen: Seen) -> bytes:
        return json_response(ORGS)

    server, base_url = await raw_server(answer)
    client = raw_client(base_url)
    for _ in range(20):
        await client.list_orgs()
    assert len(server.requests) == 20
    assert server.connections <= 2


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_more_than_100_requests_are_open_at_atlas_at_once(
    method: str, raw_server: ServerFactory, raw_client: Callable[..., AtlasClient]
) -> None:
    # Atlas answers nobody until every request has arrived: with either library's default pool of
    # 100 connections the rest would wait for a connection and the test would time out.
    concurrent = 200
    assert concurrent <= MAX_CONNECTIONS
    all_arrived = asyncio.Event()

    async def answer(seen: Seen) -> bytes:
        if len(server.requests) >= concurrent:
            all_arrived.set()
        await all_arrived.wait()
        return json_response(ORGS) if seen.method == "GET" else http_response(status="204 No Content")

    server, base_url = await raw_server(answer)
    client = raw_client(base_url, timeout=10.0)
    call = client.list_orgs if method == "GET" else lambda: client.revoke_identity_provider_jwks(FED_ID, IDP_ID)
    async with asyncio.timeout(20):
        await asyncio.gather(*(call() for _ in range(concurrent)))
    assert all_arrived.is_set() and len(server.requests) == concurrent
    assert server.connections == concurrent
    assert {seen.method for seen in server.requests} == {method}


async def test_environment_proxy_still_applies(
    raw_server: ServerFactory, raw_client: Callable[..., AtlasClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def answer(seen: Seen) -> bytes:
        return json_response(ORGS)

    proxy, proxy_url = await raw_server(answer)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    await raw_client("http://atlas.invalid").list_orgs()
    (seen,) = proxy.requests
    assert seen.target == "http://atlas.invalid/api/atlas/v2/orgs"  # absolute form: sent via the proxy


async def test_aclose_closes_both_aiohttp_sessions_without_warnings(
    raw_server: ServerFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def answer(seen: Seen) -> bytes:
        return json_response(ORGS)

    _, base_url = await raw_server(answer)
    sessions: list[aiohttp.ClientSession] = []
    original = AiohttpTransport._get_session

    def spy(self: AiohttpTransport) -> aiohttp.ClientSession:
        session = original(self)
        if session not in sessions:
            sessions.append(session)
        return session

    monkeypatch.setattr(AiohttpTransport, "_get_session", spy)
    caplog.set_level(logging.ERROR, logger="asyncio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = AtlasClient(auth=Bearer(), base_url=base_url)
        await client.list_orgs()
        await client.list_orgs()
        await client.revoke_identity_provider_jwks(FED_ID, IDP_ID)
        await client.aclose()
        del client
        gc.collect()
    assert len(sessions) == 2  # the reads' pool and the writes'
    assert all(session.closed for session in sessions)
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert "Unclosed" not in caplog.text

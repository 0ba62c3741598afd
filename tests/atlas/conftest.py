"""Fixtures shared by the Atlas client tests: a seeded FakeAtlas on loopback and client factories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.atlas import AtlasClient, OAuthClientCredentialsAuth, OAuthRateLimiter, RetryPolicy
from tests.fakes.fake_atlas import FakeAtlas


class FakeClock:
    """A monotonic clock that only moves when slept on or advanced; records every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake() -> AsyncIterator[FakeAtlas]:
    atlas = FakeAtlas()
    await atlas.start(host="127.0.0.1", port=0)
    try:
        yield atlas
    finally:
        await atlas.stop()


@pytest.fixture
def seed(fake: FakeAtlas) -> dict[str, Any]:
    return fake.seed_demo()


MakeClient = Callable[..., AtlasClient]


@pytest.fixture
async def make_client(fake: FakeAtlas, seed: dict[str, Any], clock: FakeClock) -> AsyncIterator[MakeClient]:
    """Build clients against the fake; OAuth by default, with the fake clock and an instant sleep."""
    clients: list[AtlasClient] = []

    def build(
        *,
        auth: httpx.Auth | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 5.0,
        random: Callable[[], float] = lambda: 1.0,
        limiter: OAuthRateLimiter | None = None,
        **kwargs: Any,
    ) -> AtlasClient:
        limiter = limiter or OAuthRateLimiter(clock=clock, sleep=clock.sleep)
        if auth is None:
            account = seed["serviceAccount"]
            auth = OAuthClientCredentialsAuth(
                account["clientId"], SecretStr(account["secret"]), limiter=limiter, clock=clock
            )
        assert fake.base_url is not None
        client = AtlasClient(
            auth=auth,
            base_url=fake.base_url,
            timeout=timeout,
            retry=retry,
            oauth_limiter=limiter,
            sleep=clock.sleep,
            random=random,
            clock=clock,
            **kwargs,
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(make_client: MakeClient) -> AtlasClient:
    return make_client()

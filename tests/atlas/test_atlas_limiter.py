"""The client-side limiter keeps /api/oauth/* under 10 requests per minute."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from bot.atlas import AtlasClient, AtlasRateLimitError, OAuthRateLimiter
from tests.atlas.conftest import FakeClock
from tests.fakes.fake_atlas import FakeAtlas


async def test_eleventh_request_in_a_minute_waits(clock: FakeClock) -> None:
    limiter = OAuthRateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(10):
        await limiter.acquire(operation="t", budget=None)
    clock.advance(15)
    await limiter.acquire(operation="t", budget=None)
    assert clock.sleeps == [45.0]  # until the first of the ten leaves the 60 s window


async def test_wait_longer_than_the_budget_fails_fast(clock: FakeClock) -> None:
    limiter = OAuthRateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(10):
        await limiter.acquire(operation="t", budget=None)
    with pytest.raises(AtlasRateLimitError) as caught:
        await limiter.acquire(operation="oauthRevoke", budget=30)
    assert caught.value.retry_after == pytest.approx(60.0)
    assert caught.value.status is None
    assert clock.sleeps == []


async def test_revokes_through_the_client_are_limited(make_client: Any, fake: FakeAtlas, clock: FakeClock) -> None:
    client: AtlasClient = make_client()  # OAuth: its token request counts against the same limit
    await client.list_orgs()
    victim_id, victim_secret = fake.add_service_account(name="victim")
    for n in range(9):
        await client.revoke_service_account_token(
            client_id=victim_id, client_secret=SecretStr(victim_secret), token=SecretStr(f"t{n}")
        )
    assert clock.sleeps == []
    with pytest.raises(AtlasRateLimitError):
        # The 11th OAuth request within the minute would wait 60 s, beyond the 30 s deadline.
        await client.revoke_service_account_token(
            client_id=victim_id, client_secret=SecretStr(victim_secret), token=SecretStr("t-last")
        )
    assert fake.count("oauthRevoke") == 9
    clock.advance(60)
    await client.revoke_service_account_token(
        client_id=victim_id, client_secret=SecretStr(victim_secret), token=SecretStr("t-later")
    )
    assert fake.count("oauthRevoke") == 10

"""Retry policy: what is retried, how long the client waits, and the per-call deadline."""

from __future__ import annotations

from typing import Any

import pytest

from bot.atlas import (
    AtlasBadRequestError,
    AtlasClient,
    AtlasConflictError,
    AtlasError,
    AtlasForbiddenError,
    AtlasNotFoundError,
    AtlasRateLimitError,
    AtlasServerError,
    AtlasUnauthorizedError,
    RetryPolicy,
)
from tests.atlas.conftest import FakeClock, MakeClient
from tests.fakes.fake_atlas import FakeAtlas

JWKS = r"/jwks$"


async def _revoke(client: AtlasClient, seed: dict[str, Any]) -> None:
    await client.revoke_identity_provider_jwks(seed["federationSettingsId"], seed["idps"]["oidc"])


async def test_429_retry_after_is_honoured(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any], clock: FakeClock
) -> None:
    fake.rate_limit("DELETE", JWKS, retry_after=7)
    await _revoke(client, seed)
    assert clock.sleeps == [7.0]
    assert fake.count("revokeJwks") == 2


@pytest.mark.parametrize("code", ["RATE_LIMITED", "RATE_LIMITED_TOKEN_BUCKET"])
async def test_429_without_retry_after_uses_jittered_backoff(
    make_client: MakeClient, fake: FakeAtlas, seed: dict[str, Any], clock: FakeClock, code: str
) -> None:
    client = make_client(random=lambda: 0.5, retry=RetryPolicy(base_delay=1.0, max_delay=3.0))
    fake.rate_limit("DELETE", JWKS, error_code=code, times=3)
    await _revoke(client, seed)
    assert clock.sleeps == [0.5, 1.0, 1.5]  # 0.5 x min(3, 1, 2, 4)
    assert fake.count("revokeJwks") == 4


async def test_429_with_an_unknown_code_is_not_retried(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any], clock: FakeClock
) -> None:
    fake.rate_limit("DELETE", JWKS, error_code="SOMETHING_ELSE", retry_after=1)
    with pytest.raises(AtlasRateLimitError):
        await _revoke(client, seed)
    assert clock.sleeps == []


async def test_retry_after_beyond_the_deadline_fails_fast(
    make_client: MakeClient, fake: FakeAtlas, seed: dict[str, Any], clock: FakeClock
) -> None:
    client = make_client(retry=RetryPolicy(deadline=30.0))
    fake.rate_limit("DELETE", JWKS, retry_after=55)
    with pytest.raises(AtlasRateLimitError) as caught:
        await _revoke(client, seed)
    assert caught.value.retry_after == 55
    assert caught.value.retry_safe is True
    assert "55" in str(caught.value)
    assert clock.sleeps == []
    assert fake.count("revokeJwks") == 1


async def test_max_attempts_bounds_retries(
    make_client: MakeClient, fake: FakeAtlas, seed: dict[str, Any], clock: FakeClock
) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=3))
    fake.fail("DELETE", JWKS, 503, "SERVICE_UNAVAILABLE", times=10)
    with pytest.raises(AtlasServerError) as caught:
        await _revoke(client, seed)
    assert caught.value.status == 503
    assert fake.count("revokeJwks") == 3
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_are_retried_for_idempotent_calls(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any], status: int
) -> None:
    idp_id = seed["idps"]["oidc"]
    fake.fail("GET", rf"/identityProviders/{idp_id}$", status)
    await client.get_identity_provider(seed["federationSettingsId"], idp_id)
    assert fake.count("getFederationSettingIdentityProvider") == 2


async def test_503_on_a_delete_is_retried_because_atlas_did_not_act(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    fake.fail("DELETE", JWKS, 503)
    await _revoke(client, seed)
    assert fake.count("revokeJwks") == 2


@pytest.mark.parametrize("status", [502, 504])
async def test_502_and_504_on_a_delete_are_not_repeated_and_outcome_unknown(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any], status: int
) -> None:
    # A gateway error may hide a delete that happened behind it.
    fake.fail("DELETE", JWKS, status)
    with pytest.raises(AtlasServerError) as caught:
        await _revoke(client, seed)
    assert caught.value.outcome_unknown is True
    assert fake.count("revokeJwks") == 1


async def test_gateway_html_page_is_a_retryable_server_error(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    idp_id = seed["idps"]["oidc"]
    fake.html("GET", rf"/identityProviders/{idp_id}$", status=502)
    await client.get_identity_provider(seed["federationSettingsId"], idp_id)
    assert fake.count("getFederationSettingIdentityProvider") == 2


async def test_504_on_the_post_is_not_retried_and_outcome_unknown(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    fake.fail("POST", r":revokeMongoDBEmployeeAccess$", 504)
    with pytest.raises(AtlasServerError) as caught:
        await client.revoke_mongodb_employee_access(seed["groupId"], "Cluster0")
    assert caught.value.outcome_unknown is True
    assert fake.count("revokeEmployeeAccess") == 1


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, AtlasBadRequestError),
        (401, AtlasUnauthorizedError),
        (403, AtlasForbiddenError),
        (404, AtlasNotFoundError),
        (409, AtlasConflictError),
        (500, AtlasServerError),
    ],
)
async def test_no_retry_on_client_errors_and_500(
    client: AtlasClient,
    fake: FakeAtlas,
    seed: dict[str, Any],
    clock: FakeClock,
    status: int,
    exc_type: type[AtlasError],
) -> None:
    await client.list_orgs()  # token first, so counts below are only the write
    fake.fail("DELETE", JWKS, status, times=5)
    with pytest.raises(exc_type):
        await _revoke(client, seed)
    # A 401 gets the single token re-fetch and replay; nothing else is repeated.
    assert fake.count("revokeJwks") == (2 if status == 401 else 1)
    assert clock.sleeps == []

"""Service-account OAuth and Digest against FakeAtlas, plus settings and build_auth."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.atlas import (
    AtlasClient,
    AtlasConfigurationError,
    AtlasSettings,
    AtlasTokenLimitError,
    AtlasUnauthorizedError,
    OAuthClientCredentialsAuth,
    OAuthRateLimiter,
)
from tests.atlas.conftest import FakeClock, MakeClient
from tests.fakes.fake_atlas import FakeAtlas


async def test_fifty_concurrent_calls_fetch_exactly_one_token(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    results = await asyncio.gather(*(client.get_project(seed["groupId"]) for _ in range(50)))
    assert {p.id for p in results} == {seed["groupId"]}
    assert fake.count("oauthToken") == 1
    assert fake.count("getGroup") == 50


async def test_token_is_reused_then_refreshed_ahead_of_expiry(
    client: AtlasClient, fake: FakeAtlas, clock: FakeClock
) -> None:
    await client.list_orgs()
    clock.advance(3600 - 61)  # still more than the 60 s margin left
    await client.list_orgs()
    assert fake.count("oauthToken") == 1
    clock.advance(2)  # now inside the margin: refresh before Atlas would reject it
    await client.list_orgs()
    assert fake.count("oauthToken") == 2
    assert fake.count("listOrgs") == 3


async def test_short_lived_tokens_do_not_refresh_on_every_call(
    make_client: MakeClient, fake: FakeAtlas, clock: FakeClock
) -> None:
    fake.token_ttl = 30  # shorter than the margin: the margin is capped at half the lifetime
    client = make_client()
    await client.list_orgs()
    clock.advance(10)
    await client.list_orgs()
    assert fake.count("oauthToken") == 1
    clock.advance(6)
    await client.list_orgs()
    assert fake.count("oauthToken") == 2


async def test_401_mid_flight_refetches_once_and_retries(client: AtlasClient, fake: FakeAtlas) -> None:
    await client.list_orgs()
    fake.revoke_all_tokens()
    orgs = await client.list_orgs()
    assert len(orgs.results) == 2
    assert fake.count("oauthToken") == 2
    assert [r.status for r in fake.requests if r.operation == "listOrgs"] == [200, 401, 200]


async def test_persistent_401_is_reported_after_one_refetch(client: AtlasClient, fake: FakeAtlas) -> None:
    fake.fail("GET", r"/orgs$", 401, "NOT_ORG_GROUP_CREATOR", times=5)
    with pytest.raises(AtlasUnauthorizedError) as caught:
        await client.list_orgs()
    assert caught.value.retry_safe is False
    assert fake.count("listOrgs") == 2
    assert fake.count("oauthToken") == 2


async def test_bad_client_secret_is_unauthorized(make_client: MakeClient, seed: dict[str, Any]) -> None:
    client = make_client(auth=OAuthClientCredentialsAuth(seed["serviceAccount"]["clientId"], SecretStr("wrong-secret")))
    with pytest.raises(AtlasUnauthorizedError) as caught:
        await client.list_orgs()
    assert caught.value.error_code == "invalid_client"
    assert caught.value.oauth_error is not None


async def test_token_limit_is_its_own_error(client: AtlasClient, fake: FakeAtlas) -> None:
    fake.max_tokens = 0
    with pytest.raises(AtlasTokenLimitError) as caught:
        await client.list_orgs()
    assert caught.value.status == 403
    assert caught.value.error_code == "access_denied"
    assert "Access Token limit reached" in (caught.value.detail or "")
    assert fake.count("listOrgs") == 0  # the API call itself never went out


async def test_digest_auth_with_api_keys(make_client: MakeClient, fake: FakeAtlas, seed: dict[str, Any]) -> None:
    keys = seed["apiKey"]
    client = make_client(auth=httpx.DigestAuth(keys["publicKey"], keys["privateKey"]))
    project = await client.get_project(seed["groupId"])
    assert project.id == seed["groupId"]
    await client.revoke_mongodb_employee_access(seed["groupId"], "Cluster0")
    assert fake.count("oauthToken") == 0
    statuses = [r.status for r in fake.requests]
    assert statuses[0] == 401  # the challenge
    assert statuses[-1] == 204
    assert (fake.requests[-1].header("Authorization") or "").startswith("Digest ")


async def test_digest_with_a_wrong_private_key_is_unauthorized(make_client: MakeClient, seed: dict[str, Any]) -> None:
    client = make_client(auth=httpx.DigestAuth(seed["apiKey"]["publicKey"], "not-the-key"))
    with pytest.raises(AtlasUnauthorizedError):
        await client.list_orgs()


def test_settings_read_the_atlas_cli_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_ATLAS_CLIENT_ID", "mdb_sa_id_" + "a" * 24)
    monkeypatch.setenv("MONGODB_ATLAS_CLIENT_SECRET", "s3cret-value")
    monkeypatch.setenv("MONGODB_ATLAS_BASE_URL", "http://127.0.0.1:1234")
    settings = AtlasSettings()
    assert settings.client_secret is not None
    assert settings.client_secret.get_secret_value() == "s3cret-value"
    assert settings.base_url == "http://127.0.0.1:1234"
    auth = settings.build_auth()
    assert isinstance(auth, OAuthClientCredentialsAuth)


def test_settings_choose_digest_with_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MONGODB_ATLAS_CLIENT_ID", "MONGODB_ATLAS_CLIENT_SECRET", "MONGODB_ATLAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MONGODB_ATLAS_PUBLIC_API_KEY", "pubkey")
    monkeypatch.setenv("MONGODB_ATLAS_PRIVATE_API_KEY", "privkey")
    settings = AtlasSettings()
    assert settings.base_url == "https://cloud.mongodb.com"
    assert isinstance(settings.build_auth(), httpx.DigestAuth)


def test_settings_without_credentials_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MONGODB_ATLAS_CLIENT_ID",
        "MONGODB_ATLAS_CLIENT_SECRET",
        "MONGODB_ATLAS_PUBLIC_API_KEY",
        "MONGODB_ATLAS_PRIVATE_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MONGODB_ATLAS_CLIENT_ID", "only-the-id")
    with pytest.raises(AtlasConfigurationError) as caught:
        AtlasSettings().build_auth()
    for name in ("MONGODB_ATLAS_CLIENT_SECRET", "MONGODB_ATLAS_PUBLIC_API_KEY", "MONGODB_ATLAS_PRIVATE_API_KEY"):
        assert name in str(caught.value)


async def test_from_settings_talks_to_the_fake(fake: FakeAtlas, seed: dict[str, Any]) -> None:
    assert fake.base_url is not None
    settings = AtlasSettings(
        MONGODB_ATLAS_CLIENT_ID=seed["serviceAccount"]["clientId"],
        MONGODB_ATLAS_CLIENT_SECRET=seed["serviceAccount"]["secret"],
        MONGODB_ATLAS_BASE_URL=fake.base_url,
    )
    async with AtlasClient.from_settings(settings, oauth_limiter=OAuthRateLimiter()) as client:
        orgs = await client.list_orgs()
    assert len(orgs.results) == 2


async def test_auth_flow_driven_by_hand_yields_token_request_first() -> None:
    auth = OAuthClientCredentialsAuth("mdb_sa_id_" + "b" * 24, SecretStr("sek"), clock=lambda: 0.0)
    request = httpx.Request("GET", "https://cloud.mongodb.com/api/atlas/v2/orgs")
    flow = auth.async_auth_flow(request)
    token_request = await flow.__anext__()
    assert token_request.url == "https://cloud.mongodb.com/api/oauth/token"
    assert token_request.content == b"grant_type=client_credentials"
    assert token_request.headers["Authorization"].startswith("Basic ")
    token_response = httpx.Response(
        200, json={"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}, request=token_request
    )
    api_request = await flow.asend(token_response)
    assert api_request.headers["Authorization"] == "Bearer tok-1"
    with pytest.raises(StopAsyncIteration):
        await flow.asend(httpx.Response(200, request=api_request))

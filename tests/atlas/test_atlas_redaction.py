"""Secrets never appear in reprs, str(), exception messages or logs (httpx/httpcore at DEBUG)."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.atlas import (
    AtlasClient,
    AtlasError,
    AtlasSettings,
    OAuthClientCredentialsAuth,
    OAuthRateLimiter,
    RetryPolicy,
)
from tests.fakes.fake_atlas import FakeAtlas

CLIENT_SECRET = "mdb_sa_sk_TOPSECRETclientsecretvalue0001"
PRIVATE_KEY = "f00dfeed-private-api-key-TOPSECRET"
VICTIM_SECRET = "mdb_sa_sk_TOPSECRETvictimsecret0002"


def _assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text


async def test_no_secret_in_reprs_errors_or_logs(
    fake: FakeAtlas, seed: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    assert fake.base_url is not None
    client_id, _ = fake.add_service_account(secret=CLIENT_SECRET)
    public_key, _ = fake.add_api_key(private_key=PRIVATE_KEY)
    victim_id, _ = fake.add_service_account(secret=VICTIM_SECRET)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "bot.atlas", "aiohttp"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    settings = AtlasSettings(
        MONGODB_ATLAS_CLIENT_ID=client_id,
        MONGODB_ATLAS_CLIENT_SECRET=CLIENT_SECRET,
        MONGODB_ATLAS_PUBLIC_API_KEY=public_key,
        MONGODB_ATLAS_PRIVATE_API_KEY=PRIVATE_KEY,
        MONGODB_ATLAS_BASE_URL=fake.base_url,
    )
    auth = settings.build_auth(limiter=OAuthRateLimiter(limit=1000))
    digest = httpx.DigestAuth(public_key, PRIVATE_KEY)
    texts = [repr(settings), str(settings), repr(auth), str(auth), repr(digest), str(settings.model_dump())]
    errors: list[AtlasError] = []

    async with AtlasClient(auth=auth, base_url=fake.base_url, retry=RetryPolicy(max_attempts=1)) as client:
        await client.list_orgs()
        token = next(t for t, r in fake.tokens.items() if r["clientId"] == client_id)
        secrets = [CLIENT_SECRET, PRIVATE_KEY, VICTIM_SECRET, token]
        texts.append(repr(client))
        texts.append(repr(await client.get_service_account(seed["orgIds"][0], seed["serviceAccount"]["clientId"])))
        for status in (400, 401, 403, 404, 409, 429, 500):
            fake.fail("GET", r"/orgs$", status, times=2)
            with pytest.raises(AtlasError) as caught:
                await client.list_orgs()
            errors.append(caught.value)
            fake.clear_faults()
        fake.html("GET", r"/orgs$", status=500)
        fake.truncated_json("GET", r"/groups$")
        fake.reset_connection("POST", r":revoke")
        for call in (
            client.list_orgs(),
            client.list_projects(),
            client.revoke_mongodb_employee_access(seed["groupId"], "Cluster0"),
        ):
            with pytest.raises(AtlasError) as caught:
                await call
            errors.append(caught.value)
        await client.revoke_service_account_token(
            client_id=victim_id, client_secret=SecretStr(VICTIM_SECRET), token=SecretStr(token)
        )
        with pytest.raises(AtlasError) as wrong:
            await client.revoke_service_account_token(
                client_id=victim_id, client_secret=SecretStr(VICTIM_SECRET + "x"), token=SecretStr(token)
            )
        errors.append(wrong.value)

    bad = OAuthClientCredentialsAuth(client_id, SecretStr(CLIENT_SECRET + "-wrong"))
    async with AtlasClient(auth=bad, base_url=fake.base_url) as client:
        with pytest.raises(AtlasError) as rejected:
            await client.list_orgs()
        errors.append(rejected.value)
    async with AtlasClient(auth=digest, base_url=fake.base_url) as client:
        await client.list_orgs()
    with pytest.raises(AtlasError) as config_error:
        AtlasSettings(MONGODB_ATLAS_CLIENT_ID=client_id, MONGODB_ATLAS_CLIENT_SECRET="").build_auth()
    errors.append(config_error.value)

    assert len(errors) == 13
    for error in errors:
        texts += [repr(error), str(error), "".join(traceback.format_exception(error))]
        for attr in ("api_error", "oauth_error"):
            texts.append(repr(getattr(error, attr, None)))
    texts.append(caplog.text)
    texts += [repr(r) for r in fake.requests]  # the fake's own reprs hide headers and bodies
    assert any("httpx" in r.name or "httpcore" in r.name for r in caplog.records)
    _assert_clean("\n".join(texts), secrets)

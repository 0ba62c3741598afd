"""Atlas error responses, malformed bodies and transport failures become the right exception."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from bot.atlas import (
    AtlasBadRequestError,
    AtlasClient,
    AtlasConflictError,
    AtlasConnectError,
    AtlasConnectionLostError,
    AtlasError,
    AtlasForbiddenError,
    AtlasMalformedResponseError,
    AtlasNotFoundError,
    AtlasRateLimitError,
    AtlasServerError,
    AtlasTimeoutError,
    AtlasUnauthorizedError,
    AtlasVersionError,
    RetryPolicy,
)
from bot.atlas.models import ApiErrorBody
from tests.atlas.conftest import FakeClock, MakeClient
from tests.fakes.fake_atlas import FakeAtlas

CLUSTER_PATH = r"/clusters/Cluster0$"


@pytest.mark.parametrize(
    ("status", "code", "exc_type"),
    [
        (400, "VALIDATION_ERROR", AtlasBadRequestError),
        (401, "NOT_ORG_GROUP_CREATOR", AtlasUnauthorizedError),
        (403, "CANNOT_CHANGE_GROUP_NAME", AtlasForbiddenError),
        (404, "RESOURCE_NOT_FOUND", AtlasNotFoundError),
        (409, "CANNOT_DELETE_ORG_ACTIVE_LIVE_MIGRATION_ATLAS_ORG_LINK", AtlasConflictError),
        (429, "RATE_LIMITED", AtlasRateLimitError),
        (500, "UNEXPECTED_ERROR", AtlasServerError),
    ],
)
async def test_documented_error_statuses(
    make_client: MakeClient,
    fake: FakeAtlas,
    seed: dict[str, Any],
    status: int,
    code: str,
    exc_type: type[AtlasError],
) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=1))
    fake.fail("GET", CLUSTER_PATH, status, code, detail=f"injected {status}", times=3)
    with pytest.raises(exc_type) as caught:
        await client.get_cluster(seed["groupId"], "Cluster0")
    error = caught.value
    assert error.status == status
    assert error.error_code == code
    assert error.detail == f"injected {status}"
    assert error.operation == "getGroupCluster"
    assert isinstance(getattr(error, "api_error", None), ApiErrorBody)
    assert error.api_error.reason is not None  # type: ignore[attr-defined]
    assert code in str(error)
    assert error.outcome_unknown is False


def test_api_error_body_parses_bad_request_detail() -> None:
    parsed = ApiErrorBody.model_validate(
        {
            "error": 400,
            "errorCode": "INVALID_ATTRIBUTE",
            "detail": "bad",
            "reason": "Bad Request",
            "parameters": ["x"],
            "badRequestDetail": {"fields": [{"field": "name", "description": "too long"}]},
        }
    )
    assert parsed.bad_request_detail is not None
    assert parsed.bad_request_detail.fields[0].field == "name"
    assert parsed.bad_request_detail.fields[0].description == "too long"
    assert parsed.error_code == "INVALID_ATTRIBUTE"
    assert parsed.parameters == ["x"]


async def test_fake_path_parameter_rejection_is_parsed_with_fields(
    make_client: MakeClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    client = make_client()
    await client.list_orgs()  # fetch a token
    token = next(iter(fake.tokens))
    assert fake.base_url is not None
    async with httpx.AsyncClient(base_url=fake.base_url) as raw:
        response = await raw.get(
            "/api/atlas/v2/groups/ABC/clusters/x",
            headers={"Accept": "application/vnd.atlas.2024-08-05+json", "Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 400
    body = ApiErrorBody.model_validate(response.json())
    assert body.error_code == "INVALID_PATH_PARAMETER"
    assert body.bad_request_detail is not None
    assert body.bad_request_detail.fields[0].field == "groupId"


async def test_business_errors_from_fake_state(client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]) -> None:
    fed = seed["federationSettingsId"]
    with pytest.raises(AtlasBadRequestError) as saml:
        await client.revoke_identity_provider_jwks(fed, seed["idps"]["saml"])
    assert saml.value.error_code == "IDENTITY_PROVIDER_NOT_OIDC"

    with pytest.raises(AtlasBadRequestError) as multi:
        await client.delete_federation_settings(fed)
    assert multi.value.error_code == "FEDERATION_HAS_MULTIPLE_CONNECTED_ORGS"

    with pytest.raises(AtlasConflictError) as no_grant:
        await client.revoke_mongodb_employee_access(seed["groupId"], "analytics")
    assert no_grant.value.error_code == "NO_ACTIVE_EMPLOYEE_ACCESS_GRANT"

    with pytest.raises(AtlasNotFoundError) as missing:
        await client.get_cluster(seed["groupId"], "nope")
    assert missing.value.error_code == "CLUSTER_NOT_FOUND"
    assert missing.value.retry_safe is False


async def test_delete_idp_associated_with_two_orgs_is_refused(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    fed = seed["federationSettingsId"]
    shared = fake.add_idp(fed, protocol="OIDC", idp_type="WORKLOAD", org_ids=seed["orgIds"])
    with pytest.raises(AtlasBadRequestError) as caught:
        await client.delete_identity_provider(fed, shared["id"])
    assert caught.value.error_code == "IDENTITY_PROVIDER_ASSOCIATED_WITH_MULTIPLE_ORGS"
    assert shared["id"] in fake.idps


@pytest.mark.parametrize("kind", ["html", "truncated_json"])
async def test_malformed_bodies(make_client: MakeClient, fake: FakeAtlas, seed: dict[str, Any], kind: str) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=1))
    if kind == "html":
        fake.html("GET", CLUSTER_PATH, status=500)
    else:
        fake.truncated_json("GET", CLUSTER_PATH)
    with pytest.raises(AtlasMalformedResponseError) as caught:
        await client.get_cluster(seed["groupId"], "Cluster0")
    assert caught.value.status == (500 if kind == "html" else 200)
    assert caught.value.operation == "getGroupCluster"
    assert caught.value.outcome_unknown is False


async def test_html_500_on_a_post_reports_unknown_outcome(
    make_client: MakeClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    client = make_client()
    fake.html("POST", r":revokeMongoDBEmployeeAccess$", status=500)
    with pytest.raises(AtlasMalformedResponseError) as caught:
        await client.revoke_mongodb_employee_access(seed["groupId"], "Cluster0")
    assert caught.value.outcome_unknown is True
    assert caught.value.retry_safe is False
    assert fake.count("revokeEmployeeAccess") == 1


@pytest.mark.parametrize(("status", "code"), [(406, "INVALID_VERSION_DATE"), (410, "VERSION_GONE")])
async def test_version_rejections_are_configuration_bugs(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any], status: int, code: str
) -> None:
    fake.fail("DELETE", r"/jwks$", status, code)
    with pytest.raises(AtlasVersionError) as caught:
        await client.revoke_identity_provider_jwks(seed["federationSettingsId"], seed["idps"]["oidc"])
    assert caught.value.status == status
    assert caught.value.error_code == code
    assert caught.value.retry_safe is False
    assert "_operations.py" in str(caught.value)
    assert fake.count("revokeJwks") == 1


async def test_fake_answers_a_sunset_version_with_410_and_a_missing_one_with_406(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    await client.list_orgs()
    token = next(iter(fake.tokens))
    path = f"/api/atlas/v2/federationSettings/{seed['federationSettingsId']}/identityProviders/{seed['idps']['oidc']}"
    assert fake.base_url is not None
    async with httpx.AsyncClient(base_url=fake.base_url, headers={"Authorization": f"Bearer {token}"}) as raw:
        gone = await raw.get(path, headers={"Accept": "application/vnd.atlas.2023-01-01+json"})
        missing = await raw.get(path, headers={"Accept": "application/json"})
    assert (gone.status_code, gone.json()["errorCode"]) == (410, "VERSION_GONE")
    assert (missing.status_code, missing.json()["errorCode"]) == (406, "INVALID_VERSION_DATE")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_connect_error_is_retried_then_reported(clock: FakeClock) -> None:
    client = AtlasClient(
        auth=httpx.DigestAuth("pub", "priv"),
        base_url=f"http://127.0.0.1:{_closed_port()}",
        sleep=clock.sleep,
        clock=clock,
        random=lambda: 0.5,
    )
    async with client:
        with pytest.raises(AtlasConnectError) as caught:
            await client.delete_federation_settings("a" * 24)
    assert caught.value.retry_safe is True
    assert caught.value.outcome_unknown is False
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert clock.sleeps == [0.25, 0.5, 1.0]  # full jitter at 0.5 of 0.5, 1, 2


async def test_connection_reset_on_a_read_is_retried(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    idp_id = seed["idps"]["oidc"]
    fake.reset_connection("GET", rf"/identityProviders/{idp_id}$")
    idp = await client.get_identity_provider(seed["federationSettingsId"], idp_id)
    assert idp.id == idp_id
    assert fake.count("getFederationSettingIdentityProvider") == 2


async def test_connection_reset_on_a_delete_is_not_repeated_and_outcome_unknown(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    # DELETE is idempotent in HTTP terms, but each approved action must reach Atlas once at most.
    fake.reset_connection("DELETE", r"/jwks$")
    with pytest.raises(AtlasConnectionLostError) as caught:
        await client.revoke_identity_provider_jwks(seed["federationSettingsId"], seed["idps"]["oidc"])
    assert caught.value.outcome_unknown is True and caught.value.retry_safe is False
    assert fake.count("revokeJwks") == 1


async def test_connection_reset_on_post_is_not_retried_and_outcome_unknown(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    fake.reset_connection("POST", r":revokeMongoDBEmployeeAccess$")
    with pytest.raises(AtlasConnectionLostError) as caught:
        await client.revoke_mongodb_employee_access(seed["groupId"], "Cluster0")
    assert caught.value.outcome_unknown is True
    assert caught.value.retry_safe is False
    assert fake.count("revokeEmployeeAccess") == 1


async def test_read_timeout_retried_for_a_read(make_client: MakeClient, fake: FakeAtlas, seed: dict[str, Any]) -> None:
    client = make_client(timeout=0.2)
    await client.list_orgs()  # token cached so the delay hits the read itself
    idp_id = seed["idps"]["oidc"]
    fake.delay("GET", rf"/identityProviders/{idp_id}$", 1.0)
    await client.get_identity_provider(seed["federationSettingsId"], idp_id)
    assert fake.count("getFederationSettingIdentityProvider") == 2


async def test_read_timeout_not_retried_for_a_delete(
    make_client: MakeClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    client = make_client(timeout=0.2)
    await client.list_orgs()
    fake.delay("DELETE", r"/jwks$", 1.0)
    with pytest.raises(AtlasTimeoutError) as caught:
        await client.revoke_identity_provider_jwks(seed["federationSettingsId"], seed["idps"]["oidc"])
    assert caught.value.outcome_unknown is True
    assert fake.count("revokeJwks") == 1


async def test_read_timeout_not_retried_for_post(
    make_client: MakeClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    client = make_client(timeout=0.2)
    await client.list_orgs()
    fake.delay("POST", r":revokeMongoDBEmployeeAccess$", 1.0)
    with pytest.raises(AtlasTimeoutError) as caught:
        await client.revoke_mongodb_employee_access(seed["groupId"], "Cluster0")
    assert caught.value.outcome_unknown is True
    assert caught.value.retry_safe is False
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert fake.count("revokeEmployeeAccess") == 1

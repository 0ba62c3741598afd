"""Path parameters are checked against the spec's patterns before any I/O."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.atlas import (
    CLUSTER_NAME,
    OBJECT_ID,
    SERVICE_ACCOUNT_CLIENT_ID,
    AtlasClient,
    AtlasValidationError,
)

GOOD_ID = "a" * 24
BAD_IDS = ["../x", "a:b", "a/b", "", "a" * 23, "A" * 24, GOOD_ID + "\n", "%2e%2e"]
BAD_CLUSTERS = ["../x", "a:b", "a/b", "", "-lead", "a b", "x\n", "c:revokeMongoDBEmployeeAccess"]


@pytest.fixture
def recorded() -> list[httpx.Request]:
    return []


@pytest.fixture
async def mock_client(recorded: list[httpx.Request]) -> AtlasClient:
    def handler(request: httpx.Request) -> httpx.Response:
        recorded.append(request)
        return httpx.Response(204)

    return AtlasClient(
        auth=httpx.DigestAuth("pub", "priv"), transport=httpx.MockTransport(handler), base_url="https://atlas.test"
    )


Call = Callable[[AtlasClient, str], Awaitable[object]]
ID_CALLS: dict[str, Call] = {
    "jwks.federation": lambda c, v: c.revoke_identity_provider_jwks(v, GOOD_ID),
    "jwks.idp": lambda c, v: c.revoke_identity_provider_jwks(GOOD_ID, v),
    "delete_idp": lambda c, v: c.delete_identity_provider(GOOD_ID, v),
    "delete_federation": lambda c, v: c.delete_federation_settings(v),
    "employee.group": lambda c, v: c.revoke_mongodb_employee_access(v, "Cluster0"),
    "org_federation": lambda c, v: c.get_org_federation_settings(v),
    "connected_org": lambda c, v: c.get_connected_org_config(GOOD_ID, v),
    "list_idps": lambda c, v: c.list_identity_providers(v),
    "get_idp": lambda c, v: c.get_identity_provider(GOOD_ID, v),
    "project": lambda c, v: c.get_project(v),
    "clusters": lambda c, v: c.list_clusters(v),
    "service_accounts": lambda c, v: c.list_service_accounts(v),
}


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("call", sorted(ID_CALLS))
async def test_bad_object_ids_never_reach_the_transport(
    mock_client: AtlasClient, recorded: list[httpx.Request], call: str, bad: str
) -> None:
    with pytest.raises(AtlasValidationError) as caught:
        await ID_CALLS[call](mock_client, bad)
    assert caught.value.pattern == OBJECT_ID
    assert caught.value.field in {"federationSettingsId", "identityProviderId", "groupId", "orgId"}
    assert caught.value.field in str(caught.value)
    assert OBJECT_ID in str(caught.value)
    assert recorded == []


@pytest.mark.parametrize("bad", BAD_CLUSTERS)
async def test_bad_cluster_names_never_reach_the_transport(
    mock_client: AtlasClient, recorded: list[httpx.Request], bad: str
) -> None:
    for call in (mock_client.revoke_mongodb_employee_access, mock_client.get_cluster):
        with pytest.raises(AtlasValidationError) as caught:
            await call(GOOD_ID, bad)
        assert caught.value.field == "clusterName"
        assert caught.value.pattern == CLUSTER_NAME
    assert recorded == []


@pytest.mark.parametrize("bad", ["mdb_sa_id_" + "a" * 23, "mdb_sa_id_../x", "x", ""])
async def test_bad_service_account_ids_never_reach_the_transport(
    mock_client: AtlasClient, recorded: list[httpx.Request], bad: str
) -> None:
    with pytest.raises(AtlasValidationError) as get_caught:
        await mock_client.get_service_account(GOOD_ID, bad)
    assert get_caught.value.pattern == SERVICE_ACCOUNT_CLIENT_ID
    with pytest.raises(AtlasValidationError):
        await mock_client.revoke_service_account_token(
            client_id=bad, client_secret=SecretStr("s"), token=SecretStr("t")
        )
    assert recorded == []


async def test_huge_values_are_truncated_in_the_message(
    mock_client: AtlasClient, recorded: list[httpx.Request]
) -> None:
    with pytest.raises(AtlasValidationError) as caught:
        await mock_client.get_project("z" * 10_000)
    assert len(str(caught.value)) < 300
    assert "10000 chars" in str(caught.value)
    assert recorded == []


async def test_paging_bounds_are_checked_before_io(mock_client: AtlasClient, recorded: list[httpx.Request]) -> None:
    with pytest.raises(AtlasValidationError):
        await mock_client.list_orgs(items_per_page=501)
    with pytest.raises(AtlasValidationError):
        await mock_client.list_orgs(page_num=0)
    assert recorded == []


async def test_valid_values_do_reach_the_transport(mock_client: AtlasClient, recorded: list[httpx.Request]) -> None:
    await mock_client.revoke_mongodb_employee_access(GOOD_ID, "Cluster-0")
    assert len(recorded) == 1  # a 204 without a challenge: Digest answers nothing further
    assert recorded[0].url.path == f"/api/atlas/v2/groups/{GOOD_ID}/clusters/Cluster-0:revokeMongoDBEmployeeAccess"


@given(st.text(max_size=40))
def test_cluster_pattern_matches_only_safe_names(name: str) -> None:
    matched = re.fullmatch(CLUSTER_NAME, name) is not None
    if matched:
        assert "/" not in name
        assert ":" not in name
        assert ".." not in name
        assert not name.startswith("-")

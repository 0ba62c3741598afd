"""Every operation's happy path against FakeAtlas on a real loopback socket (OAuth mode)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from bot import __version__
from bot.atlas import OPERATIONS, AtlasClient
from tests.fakes.fake_atlas import FakeAtlas


async def test_list_and_get_orgs_and_federation_reads(client: AtlasClient, seed: dict[str, Any]) -> None:
    orgs = await client.list_orgs(items_per_page=10, page_num=1)
    assert {o.id for o in orgs.results} == set(seed["orgIds"])
    assert orgs.total_count == 2

    filtered = await client.list_orgs(name="acme l", include_count=False)
    assert [o.name for o in filtered.results] == ["Acme Labs"]
    assert filtered.total_count is None

    settings = await client.get_org_federation_settings(seed["orgIds"][0])
    assert settings.id == seed["federationSettingsId"]
    assert settings.identity_provider_status == "ACTIVE"

    fed = seed["federationSettingsId"]
    configs = await client.list_connected_org_configs(fed, items_per_page=1, page_num=2)
    assert len(configs.results) == 1
    assert configs.total_count == 2
    config = await client.get_connected_org_config(fed, seed["orgIds"][1])
    assert config.org_id == seed["orgIds"][1]
    assert config.data_access_identity_provider_ids == [seed["idps"]["workload"]]


async def test_identity_provider_reads_and_array_params(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    fed = seed["federationSettingsId"]
    default = await client.list_identity_providers(fed)
    assert [idp.protocol for idp in default.results] == ["SAML"]  # Atlas's default: SAML + WORKFORCE

    every = await client.list_identity_providers(
        fed, protocol=["OIDC", "SAML"], idp_type=["WORKFORCE", "WORKLOAD"], items_per_page=50
    )
    assert {idp.id for idp in every.results} == set(seed["idps"].values())
    sent = fake.requests[-1]
    assert sent.query == [
        ("itemsPerPage", "50"),
        ("protocol", "OIDC"),
        ("protocol", "SAML"),
        ("idpType", "WORKFORCE"),
        ("idpType", "WORKLOAD"),
    ]

    idp = await client.get_identity_provider(fed, seed["idps"]["oidc"])
    assert idp.protocol == "OIDC"
    assert idp.idp_type == "WORKFORCE"
    assert [org.org_id for org in idp.associated_orgs] == [seed["orgIds"][0]]


async def test_project_cluster_and_service_account_reads(client: AtlasClient, seed: dict[str, Any]) -> None:
    projects = await client.list_projects(include_count=True)
    assert [p.id for p in projects.results] == [seed["groupId"]]
    project = await client.get_project(seed["groupId"])
    assert project.cluster_count == 2

    clusters = await client.list_clusters(seed["groupId"], items_per_page=500)
    assert {c.name for c in clusters.results} == {"Cluster0", "analytics"}
    cluster = await client.get_cluster(seed["groupId"], "Cluster0")
    assert cluster.mongo_db_employee_access_grant is not None
    assert cluster.mongo_db_employee_access_grant.grant_type == "CLUSTER_DATABASE_LOGS"
    assert (await client.get_cluster(seed["groupId"], "analytics")).mongo_db_employee_access_grant is None

    org_id = seed["orgIds"][0]
    accounts = await client.list_service_accounts(org_id, page_num=1)
    assert [a.client_id for a in accounts.results] == [seed["serviceAccount"]["clientId"]]
    account = await client.get_service_account(org_id, seed["serviceAccount"]["clientId"])
    assert account.secrets[0].masked_secret_value is not None
    assert account.secrets[0].masked_secret_value.startswith("mdb_sa_sk_...")


async def test_revoke_jwks_mutates_the_idp(client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]) -> None:
    await client.revoke_identity_provider_jwks(seed["federationSettingsId"], seed["idps"]["oidc"])
    assert fake.idps[seed["idps"]["oidc"]]["jwksRevocations"] == 1
    assert fake.count("revokeJwks") == 1


async def test_delete_idp_then_federation(client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]) -> None:
    fake.reset()
    org = fake.add_org("Solo")
    federation = fake.add_federation([org["id"]])
    idp = fake.add_idp(federation["id"], protocol="SAML", org_ids=[org["id"]])
    fake.add_service_account(seed["serviceAccount"]["clientId"], seed["serviceAccount"]["secret"])

    await client.delete_identity_provider(federation["id"], idp["id"])
    assert idp["id"] not in fake.idps
    assert federation["orgConfigs"][org["id"]]["identityProviderId"] is None

    await client.delete_federation_settings(federation["id"])
    assert federation["id"] not in fake.federations
    assert fake.count("deleteFederationSetting") == 1


async def test_revoke_employee_access_removes_the_grant(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    await client.revoke_mongodb_employee_access(seed["groupId"], "Cluster0")
    assert "mongoDBEmployeeAccessGrant" not in fake.clusters[(seed["groupId"], "Cluster0")]
    assert (await client.get_cluster(seed["groupId"], "Cluster0")).mongo_db_employee_access_grant is None


async def test_revoke_service_account_token_uses_that_accounts_basic_auth(client: AtlasClient, fake: FakeAtlas) -> None:
    victim_id, victim_secret = fake.add_service_account(name="leaked")
    await fake_token(fake, victim_id, victim_secret)
    token = next(t for t, r in fake.tokens.items() if r["clientId"] == victim_id)

    await client.revoke_service_account_token(
        client_id=victim_id, client_secret=SecretStr(victim_secret), token=SecretStr(token)
    )

    assert fake.tokens[token]["revoked"] is True
    revoke = fake.requests[-1]
    assert revoke.path == "/api/oauth/revoke"
    assert revoke.body == f"token={token}&token_type_hint=access_token".encode()
    assert revoke.header("Content-Type") == "application/x-www-form-urlencoded"
    assert (revoke.header("Authorization") or "").startswith("Basic ")


async def fake_token(fake: FakeAtlas, client_id: str, secret: str) -> None:
    """Mint a token for another service account the way its own client would."""
    async with httpx.AsyncClient(base_url=fake.base_url or "") as raw:
        response = await raw.post(
            "/api/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
    assert response.status_code == 200


async def test_every_request_carries_pinned_accept_and_user_agent(
    client: AtlasClient, fake: FakeAtlas, seed: dict[str, Any]
) -> None:
    await client.get_cluster(seed["groupId"], "Cluster0")
    await client.list_orgs()
    await client.revoke_identity_provider_jwks(seed["federationSettingsId"], seed["idps"]["oidc"])
    api_requests = [r for r in fake.requests if r.operation in OPERATIONS]
    assert len(api_requests) == 3
    for recorded in api_requests:
        op = OPERATIONS[recorded.operation or ""]
        assert recorded.header("Accept") == f"application/vnd.atlas.{op.version}+json"
        assert recorded.header("User-Agent") == f"atlas-chatops/{__version__}"
    assert [r.header("Accept") for r in api_requests] == [
        "application/vnd.atlas.2024-08-05+json",
        "application/vnd.atlas.2023-01-01+json",
        "application/vnd.atlas.2023-11-15+json",
    ]

"""The pinned operation table: every Atlas call the bot makes, with the one version it sends.

Versions come from the spec (NOTES.md section 0 lists dates in the public docs that are wrong).
``idempotent`` drives retries: a read timeout or a reset connection is retried only when repeating the
call cannot do anything twice. The destructive writes are never repeated once they may have reached
Atlas, although HTTP calls DELETE idempotent: the bot promises each approved action runs exactly once
(a second JWKS revocation logs everyone out again), so a lost answer is reported as unknown and the
target is read back instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bot.atlas.patterns import CLUSTER_NAME, OBJECT_ID, SERVICE_ACCOUNT_CLIENT_ID

__all__ = ["OAUTH_REVOKE", "OAUTH_TOKEN", "OPERATIONS", "Operation"]


@dataclass(frozen=True, slots=True)
class Operation:
    operation_id: str
    method: str
    path: str
    version: str | None
    idempotent: bool
    path_params: tuple[tuple[str, str], ...] = ()

    @property
    def accept(self) -> str:
        if self.version is None:
            return "application/json"
        return f"application/vnd.atlas.{self.version}+json"


_FED: Final = ("federationSettingsId", OBJECT_ID)
# The spec gives the path parameter no pattern; the IdP object's `id` is 24-hex.
_IDP: Final = ("identityProviderId", OBJECT_ID)
_GROUP: Final = ("groupId", OBJECT_ID)
_ORG: Final = ("orgId", OBJECT_ID)
_CLUSTER: Final = ("clusterName", CLUSTER_NAME)
_CLIENT: Final = ("clientId", SERVICE_ACCOUNT_CLIENT_ID)

_V2: Final = "/api/atlas/v2"
_IDPS: Final = f"{_V2}/federationSettings/{{federationSettingsId}}/identityProviders"

_TABLE: Final = (
    # Writes.
    Operation(
        "revokeFederationSettingIdentityProviderJwks",
        "DELETE",
        f"{_IDPS}/{{identityProviderId}}/jwks",
        "2023-11-15",
        False,
        (_FED, _IDP),
    ),
    Operation(
        "deleteFederationSettingIdentityProvider",
        "DELETE",
        f"{_IDPS}/{{identityProviderId}}",
        "2023-11-15",
        False,
        (_FED, _IDP),
    ),
    Operation(
        "deleteFederationSetting",
        "DELETE",
        f"{_V2}/federationSettings/{{federationSettingsId}}",
        "2023-01-01",
        False,
        (_FED,),
    ),
    Operation(
        "revokeGroupClusterMongoDbEmployeeAccess",
        "POST",
        f"{_V2}/groups/{{groupId}}/clusters/{{clusterName}}:revokeMongoDBEmployeeAccess",
        "2024-08-05",
        False,
        (_GROUP, _CLUSTER),
    ),
    # Reads for previews and pickers.
    Operation("listOrgs", "GET", f"{_V2}/orgs", "2023-01-01", True),
    Operation(
        "getOrgFederationSettings",
        "GET",
        f"{_V2}/orgs/{{orgId}}/federationSettings",
        "2023-01-01",
        True,
        (_ORG,),
    ),
    Operation(
        "listFederationSettingConnectedOrgConfigs",
        "GET",
        f"{_V2}/federationSettings/{{federationSettingsId}}/connectedOrgConfigs",
        "2023-01-01",
        True,
        (_FED,),
    ),
    Operation(
        "getFederationSettingConnectedOrgConfig",
        "GET",
        f"{_V2}/federationSettings/{{federationSettingsId}}/connectedOrgConfigs/{{orgId}}",
        "2023-01-01",
        True,
        (_FED, _ORG),
    ),
    Operation("listFederationSettingIdentityProviders", "GET", _IDPS, "2023-01-01", True, (_FED,)),
    # 2023-01-01 of this one is sunset (x-sunset 2025-01-01) and SAML-only.
    Operation(
        "getFederationSettingIdentityProvider",
        "GET",
        f"{_IDPS}/{{identityProviderId}}",
        "2023-11-15",
        True,
        (_FED, _IDP),
    ),
    Operation("listGroups", "GET", f"{_V2}/groups", "2023-01-01", True),
    Operation("getGroup", "GET", f"{_V2}/groups/{{groupId}}", "2023-01-01", True, (_GROUP,)),
    Operation("listGroupClusters", "GET", f"{_V2}/groups/{{groupId}}/clusters", "2024-08-05", True, (_GROUP,)),
    Operation(
        "getGroupCluster",
        "GET",
        f"{_V2}/groups/{{groupId}}/clusters/{{clusterName}}",
        "2024-08-05",
        True,
        (_GROUP, _CLUSTER),
    ),
    Operation("listOrgServiceAccounts", "GET", f"{_V2}/orgs/{{orgId}}/serviceAccounts", "2024-08-05", True, (_ORG,)),
    Operation(
        "getOrgServiceAccount",
        "GET",
        f"{_V2}/orgs/{{orgId}}/serviceAccounts/{{clientId}}",
        "2024-08-05",
        True,
        (_ORG, _CLIENT),
    ),
)

OPERATIONS: Final[dict[str, Operation]] = {op.operation_id: op for op in _TABLE}

# Not in the spec (NOTES.md section C). Token requests are safe to repeat; a revoke is not treated as
# idempotent so that an unknown outcome is reported instead of silently retried.
OAUTH_TOKEN: Final = Operation("oauthToken", "POST", "/api/oauth/token", None, True)
OAUTH_REVOKE: Final = Operation("oauthRevoke", "POST", "/api/oauth/revoke", None, False)

"""Pydantic models of the Atlas bodies the bot reads.

Only the fields the bot uses are declared; everything else is kept (``extra="allow"``) so a preview
can still show it, and new Atlas fields never break parsing. Field names follow Python style with the
spec's camelCase as aliases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "ApiErrorBody",
    "AtlasModel",
    "BadRequestDetail",
    "Cluster",
    "ConnectedOrgConfig",
    "EmployeeAccessGrant",
    "FieldViolation",
    "IdentityProvider",
    "Link",
    "OAuthErrorBody",
    "OAuthToken",
    "OrgFederationSettings",
    "Organization",
    "Page",
    "Project",
    "ServiceAccount",
    "ServiceAccountSecret",
]

T = TypeVar("T")


class AtlasModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True)


class FieldViolation(AtlasModel):
    description: str
    field: str


class BadRequestDetail(AtlasModel):
    fields: list[FieldViolation] = Field(default_factory=list)


class ApiErrorBody(AtlasModel):
    """Atlas ``ApiError``: the body of every documented 4xx/5xx response."""

    error: int
    error_code: str
    detail: str | None = None
    reason: str | None = None
    parameters: list[Any] = Field(default_factory=list)
    bad_request_detail: BadRequestDetail | None = None


class OAuthErrorBody(BaseModel):
    """RFC 6749 error body of ``/api/oauth/token`` and ``/api/oauth/revoke``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    error: str
    error_description: str | None = None


class OAuthToken(BaseModel):
    """Successful ``/api/oauth/token`` response. The repr never shows the token."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    access_token: str = Field(repr=False, min_length=1)
    token_type: str
    expires_in: float = Field(gt=0)


class Link(AtlasModel):
    href: str | None = None
    rel: str | None = None


class Page(AtlasModel, Generic[T]):
    """A page of a list endpoint; ``total_count`` is None when includeCount=false."""

    results: list[T]
    total_count: int | None = None
    links: list[Link] = Field(default_factory=list)


class Organization(AtlasModel):
    id: str
    name: str
    is_deleted: bool | None = None


class OrgFederationSettings(AtlasModel):
    id: str
    federated_domains: list[str] = Field(default_factory=list)
    has_role_mappings: bool | None = None
    identity_provider_id: str | None = None
    identity_provider_status: Literal["ACTIVE", "INACTIVE"] | None = None


class ConnectedOrgConfig(AtlasModel):
    org_id: str
    domain_restriction_enabled: bool
    domain_allow_list: list[str] = Field(default_factory=list)
    identity_provider_id: str | None = None
    data_access_identity_provider_ids: list[str] = Field(default_factory=list)
    post_auth_role_grants: list[str | None] = Field(default_factory=list)


class IdentityProvider(AtlasModel):
    """``FederationIdentityProvider`` (2023-11-15): SAML, OIDC workforce or OIDC workload."""

    id: str
    okta_idp_id: str | None
    display_name: str | None = None
    description: str | None = None
    protocol: Literal["SAML", "OIDC"] | None = None
    idp_type: Literal["WORKFORCE", "WORKLOAD"] | None = None
    issuer_uri: str | None = None
    associated_orgs: list[ConnectedOrgConfig] = Field(default_factory=list)
    audience: str | None = None
    client_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Project(AtlasModel):
    """``Group``: Atlas calls projects groups."""

    id: str
    name: str
    org_id: str
    cluster_count: int
    created: datetime


class EmployeeAccessGrant(AtlasModel):
    grant_type: str
    expiration_time: datetime


class Cluster(AtlasModel):
    """``ClusterDescription20240805``; a missing grant is read as "no active grant" (an inference)."""

    id: str | None = None
    name: str
    group_id: str | None = None
    state_name: str | None = None
    paused: bool | None = None
    cluster_type: str | None = None
    mongo_db_version: str | None = Field(default=None, alias="mongoDBVersion")
    termination_protection_enabled: bool | None = None
    mongo_db_employee_access_grant: EmployeeAccessGrant | None = Field(default=None, alias="mongoDBEmployeeAccessGrant")


class ServiceAccountSecret(AtlasModel):
    # Atlas returns the clear `secret` only at creation; dropping unknown fields keeps it out of reprs.
    model_config = ConfigDict(extra="ignore")

    id: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None
    masked_secret_value: str | None = None


class ServiceAccount(AtlasModel):
    client_id: str
    name: str | None = None
    description: str | None = None
    roles: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
    secrets: list[ServiceAccountSecret] = Field(default_factory=list)

"""``AtlasClient``: one typed async method per Atlas operation the bot uses.

Each call validates its path parameters before any I/O, sends exactly the Accept version pinned in
``_operations``, retries only what is safe within one deadline, and turns every failure into
``bot.atlas.errors`` via ``_translate``.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, Literal, NoReturn, TypeVar

import httpx
from pydantic import BaseModel, SecretStr

from bot import __version__
from bot.atlas._auth import (
    LABEL_EXTENSION,
    REMAINING_EXTENSION,
    OAuthClientCredentialsAuth,
    basic_auth_header,
)
from bot.atlas._operations import OAUTH_REVOKE, OPERATIONS, Operation
from bot.atlas._ratelimit import OAuthRateLimiter
from bot.atlas._retry import RetryPolicy, backoff_delay, is_retryable
from bot.atlas._translate import error_from_response, error_from_transport, parse_model
from bot.atlas._transport import MethodSplitTransport
from bot.atlas.errors import (
    AtlasError,
    AtlasRateLimitError,
    AtlasValidationError,
)
from bot.atlas.models import (
    Cluster,
    ConnectedOrgConfig,
    IdentityProvider,
    Organization,
    OrgFederationSettings,
    Page,
    Project,
    ServiceAccount,
)
from bot.atlas.patterns import SERVICE_ACCOUNT_CLIENT_ID, validate_path_param
from bot.atlas.settings import DEFAULT_BASE_URL, AtlasSettings

__all__ = ["AtlasClient"]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Params = list[tuple[str, str | int | float | bool | None]]
Protocol = Literal["SAML", "OIDC"]
IdpType = Literal["WORKFORCE", "WORKLOAD"]

USER_AGENT = f"atlas-chatops/{__version__}"


def _paging(
    operation: str, items_per_page: int | None, page_num: int | None, include_count: bool | None = None
) -> Params:
    params: Params = []
    if items_per_page is not None:
        if not 1 <= items_per_page <= 500:
            raise AtlasValidationError(
                f"itemsPerPage={items_per_page} is outside 1..500",
                operation=operation,
                field="itemsPerPage",
                pattern="1..500",
            )
        params.append(("itemsPerPage", items_per_page))
    if page_num is not None:
        if page_num < 1:
            raise AtlasValidationError(
                f"pageNum={page_num} must be >= 1", operation=operation, field="pageNum", pattern=">= 1"
            )
        params.append(("pageNum", page_num))
    if include_count is not None:
        params.append(("includeCount", include_count))
    return params


class AtlasClient:
    """Async Atlas Admin API v2 client. Use as ``async with AtlasClient(...)`` or call ``aclose()``."""

    def __init__(
        self,
        *,
        auth: httpx.Auth,
        base_url: str = DEFAULT_BASE_URL,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        oauth_limiter: OAuthRateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth = auth
        self._owns_http = http_client is None
        if http_client is None:
            if transport is None:
                # Reads and writes over aiohttp pools of their own, its resend off (see _transport). Mounted for
                # all:// rather than passed as transport= so HTTP(S)_PROXY/NO_PROXY from the
                # environment still apply: httpx ignores them when given a transport, and a proxy
                # mount (more specific than all://) wins over this one.
                routing: dict[str, Any] = {"mounts": {"all://": MethodSplitTransport()}}
            else:
                routing = {"transport": transport}
            http_client = httpx.AsyncClient(
                base_url=base_url,
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
                **routing,
            )
        self._http = http_client
        self._timeout = timeout
        self.retry = retry or RetryPolicy()
        if oauth_limiter is None:
            oauth_limiter = auth.limiter if isinstance(auth, OAuthClientCredentialsAuth) else OAuthRateLimiter()
        self._limiter = oauth_limiter
        self._sleep = sleep
        self._random = random
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: AtlasSettings, **kwargs: Any) -> AtlasClient:
        limiter = kwargs.pop("oauth_limiter", None) or OAuthRateLimiter()
        return cls(
            auth=settings.build_auth(limiter=limiter),
            base_url=settings.base_url,
            oauth_limiter=limiter,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"AtlasClient(base_url={str(self._http.base_url)!r}, auth={type(self._auth).__name__})"

    async def __aenter__(self) -> AtlasClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- the one request path -------------------------------------------------------------------

    def _url(self, operation: Operation, path_params: Mapping[str, str]) -> str:
        for name, pattern in operation.path_params:
            validate_path_param(operation.operation_id, name, path_params.get(name), pattern)
        return operation.path.format_map(path_params)

    async def _send(
        self,
        operation: Operation,
        path_params: Mapping[str, str] | None = None,
        *,
        params: Params | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        label = operation.operation_id
        url = self._url(operation, path_params or {})
        policy = self.retry
        deadline = self._clock() + policy.deadline
        request_headers = {"Accept": operation.accept, **(headers or {})}
        attempt = 0

        def remaining_time() -> float:
            return deadline - self._clock()

        while True:
            attempt += 1
            remaining = deadline - self._clock()
            if operation is OAUTH_REVOKE:
                await self._limiter.acquire(operation=label, budget=remaining)
            request = self._http.build_request(
                operation.method,
                url,
                params=params,
                content=content,
                headers=request_headers,
                timeout=max(0.001, min(self._timeout, remaining)),
                extensions={REMAINING_EXTENSION: remaining_time, LABEL_EXTENSION: label},
            )
            cause: BaseException | None = None
            try:
                response = await self._http.send(request, auth=auth or self._auth)
            except httpx.TransportError as exc:
                error: AtlasError = error_from_transport(exc, operation=operation, label=label)
                cause = exc
            except AtlasError as exc:
                error = exc
            else:
                if response.is_success:
                    return response
                error = error_from_response(response, operation=operation, label=label)
            logger.debug("atlas %s attempt %d failed: %s", label, attempt, type(error).__name__)
            if attempt >= policy.max_attempts or not is_retryable(error, operation):
                _raise(error, cause)
            delay = backoff_delay(error, attempt, policy, self._random)
            if self._clock() + delay > deadline:
                _raise(self._deadline_error(error, delay), cause or error)
            await self._sleep(delay)

    @staticmethod
    def _deadline_error(error: AtlasError, delay: float) -> AtlasError:
        """Waiting would overrun the deadline: fail now, saying how long Atlas asked us to wait."""
        if isinstance(error, AtlasRateLimitError) and error.retry_after is not None:
            return AtlasRateLimitError(
                f"{error.message}; Atlas asked to wait {delay:g} s, longer than the call's deadline",
                operation=error.operation,
                status=error.status,
                error_code=error.error_code,
                detail=error.detail,
                api_error=error.api_error,
                oauth_error=error.oauth_error,
                retry_after=error.retry_after,
            )
        return error

    async def _get(
        self,
        op_id: str,
        model: type[M],
        path_params: Mapping[str, str] | None = None,
        params: Params | None = None,
    ) -> M:
        response = await self._send(OPERATIONS[op_id], path_params, params=params)
        return parse_model(response, model, label=op_id)

    async def _write(self, op_id: str, path_params: Mapping[str, str]) -> None:
        await self._send(OPERATIONS[op_id], path_params)

    # -- writes ---------------------------------------------------------------------------------

    async def revoke_identity_provider_jwks(self, federation_settings_id: str, identity_provider_id: str) -> None:
        """Revoke an OIDC IdP's JWKS: every connected org's users are logged out."""
        await self._write(
            "revokeFederationSettingIdentityProviderJwks",
            {"federationSettingsId": federation_settings_id, "identityProviderId": identity_provider_id},
        )

    async def delete_identity_provider(self, federation_settings_id: str, identity_provider_id: str) -> None:
        await self._write(
            "deleteFederationSettingIdentityProvider",
            {"federationSettingsId": federation_settings_id, "identityProviderId": identity_provider_id},
        )

    async def delete_federation_settings(self, federation_settings_id: str) -> None:
        await self._write("deleteFederationSetting", {"federationSettingsId": federation_settings_id})

    async def revoke_mongodb_employee_access(self, group_id: str, cluster_name: str) -> None:
        """Not idempotent for retry purposes: a lost answer is reported as outcome_unknown."""
        await self._write("revokeGroupClusterMongoDbEmployeeAccess", {"groupId": group_id, "clusterName": cluster_name})

    async def revoke_service_account_token(self, *, client_id: str, client_secret: SecretStr, token: SecretStr) -> None:
        """Revoke one access token of the service account ``client_id`` (Basic auth with its secret)."""
        validate_path_param(OAUTH_REVOKE.operation_id, "clientId", client_id, SERVICE_ACCOUNT_CLIENT_ID)
        body = httpx.QueryParams({"token": token.get_secret_value(), "token_type_hint": "access_token"})
        await self._send(
            OAUTH_REVOKE,
            content=str(body).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": basic_auth_header(client_id, client_secret),
            },
            auth=_PRESET_AUTH,
        )

    # -- reads for previews and pickers ---------------------------------------------------------

    async def list_orgs(
        self,
        *,
        name: str | None = None,
        items_per_page: int | None = None,
        page_num: int | None = None,
        include_count: bool | None = None,
    ) -> Page[Organization]:
        params = _paging("listOrgs", items_per_page, page_num, include_count)
        if name is not None:
            params.append(("name", name))
        return await self._get("listOrgs", Page[Organization], params=params)

    async def get_org_federation_settings(self, org_id: str) -> OrgFederationSettings:
        return await self._get("getOrgFederationSettings", OrgFederationSettings, {"orgId": org_id})

    async def list_connected_org_configs(
        self, federation_settings_id: str, *, items_per_page: int | None = None, page_num: int | None = None
    ) -> Page[ConnectedOrgConfig]:
        op = "listFederationSettingConnectedOrgConfigs"
        return await self._get(
            op,
            Page[ConnectedOrgConfig],
            {"federationSettingsId": federation_settings_id},
            _paging(op, items_per_page, page_num),
        )

    async def get_connected_org_config(self, federation_settings_id: str, org_id: str) -> ConnectedOrgConfig:
        return await self._get(
            "getFederationSettingConnectedOrgConfig",
            ConnectedOrgConfig,
            {"federationSettingsId": federation_settings_id, "orgId": org_id},
        )

    async def list_identity_providers(
        self,
        federation_settings_id: str,
        *,
        protocol: Sequence[Protocol] | None = None,
        idp_type: Sequence[IdpType] | None = None,
        items_per_page: int | None = None,
        page_num: int | None = None,
    ) -> Page[IdentityProvider]:
        """Atlas returns only SAML/WORKFORCE IdPs when ``protocol``/``idp_type`` are omitted."""
        op = "listFederationSettingIdentityProviders"
        params = _paging(op, items_per_page, page_num)
        # Form style, exploded: protocol=OIDC&protocol=SAML.
        params += [("protocol", p) for p in protocol or ()]
        params += [("idpType", t) for t in idp_type or ()]
        return await self._get(op, Page[IdentityProvider], {"federationSettingsId": federation_settings_id}, params)

    async def get_identity_provider(self, federation_settings_id: str, identity_provider_id: str) -> IdentityProvider:
        return await self._get(
            "getFederationSettingIdentityProvider",
            IdentityProvider,
            {"federationSettingsId": federation_settings_id, "identityProviderId": identity_provider_id},
        )

    async def list_projects(
        self,
        *,
        items_per_page: int | None = None,
        page_num: int | None = None,
        include_count: bool | None = None,
    ) -> Page[Project]:
        params = _paging("listGroups", items_per_page, page_num, include_count)
        return await self._get("listGroups", Page[Project], params=params)

    async def get_project(self, group_id: str) -> Project:
        return await self._get("getGroup", Project, {"groupId": group_id})

    async def list_clusters(
        self,
        group_id: str,
        *,
        items_per_page: int | None = None,
        page_num: int | None = None,
        include_count: bool | None = None,
    ) -> Page[Cluster]:
        params = _paging("listGroupClusters", items_per_page, page_num, include_count)
        return await self._get("listGroupClusters", Page[Cluster], {"groupId": group_id}, params)

    async def get_cluster(self, group_id: str, cluster_name: str) -> Cluster:
        return await self._get("getGroupCluster", Cluster, {"groupId": group_id, "clusterName": cluster_name})

    async def list_service_accounts(
        self, org_id: str, *, items_per_page: int | None = None, page_num: int | None = None
    ) -> Page[ServiceAccount]:
        op = "listOrgServiceAccounts"
        return await self._get(op, Page[ServiceAccount], {"orgId": org_id}, _paging(op, items_per_page, page_num))

    async def get_service_account(self, org_id: str, client_id: str) -> ServiceAccount:
        return await self._get("getOrgServiceAccount", ServiceAccount, {"orgId": org_id, "clientId": client_id})


def _raise(error: AtlasError, cause: BaseException | None) -> NoReturn:
    """Keep the httpx exception as ``__cause__``; errors built from responses chain as they are."""
    if cause is None or cause is error:
        raise error
    raise error from cause


class _PresetAuthorization(httpx.Auth):
    """For /api/oauth/revoke: the Basic header is already on the request; keep the client's auth off it."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield request


_PRESET_AUTH = _PresetAuthorization()

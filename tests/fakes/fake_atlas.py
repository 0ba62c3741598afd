"""A fake MongoDB Atlas Admin API v2, served over real HTTP on loopback with aiohttp.web.

Routes, operationIds, accepted versions, sunset dates and path-parameter patterns are compiled once
from ``contract/atlas-admin-api.contract.yaml``; requests are checked against those precompiled facts
(no per-request OpenAPI validation), so one core serves well over 1000 requests per second.

Behaviour choices where Atlas's is undocumented (all error bodies are ``application/json`` ApiError):

* Check order: fault injection, route (404 ``RESOURCE_NOT_FOUND``/405), auth (401 ``UNAUTHORIZED``),
  Accept version (406 ``INVALID_VERSION_DATE`` when missing/unlisted, 410 ``VERSION_GONE`` when the
  spec's ``x-sunset`` date has passed), path parameters (400 ``INVALID_PATH_PARAMETER``, with
  ``badRequestDetail.fields``), query parameters (400 ``INVALID_QUERY_PARAMETER``).
* Listed, not sunset, but older versions the fake does not render (cluster 2023-01-01/2023-02-01)
  get 406 ``INVALID_VERSION_DATE`` with a detail saying the fake does not implement them.
* Unknown ids: 404 ``ORG_NOT_FOUND``, ``GROUP_NOT_FOUND``, ``CLUSTER_NOT_FOUND``,
  ``FEDERATION_SETTINGS_NOT_FOUND``, ``IDENTITY_PROVIDER_NOT_FOUND``, ``SERVICE_ACCOUNT_NOT_FOUND``.
* Revoke JWKS on a SAML IdP: 400 ``IDENTITY_PROVIDER_NOT_OIDC``.
* Delete IdP associated with more than one org: 400 ``IDENTITY_PROVIDER_ASSOCIATED_WITH_MULTIPLE_ORGS``
  (the spec lists no 409 for this operation).
* Delete federation with more than one connected org: 400 ``FEDERATION_HAS_MULTIPLE_CONNECTED_ORGS``.
  Success removes the federation and its IdPs.
* Revoke employee access on a cluster without a grant: 409 ``NO_ACTIVE_EMPLOYEE_ACCESS_GRANT``
  (the spec lists 409 for this operation; the first revoke wins, a repeat is visibly a no-op).
* OAuth: ``/api/oauth/token`` issues ``expires_in=token_ttl`` tokens; 401 ``invalid_client`` for bad
  Basic credentials; 403 ``access_denied`` "Access Token limit reached" past ``max_tokens`` live tokens
  per service account. ``/api/oauth/revoke`` answers 200 (also for unknown tokens, as RFC 7009 says);
  a revoked token then gets 401.
* Digest: RFC 7616 MD5 with ``qop=auth``; nonces live ``nonce_ttl`` seconds (stale ones get a new
  challenge with ``stale=true``); nonce-count replay is not checked.
* ``envelope`` and ``pretty`` are accepted and ignored.

Python API: ``fake = FakeAtlas(); base_url = await fake.start(); ...; await fake.stop()``, seeding
helpers ``add_org/add_project/add_cluster/add_federation/add_idp/add_service_account/seed_demo``,
faults ``inject/fail/rate_limit/delay/html/truncated_json/reset_connection/hold`` (before the request is
handled) and ``lose_response/slow_response`` (after it was handled: the write happened), ``requests``,
``count(op)``, ``reset()``, ``advance(seconds)``, ``revoke_all_tokens()``.
HTTP control API (for other processes): see ``_control``; everything lives under ``/_fake/``.
Standalone: ``python -m tests.fakes.fake_atlas --port 8080 --seed demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import json
import random
import re
import secrets
import socket
import struct
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import yaml
from aiohttp import web

__all__ = ["CONTRACT_PATH", "FakeAtlas", "Fault", "Hold", "RecordedRequest", "Route", "load_routes"]

CONTRACT_PATH = Path(__file__).resolve().parents[2] / "contract" / "atlas-admin-api.contract.yaml"
TOKEN_PATH = "/api/oauth/token"
REVOKE_PATH = "/api/oauth/revoke"
DIGEST_REALM = "MMS Public API"
_VERSION_RE = re.compile(r"application/vnd\.atlas\.(\d{4}-\d{2}-\d{2})\+json")
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
# Extra names accepted by count(): the SDK short names come from the contract, these are ours.
_ALIASES = {
    "revokeJwks": "revokeFederationSettingIdentityProviderJwks",
    "deleteIdp": "deleteFederationSettingIdentityProvider",
    "deleteFederation": "deleteFederationSetting",
    "revokeEmployeeAccess": "revokeGroupClusterMongoDbEmployeeAccess",
}


# -- contract ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    operation_id: str
    short_name: str | None
    method: str
    template: str
    regex: re.Pattern[str]
    versions: dict[str, date | None]  # version -> sunset date
    path_patterns: dict[str, re.Pattern[str] | None]
    query: dict[str, dict[str, Any]]  # name -> schema
    literal_weight: int


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def load_routes(contract_path: Path = CONTRACT_PATH) -> list[Route]:
    return list(_routes(contract_path, contract_path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _routes(contract_path: Path, _mtime_ns: int) -> tuple[Route, ...]:
    """Parsed once per process (and again if the file changes): with the pure-Python loader the
    spec took about a second to read, in every test that starts a fake."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(contract_path.read_text(encoding="utf-8"), Loader=loader)
    routes: list[Route] = []
    for template, item in spec["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "delete", "put", "patch"}:
                continue
            params = [_resolve(spec, p) for p in op.get("parameters", [])]
            path_patterns: dict[str, re.Pattern[str] | None] = {}
            query: dict[str, dict[str, Any]] = {}
            for p in params:
                schema = _resolve(spec, p.get("schema", {}))
                if p["in"] == "path":
                    pattern = schema.get("pattern")
                    path_patterns[p["name"]] = re.compile(pattern) if pattern else None
                elif p["in"] == "query":
                    query[p["name"]] = schema
            versions: dict[str, date | None] = {}
            for code, response in op["responses"].items():
                if not code.startswith("2"):
                    continue
                for media_type, media in (_resolve(spec, response).get("content") or {}).items():
                    match = _VERSION_RE.fullmatch(media_type)
                    if match:
                        sunset = (media or {}).get("x-sunset")
                        versions[match.group(1)] = date.fromisoformat(str(sunset)) if sunset else None
            regex = "".join(
                f"(?P<{part[1:-1]}>[^/]+?)" if part.startswith("{") else re.escape(part)
                for part in re.split(r"(\{[^}]+\})", template)
            )
            literal = re.sub(r"\{[^}]+\}", "", template)
            routes.append(
                Route(
                    operation_id=op["operationId"],
                    short_name=op.get("x-xgen-operation-id-override"),
                    method=method.upper(),
                    template=template,
                    regex=re.compile(f"^{regex}$"),
                    versions=versions,
                    path_patterns=path_patterns,
                    query=query,
                    literal_weight=len(literal),
                )
            )
    # `{clusterName}:revokeMongoDBEmployeeAccess` must win over `{clusterName}`.
    routes.sort(key=lambda r: r.literal_weight, reverse=True)
    return tuple(routes)


# -- recording and faults ---------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    operation: str | None
    headers: dict[str, str] = field(repr=False)  # includes Authorization: assert on it, never print it
    body: bytes = field(repr=False)
    status: int | None = None

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": [list(pair) for pair in self.query],
            "operation": self.operation,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "status": self.status,
        }


class Hold:
    """A "hold until released" fault: requests wait on ``release()``; ``arrived`` counts them."""

    def __init__(self) -> None:
        self._released = asyncio.Event()
        self.arrived = 0
        self._arrival = asyncio.Event()

    def release(self) -> None:
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    async def wait_arrived(self, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            await self._arrival.wait()

    async def _enter(self) -> None:
        self.arrived += 1
        self._arrival.set()
        await self._released.wait()


@dataclass
class Fault:
    """One injected failure. ``kind``: delay, status, html, truncated_json, reset or hold (instead of
    handling the request), or lose_response / slow_response (after handling it)."""

    kind: str
    status: int = 500
    error_code: str | None = None
    detail: str | None = None
    retry_after: int | None = None
    seconds: float = 0.0
    hold: Hold | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        return cls(
            kind=str(data["kind"]),
            status=int(data.get("status", 500)),
            error_code=data.get("error_code"),
            detail=data.get("detail"),
            retry_after=data.get("retry_after"),
            seconds=float(data.get("seconds", 0.0)),
        )


@dataclass
class _FaultQueue:
    method: str
    path: re.Pattern[str]
    faults: list[Fault]


# -- the fake ---------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeAtlas:
    def __init__(
        self,
        *,
        token_ttl: int = 3600,
        max_tokens: int = 100,
        nonce_ttl: float = 300.0,
        rate_limit_capacity: int = 1000,
        today: date | None = None,
        record_requests: bool = True,
        contract_path: Path = CONTRACT_PATH,
        seed: int = 0,
    ) -> None:
        self.token_ttl = token_ttl
        self.max_tokens = max_tokens
        self.nonce_ttl = nonce_ttl
        self.rate_limit_capacity = rate_limit_capacity
        self.today = today or datetime.now(UTC).date()
        self.record_requests = record_requests
        self.routes = load_routes(contract_path)
        self._short = {r.short_name: r.operation_id for r in self.routes if r.short_name}
        self._seed = seed
        self._runner: web.AppRunner | None = None
        self.base_url: str | None = None
        self._init_state()

    def _init_state(self) -> None:
        self._rng = random.Random(self._seed)
        self._offset = 0.0
        self.requests: list[RecordedRequest] = []
        self._counts: Counter[str] = Counter()
        self._faults: list[_FaultQueue] = []
        self._after_faults: dict[int, Fault] = {}  # id(request) -> lose_response / slow_response
        self._holds: dict[int, Hold] = {}
        self.orgs: dict[str, dict[str, Any]] = {}
        self.projects: dict[str, dict[str, Any]] = {}
        self.clusters: dict[tuple[str, str], dict[str, Any]] = {}
        self.federations: dict[str, dict[str, Any]] = {}
        self.idps: dict[str, dict[str, Any]] = {}
        self.service_accounts: dict[str, dict[str, Any]] = {}
        self.api_keys: dict[str, str] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self._nonces: dict[str, float] = {}
        self._window = (0, 0)  # (minute, used) for RateLimit-Remaining

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        assert server.sockets
        bound_port = server.sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        for hold in self._holds.values():
            hold.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def reset(self) -> None:
        """Forget all state, tokens, recorded requests and faults (seeded data too)."""
        for hold in self._holds.values():
            hold.release()
        self._init_state()

    # -- clock --------------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (token expiry, nonce expiry)."""
        self._offset += seconds

    def _wall(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def new_id(self) -> str:
        return f"{self._rng.getrandbits(96):024x}"

    # -- seeding ------------------------------------------------------------------------------

    def add_org(self, name: str = "Org", *, org_id: str | None = None) -> dict[str, Any]:
        org = {"id": org_id or self.new_id(), "name": name, "isDeleted": False, "links": []}
        self.orgs[org["id"]] = org
        return org

    def add_project(self, org_id: str, name: str = "Project", *, group_id: str | None = None) -> dict[str, Any]:
        project = {
            "id": group_id or self.new_id(),
            "name": name,
            "orgId": org_id,
            "created": _iso(self._wall()),
            "links": [],
            "tags": [],
        }
        self.projects[project["id"]] = project
        return project

    def add_cluster(
        self,
        group_id: str,
        name: str,
        *,
        grant_type: str | None = None,
        grant_expires: datetime | None = None,
        state: str = "IDLE",
    ) -> dict[str, Any]:
        cluster: dict[str, Any] = {
            "id": self.new_id(),
            "name": name,
            "groupId": group_id,
            "clusterType": "REPLICASET",
            "stateName": state,
            "paused": False,
            "mongoDBMajorVersion": "8.0",
            "mongoDBVersion": "8.0.4",
            "terminationProtectionEnabled": False,
            "createDate": _iso(self._wall()),
            "links": [],
        }
        if grant_type is not None:
            expires = grant_expires or self._wall() + timedelta(hours=24)
            cluster["mongoDBEmployeeAccessGrant"] = {
                "grantType": grant_type,
                "expirationTime": _iso(expires),
                "links": [],
            }
        self.clusters[(group_id, name)] = cluster
        return cluster

    def add_federation(
        self, org_ids: list[str], *, domains: list[str] | None = None, federation_id: str | None = None
    ) -> dict[str, Any]:
        federation: dict[str, Any] = {
            "id": federation_id or self.new_id(),
            "federatedDomains": domains or ["example.com"],
            "orgConfigs": {},
        }
        for org_id in org_ids:
            federation["orgConfigs"][org_id] = {
                "orgId": org_id,
                "domainRestrictionEnabled": False,
                "domainAllowList": [],
                "identityProviderId": None,
                "dataAccessIdentityProviderIds": [],
                "postAuthRoleGrants": [],
                "roleMappings": [],
                "userConflicts": [],
            }
        self.federations[federation["id"]] = federation
        return federation

    def add_idp(
        self,
        federation_id: str,
        *,
        protocol: str = "OIDC",
        idp_type: str = "WORKFORCE",
        org_ids: list[str] | None = None,
        display_name: str | None = None,
    ) -> dict[str, Any]:
        """Workforce IdPs connect to orgs through the legacy 20-hex id, workload ones through
        ``dataAccessIdentityProviderIds``, as in Atlas."""
        federation = self.federations[federation_id]
        now = _iso(self._wall())
        idp: dict[str, Any] = {
            "id": self.new_id(),
            "oktaIdpId": f"{self._rng.getrandbits(80):020x}",
            "displayName": display_name or f"{protocol} {idp_type.lower()} IdP",
            "description": "seeded by FakeAtlas",
            "protocol": protocol,
            "idpType": idp_type,
            "issuerUri": f"https://idp.example.com/{self._rng.getrandbits(32):08x}",
            "createdAt": now,
            "updatedAt": now,
            "associatedDomains": [],
        }
        if protocol == "OIDC":
            idp.update(
                audience="atlas",
                authorizationType="GROUP",
                groupsClaim="groups",
                userClaim="sub",
            )
            if idp_type == "WORKFORCE":
                idp.update(clientId="atlas-client", requestedScopes=["openid"])
        else:
            idp.update(
                ssoUrl="https://idp.example.com/sso",
                requestBinding="HTTP-POST",
                responseSignatureAlgorithm="SHA-256",
                status="ACTIVE",
                ssoDebugEnabled=False,
            )
        self.idps[idp["id"]] = {"idp": idp, "federationId": federation_id, "jwksRevocations": 0}
        for org_id in org_ids or []:
            config = federation["orgConfigs"][org_id]
            if idp_type == "WORKFORCE":
                config["identityProviderId"] = idp["oktaIdpId"]
            else:
                config["dataAccessIdentityProviderIds"].append(idp["id"])
        return idp

    def add_service_account(
        self,
        client_id: str | None = None,
        secret: str | None = None,
        *,
        org_id: str | None = None,
        name: str = "chatops-bot",
    ) -> tuple[str, str]:
        client_id = client_id or f"mdb_sa_id_{self.new_id()}"
        secret = secret or f"mdb_sa_sk_{secrets.token_hex(20)}"
        now = self._wall()
        self.service_accounts[client_id] = {
            "secret": secret,
            "orgId": org_id,
            "view": {
                "clientId": client_id,
                "name": name,
                "description": "seeded by FakeAtlas",
                "roles": ["ORG_OWNER"],
                "createdAt": _iso(now),
                "secrets": [
                    {
                        "id": self.new_id(),
                        "createdAt": _iso(now),
                        "expiresAt": _iso(now + timedelta(days=90)),
                        "lastUsedAt": None,
                        "maskedSecretValue": f"mdb_sa_sk_...{secret[-4:]}",
                    }
                ],
            },
        }
        return client_id, secret

    def add_api_key(self, public_key: str | None = None, private_key: str | None = None) -> tuple[str, str]:
        public_key = public_key or f"{self._rng.getrandbits(32):08x}"
        private_key = private_key or secrets.token_hex(16)
        self.api_keys[public_key] = private_key
        return public_key, private_key

    def seed_demo(self) -> dict[str, Any]:
        """Two orgs in one federation, three IdPs, a project with two clusters, credentials."""
        org_a, org_b = self.add_org("Acme"), self.add_org("Acme Labs")
        project = self.add_project(org_a["id"], "payments")
        self.add_cluster(project["id"], "Cluster0", grant_type="CLUSTER_DATABASE_LOGS")
        self.add_cluster(project["id"], "analytics")
        federation = self.add_federation([org_a["id"], org_b["id"]])
        oidc = self.add_idp(federation["id"], protocol="OIDC", org_ids=[org_a["id"]])
        saml = self.add_idp(federation["id"], protocol="SAML", org_ids=[org_b["id"]])
        workload = self.add_idp(federation["id"], protocol="OIDC", idp_type="WORKLOAD", org_ids=[org_b["id"]])
        client_id, secret = self.add_service_account(org_id=org_a["id"])
        public_key, private_key = self.add_api_key()
        return {
            "orgIds": [org_a["id"], org_b["id"]],
            "groupId": project["id"],
            "clusters": ["Cluster0", "analytics"],
            "federationSettingsId": federation["id"],
            "idps": {"oidc": oidc["id"], "saml": saml["id"], "workload": workload["id"]},
            "serviceAccount": {"clientId": client_id, "secret": secret},
            "apiKey": {"publicKey": public_key, "privateKey": private_key},
        }

    # -- faults and observation ---------------------------------------------------------------

    def inject(self, method: str, path: str, fault: Fault, *, times: int = 1) -> None:
        """Queue ``fault`` ``times`` times for requests whose method matches (``*`` for any) and
        whose raw path matches the regex ``path`` (``re.search``)."""
        self._faults.append(_FaultQueue(method.upper(), re.compile(path), [fault] * times))

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        error_code: str | None = None,
        *,
        detail: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        self.inject(
            method,
            path,
            Fault("status", status=status, error_code=error_code, detail=detail, retry_after=retry_after),
            times=times,
        )

    def rate_limit(
        self,
        method: str,
        path: str,
        *,
        retry_after: int | None = None,
        error_code: str = "RATE_LIMITED_TOKEN_BUCKET",
        times: int = 1,
    ) -> None:
        self.fail(method, path, 429, error_code, retry_after=retry_after, times=times)

    def delay(self, method: str, path: str, seconds: float, *, times: int = 1) -> None:
        self.inject(method, path, Fault("delay", seconds=seconds), times=times)

    def html(self, method: str, path: str, *, status: int = 500, times: int = 1) -> None:
        self.inject(method, path, Fault("html", status=status), times=times)

    def truncated_json(self, method: str, path: str, *, status: int = 200, times: int = 1) -> None:
        self.inject(method, path, Fault("truncated_json", status=status), times=times)

    def reset_connection(self, method: str, path: str, *, times: int = 1) -> None:
        self.inject(method, path, Fault("reset"), times=times)

    def lose_response(self, method: str, path: str, *, times: int = 1) -> None:
        """Handle the request (a write takes effect), then reset the connection instead of answering."""
        self.inject(method, path, Fault("lose_response"), times=times)

    def slow_response(self, method: str, path: str, seconds: float, *, times: int = 1) -> None:
        """Handle the request (a write takes effect), then wait ``seconds`` before answering."""
        self.inject(method, path, Fault("slow_response", seconds=seconds), times=times)

    def hold(self, method: str, path: str, *, times: int = 1) -> Hold:
        handle = Hold()
        self._holds[len(self._holds) + 1] = handle
        self.inject(method, path, Fault("hold", hold=handle), times=times)
        return handle

    def clear_faults(self) -> None:
        self._faults.clear()

    def count(self, operation: str) -> int:
        """Requests received for an operationId, its SDK short name, an alias, or oauthToken/oauthRevoke."""
        name = _ALIASES.get(operation) or self._short.get(operation) or operation
        return self._counts[name]

    def revoke_all_tokens(self) -> None:
        for record in self.tokens.values():
            record["revoked"] = True

    def live_tokens(self, client_id: str) -> int:
        now = self.now()
        return sum(
            1 for r in self.tokens.values() if r["clientId"] == client_id and not r["revoked"] and r["expiresAt"] > now
        )

    # -- request handling ---------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        if raw_path.startswith("/_fake/"):
            return await self._control(request, raw_path)
        route, params = self._match(request.method, raw_path)
        operation = route.operation_id if route else _oauth_operation(raw_path)
        body = await request.read()
        record = RecordedRequest(
            method=request.method,
            path=raw_path,
            query=parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True),
            operation=operation,
            headers=dict(request.headers),
            body=body,
        )
        if self.record_requests:
            self.requests.append(record)
        if operation:
            self._counts[operation] += 1
        try:
            response = await self._handle(request, raw_path, route, params, body)
            after = self._after_faults.pop(id(request), None)
            if after is not None and after.kind == "slow_response":
                await asyncio.sleep(after.seconds)
            elif after is not None:
                _abort(request)
        except _ApiFailure as failure:
            response = self._error(failure.status, failure.error_code, failure.detail)
        record.status = response.status
        return response

    def _match(self, method: str, raw_path: str) -> tuple[Route | None, dict[str, str]]:
        path_only: Route | None = None
        for route in self.routes:
            match = route.regex.match(raw_path)
            if match is None:
                continue
            if route.method == method:
                return route, {k: unquote(v) for k, v in match.groupdict().items()}
            path_only = path_only or route
        return (None, {"_method_mismatch": path_only.template}) if path_only else (None, {})

    async def _handle(
        self,
        request: web.Request,
        raw_path: str,
        route: Route | None,
        params: dict[str, str],
        body: bytes,
    ) -> web.StreamResponse:
        faulted = await self._apply_fault(request, raw_path)
        if faulted is not None:
            return faulted
        if raw_path == TOKEN_PATH and request.method == "POST":
            return self._oauth_token(request, body)
        if raw_path == REVOKE_PATH and request.method == "POST":
            return self._oauth_revoke(request, body)
        if route is None:
            if "_method_mismatch" in params:
                return self._error(405, "METHOD_NOT_ALLOWED", f"{request.method} is not supported here.")
            return self._error(404, "RESOURCE_NOT_FOUND", f"Cannot find resource {raw_path}.")
        denied = self._authenticate(request, raw_path)
        if denied is not None:
            return denied
        version_or_error = self._negotiate(request, route)
        if isinstance(version_or_error, web.Response):
            return version_or_error
        for name, pattern in route.path_patterns.items():
            value = params.get(name, "")
            if pattern is not None and not pattern.search(value):
                return self._invalid_param(name, value, pattern.pattern)
        query = request.rel_url.query
        problem = self._check_query(route, query)
        if problem is not None:
            return problem
        handler = getattr(self, f"_op_{route.operation_id}")
        status, payload = handler(params, query)
        return self._ok(status, payload, version_or_error)

    async def _apply_fault(self, request: web.Request, raw_path: str) -> web.StreamResponse | None:
        for queue in self._faults:
            if queue.faults and queue.method in ("*", request.method) and queue.path.search(raw_path):
                fault = queue.faults.pop(0)
                break
        else:
            return None
        if fault.kind in ("lose_response", "slow_response"):
            self._after_faults[id(request)] = fault  # applied by _dispatch once the request was handled
            return None
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            return None
        if fault.kind == "hold":
            assert fault.hold is not None
            await fault.hold._enter()
            return None
        if fault.kind == "status":
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if fault.status == 429:
                headers.update({"RateLimit-Limit": str(self.rate_limit_capacity), "RateLimit-Remaining": "0"})
            code = fault.error_code or _default_code(fault.status)
            detail = fault.detail or f"Injected {fault.status} by FakeAtlas."
            return self._error(fault.status, code, detail, headers=headers)
        if fault.kind == "html":
            page = f"<html><head><title>{fault.status}</title></head><body><h1>{fault.status}</h1></body></html>"
            return web.Response(status=fault.status, text=page, content_type="text/html")
        if fault.kind == "truncated_json":
            return web.Response(
                status=fault.status,
                body=b'{"results": [{"id": "5f1a',
                headers={"Content-Type": "application/vnd.atlas.2023-01-01+json"},
            )
        if fault.kind == "reset":
            _abort(request)
            return web.Response(status=500)
        raise ValueError(f"unknown fault kind {fault.kind!r}")

    # -- responses ----------------------------------------------------------------------------

    def _rate_headers(self) -> dict[str, str]:
        minute = int(self.now() // 60)
        current, used = self._window
        used = used + 1 if current == minute else 1
        self._window = (minute, used)
        return {
            "RateLimit-Limit": str(self.rate_limit_capacity),
            "RateLimit-Remaining": str(max(0, self.rate_limit_capacity - used)),
        }

    def _ok(self, status: int, payload: Any, version: str) -> web.Response:
        headers = self._rate_headers()
        if status == 204:
            return web.Response(status=204, headers=headers)
        headers["Content-Type"] = f"application/vnd.atlas.{version}+json"
        return web.Response(status=status, body=json.dumps(payload).encode(), headers=headers)

    def _error(
        self,
        status: int,
        error_code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        fields: list[dict[str, str]] | None = None,
        parameters: list[Any] | None = None,
    ) -> web.Response:
        body: dict[str, Any] = {
            "error": status,
            "errorCode": error_code,
            "detail": detail,
            "reason": _REASONS.get(status, "Error"),
            "parameters": parameters or [],
        }
        if fields is not None:
            body["badRequestDetail"] = {"fields": fields}
        return web.Response(
            status=status, body=json.dumps(body).encode(), content_type="application/json", headers=headers
        )

    def _oauth_error(self, status: int, error: str, description: str) -> web.Response:
        body = {"error": error, "error_description": description}
        return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")

    def _invalid_param(self, name: str, value: str, pattern: str) -> web.Response:
        return self._error(
            400,
            "INVALID_PATH_PARAMETER",
            f"Invalid path parameter {name}.",
            fields=[{"field": name, "description": f"must match {pattern}"}],
            parameters=[name, value[:64]],
        )

    # -- auth ---------------------------------------------------------------------------------

    def _basic_credentials(self, request: web.Request) -> tuple[str, str] | None:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            return None
        return user, password

    def _oauth_client(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        creds = self._basic_credentials(request)
        account = self.service_accounts.get(creds[0]) if creds else None
        if creds is None or account is None or not hmac.compare_digest(account["secret"], creds[1]):
            return None, self._oauth_error(401, "invalid_client", "Invalid client credentials.")
        if not request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return None, self._oauth_error(400, "invalid_request", "Expected a form-encoded body.")
        return creds[0], None

    def _oauth_token(self, request: web.Request, body: bytes) -> web.Response:
        client_id, problem = self._oauth_client(request)
        if problem is not None or client_id is None:
            return problem or self._oauth_error(401, "invalid_client", "Invalid client credentials.")
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return self._oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported.")
        if self.live_tokens(client_id) >= self.max_tokens:
            return self._oauth_error(
                403, "access_denied", f"Access Token limit reached ({self.max_tokens} active tokens)."
            )
        token = f"fake_at_{secrets.token_urlsafe(24)}"
        self.tokens[token] = {
            "clientId": client_id,
            "expiresAt": self.now() + self.token_ttl,
            "revoked": False,
        }
        payload = {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}
        return web.Response(body=json.dumps(payload).encode(), content_type="application/json")

    def _oauth_revoke(self, request: web.Request, body: bytes) -> web.Response:
        client_id, problem = self._oauth_client(request)
        if problem is not None or client_id is None:
            return problem or self._oauth_error(401, "invalid_client", "Invalid client credentials.")
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        token = form.get("token")
        if not token:
            return self._oauth_error(400, "invalid_request", "Missing token.")
        record = self.tokens.get(token)
        if record is not None and record["clientId"] == client_id:
            record["revoked"] = True
        return web.Response(status=200)

    def _authenticate(self, request: web.Request, raw_path: str) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            record = self.tokens.get(value.strip())
            if record is not None and not record["revoked"] and record["expiresAt"] > self.now():
                return None
            return self._error(401, "UNAUTHORIZED", "Invalid or expired access token.")
        if scheme == "digest":
            return self._check_digest(request, value)
        return self._digest_challenge(stale=False)

    def _digest_challenge(self, *, stale: bool) -> web.Response:
        nonce = secrets.token_hex(16)
        now = self.now()
        self._nonces[nonce] = now
        if len(self._nonces) > 10_000:
            self._nonces = {n: t for n, t in self._nonces.items() if now - t < self.nonce_ttl}
        challenge = (
            f'Digest realm="{DIGEST_REALM}", domain="", nonce="{nonce}", algorithm=MD5, '
            f'qop="auth", stale={"true" if stale else "false"}'
        )
        response = self._error(401, "UNAUTHORIZED", "You are not authorized for this resource.")
        response.headers["WWW-Authenticate"] = challenge
        return response

    def _check_digest(self, request: web.Request, value: str) -> web.Response | None:
        fields = urllib.request.parse_keqv_list(urllib.request.parse_http_list(value))
        username, nonce = fields.get("username", ""), fields.get("nonce", "")
        password = self.api_keys.get(username)
        issued = self._nonces.get(nonce)
        if password is None or fields.get("realm") != DIGEST_REALM:
            return self._digest_challenge(stale=False)
        if issued is None or self.now() - issued > self.nonce_ttl:
            return self._digest_challenge(stale=True)
        if fields.get("uri") != request.rel_url.raw_path_qs:
            return self._digest_challenge(stale=False)
        ha1 = _md5(f"{username}:{DIGEST_REALM}:{password}")
        ha2 = _md5(f"{request.method}:{fields.get('uri')}")
        if fields.get("qop") == "auth":
            expected = _md5(f"{ha1}:{nonce}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
        else:
            expected = _md5(f"{ha1}:{nonce}:{ha2}")
        if not hmac.compare_digest(expected, fields.get("response", "")):
            return self._digest_challenge(stale=False)
        return None

    # -- versions and query -------------------------------------------------------------------

    def _negotiate(self, request: web.Request, route: Route) -> str | web.Response:
        requested = _VERSION_RE.findall(request.headers.get("Accept", ""))
        listed = [v for v in requested if v in route.versions]
        if not listed:
            return self._error(406, "INVALID_VERSION_DATE", "Invalid accept header or version date.")
        version = listed[0]
        sunset = route.versions[version]
        if sunset is not None and sunset <= self.today:
            return self._error(410, "VERSION_GONE", f"API version {version} was sunset on {sunset}.")
        newest = max(v for v, s in route.versions.items() if s is None or s > self.today)
        if version != newest:
            return self._error(
                406,
                "INVALID_VERSION_DATE",
                f"FakeAtlas does not implement version {version} of this resource.",
            )
        return version

    def _check_query(self, route: Route, query: Any) -> web.Response | None:
        for name in query:
            schema = route.query.get(name)
            if schema is None:
                continue
            for raw in query.getall(name):
                problem = _query_problem(schema, raw)
                if problem:
                    return self._error(
                        400,
                        "INVALID_QUERY_PARAMETER",
                        f"Invalid query parameter {name}: {problem}.",
                        fields=[{"field": name, "description": problem}],
                    )
        return None

    # -- operations: reads --------------------------------------------------------------------

    def _page(self, items: list[Any], query: Any) -> tuple[int, dict[str, Any]]:
        per_page = int(query.get("itemsPerPage", 100))
        page_num = int(query.get("pageNum", 1))
        start = (page_num - 1) * per_page
        payload: dict[str, Any] = {
            "links": [{"href": f"{self.base_url or ''}", "rel": "self"}],
            "results": items[start : start + per_page],
        }
        if query.get("includeCount", "true") != "false":
            payload["totalCount"] = len(items)
        return 200, payload

    def _org(self, org_id: str) -> dict[str, Any]:
        org = self.orgs.get(org_id)
        if org is None:
            raise _NotFound("ORG_NOT_FOUND", f"No organization with ID {org_id} exists.")
        return org

    def _federation(self, federation_id: str) -> dict[str, Any]:
        federation = self.federations.get(federation_id)
        if federation is None:
            raise _NotFound("FEDERATION_SETTINGS_NOT_FOUND", f"Federation {federation_id} not found.")
        return federation

    def _idp(self, federation_id: str, idp_id: str) -> dict[str, Any]:
        self._federation(federation_id)
        entry = self.idps.get(idp_id)
        if entry is None or entry["federationId"] != federation_id:
            raise _NotFound("IDENTITY_PROVIDER_NOT_FOUND", f"Identity provider {idp_id} not found.")
        return entry

    def _group(self, group_id: str) -> dict[str, Any]:
        project = self.projects.get(group_id)
        if project is None:
            raise _NotFound("GROUP_NOT_FOUND", f"No group with ID {group_id} exists.")
        return project

    def _cluster(self, group_id: str, name: str) -> dict[str, Any]:
        self._group(group_id)
        cluster = self.clusters.get((group_id, name))
        if cluster is None:
            raise _NotFound("CLUSTER_NOT_FOUND", f"No cluster named {name} exists in group {group_id}.")
        return cluster

    def _associated(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        idp = entry["idp"]
        configs = self.federations[entry["federationId"]]["orgConfigs"].values()
        return [
            c
            for c in configs
            if c["identityProviderId"] == idp["oktaIdpId"] or idp["id"] in c["dataAccessIdentityProviderIds"]
        ]

    def _idp_view(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry["idp"], "associatedOrgs": self._associated(entry)}

    def _op_listOrgs(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        name = query.get("name", "").lower()
        return self._page([o for o in self.orgs.values() if o["name"].lower().startswith(name)], query)

    def _op_getOrgFederationSettings(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        org_id = params["orgId"]
        self._org(org_id)
        for federation in self.federations.values():
            config = federation["orgConfigs"].get(org_id)
            if config is not None:
                view: dict[str, Any] = {
                    "id": federation["id"],
                    "federatedDomains": federation["federatedDomains"],
                    "hasRoleMappings": any(c["roleMappings"] for c in federation["orgConfigs"].values()),
                    "identityProviderStatus": "ACTIVE" if config["identityProviderId"] else "INACTIVE",
                }
                if config["identityProviderId"]:
                    view["identityProviderId"] = config["identityProviderId"]
                return 200, view
        raise _NotFound("FEDERATION_SETTINGS_NOT_FOUND", f"Organization {org_id} is not in a federation.")

    def _op_listFederationSettingConnectedOrgConfigs(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        federation = self._federation(params["federationSettingsId"])
        return self._page(list(federation["orgConfigs"].values()), query)

    def _op_getFederationSettingConnectedOrgConfig(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        federation = self._federation(params["federationSettingsId"])
        config = federation["orgConfigs"].get(params["orgId"])
        if config is None:
            raise _NotFound("RESOURCE_NOT_FOUND", f"Organization {params['orgId']} is not connected.")
        return 200, config

    def _op_listFederationSettingIdentityProviders(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        federation_id = params["federationSettingsId"]
        self._federation(federation_id)
        protocols = set(query.getall("protocol", ["SAML"]))
        types = set(query.getall("idpType", ["WORKFORCE"]))
        items = [
            self._idp_view(e)
            for e in self.idps.values()
            if e["federationId"] == federation_id and e["idp"]["protocol"] in protocols and e["idp"]["idpType"] in types
        ]
        return self._page(items, query)

    def _op_getFederationSettingIdentityProvider(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        return 200, self._idp_view(self._idp(params["federationSettingsId"], params["identityProviderId"]))

    def _op_listGroups(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        return self._page([self._group_view(p) for p in self.projects.values()], query)

    def _op_getGroup(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        return 200, self._group_view(self._group(params["groupId"]))

    def _group_view(self, project: dict[str, Any]) -> dict[str, Any]:
        count = sum(1 for group_id, _ in self.clusters if group_id == project["id"])
        return {**project, "clusterCount": count}

    def _op_listGroupClusters(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        group_id = params["groupId"]
        self._group(group_id)
        return self._page([c for (g, _), c in self.clusters.items() if g == group_id], query)

    def _op_getGroupCluster(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        return 200, self._cluster(params["groupId"], params["clusterName"])

    def _op_listOrgServiceAccounts(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        org_id = params["orgId"]
        self._org(org_id)
        items = [a["view"] for a in self.service_accounts.values() if a["orgId"] == org_id]
        return self._page(items, query)

    def _op_getOrgServiceAccount(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        self._org(params["orgId"])
        account = self.service_accounts.get(params["clientId"])
        if account is None or account["orgId"] != params["orgId"]:
            raise _NotFound("SERVICE_ACCOUNT_NOT_FOUND", f"Service account {params['clientId']} not found.")
        return 200, account["view"]

    # -- operations: writes -------------------------------------------------------------------

    def _op_revokeFederationSettingIdentityProviderJwks(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        entry = self._idp(params["federationSettingsId"], params["identityProviderId"])
        if entry["idp"]["protocol"] != "OIDC":
            raise _ApiFailure(400, "IDENTITY_PROVIDER_NOT_OIDC", "JWKS can only be revoked for OIDC providers.")
        entry["jwksRevocations"] += 1
        entry["idp"]["updatedAt"] = _iso(self._wall())
        return 204, None

    def _op_deleteFederationSettingIdentityProvider(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        entry = self._idp(params["federationSettingsId"], params["identityProviderId"])
        associated = self._associated(entry)
        if len(associated) > 1:
            raise _ApiFailure(
                400,
                "IDENTITY_PROVIDER_ASSOCIATED_WITH_MULTIPLE_ORGS",
                f"Identity provider is associated with {len(associated)} organizations.",
            )
        idp = entry["idp"]
        for config in associated:
            if config["identityProviderId"] == idp["oktaIdpId"]:
                config["identityProviderId"] = None
            if idp["id"] in config["dataAccessIdentityProviderIds"]:
                config["dataAccessIdentityProviderIds"].remove(idp["id"])
        del self.idps[idp["id"]]
        return 204, None

    def _op_deleteFederationSetting(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        federation = self._federation(params["federationSettingsId"])
        if len(federation["orgConfigs"]) > 1:
            raise _ApiFailure(
                400,
                "FEDERATION_HAS_MULTIPLE_CONNECTED_ORGS",
                f"Federation still has {len(federation['orgConfigs'])} connected organizations.",
            )
        for idp_id in [i for i, e in self.idps.items() if e["federationId"] == federation["id"]]:
            del self.idps[idp_id]
        del self.federations[federation["id"]]
        return 204, None

    def _op_revokeGroupClusterMongoDbEmployeeAccess(self, params: dict[str, str], query: Any) -> tuple[int, Any]:
        cluster = self._cluster(params["groupId"], params["clusterName"])
        if "mongoDBEmployeeAccessGrant" not in cluster:
            raise _ApiFailure(
                409,
                "NO_ACTIVE_EMPLOYEE_ACCESS_GRANT",
                "The cluster has no active MongoDB employee access grant.",
            )
        del cluster["mongoDBEmployeeAccessGrant"]
        return 204, None

    # -- HTTP control API ---------------------------------------------------------------------

    async def _control(self, request: web.Request, raw_path: str) -> web.Response:
        """``/_fake/`` endpoints:

        GET  requests | counts | state        POST reset {"seed": "demo"?} -> seed summary
        POST seed/demo -> ids                 POST faults {method, path, kind, status, error_code,
        DELETE faults                              detail, retry_after, seconds, times} -> {}
        POST holds {method, path, times} -> {"id"}   GET holds/{id} -> {arrived, released}
        POST holds/{id}/release               POST clock/advance {"seconds"}
        POST tokens/revoke-all                POST service-accounts {clientId?, secret?, orgId?}
        POST api-keys {publicKey?, privateKey?}
        """
        name = raw_path.removeprefix("/_fake/")
        data: dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            data = json.loads(raw) if raw.strip() else {}
        method = request.method
        if method == "GET" and name == "requests":
            return web.json_response([r.to_json() for r in self.requests])
        if method == "GET" and name == "counts":
            return web.json_response(dict(self._counts))
        if method == "GET" and name == "state":
            return web.json_response(self._state_json())
        if method == "POST" and name == "reset":
            self.reset()
            return web.json_response(self.seed_demo() if data.get("seed") == "demo" else {})
        if method == "POST" and name == "seed/demo":
            return web.json_response(self.seed_demo())
        if method == "POST" and name == "faults":
            fault = Fault.from_json(data)
            self.inject(str(data.get("method", "*")), str(data["path"]), fault, times=int(data.get("times", 1)))
            return web.json_response({}, status=201)
        if method == "DELETE" and name == "faults":
            self.clear_faults()
            return web.json_response({})
        if method == "POST" and name == "holds":
            self.hold(str(data.get("method", "*")), str(data["path"]), times=int(data.get("times", 1)))
            return web.json_response({"id": len(self._holds)}, status=201)
        hold_match = re.fullmatch(r"holds/(\d+)(/release)?", name)
        if hold_match and int(hold_match.group(1)) in self._holds:
            hold = self._holds[int(hold_match.group(1))]
            if method == "POST" and hold_match.group(2):
                hold.release()
            return web.json_response({"arrived": hold.arrived, "released": hold.released})
        if method == "POST" and name == "clock/advance":
            self.advance(float(data["seconds"]))
            return web.json_response({})
        if method == "POST" and name == "tokens/revoke-all":
            self.revoke_all_tokens()
            return web.json_response({})
        if method == "POST" and name == "service-accounts":
            client_id, secret = self.add_service_account(
                data.get("clientId"), data.get("secret"), org_id=data.get("orgId")
            )
            return web.json_response({"clientId": client_id, "secret": secret}, status=201)
        if method == "POST" and name == "api-keys":
            public_key, private_key = self.add_api_key(data.get("publicKey"), data.get("privateKey"))
            return web.json_response({"publicKey": public_key, "privateKey": private_key}, status=201)
        return web.json_response({"error": f"unknown control endpoint {method} {name}"}, status=404)

    def _state_json(self) -> dict[str, Any]:
        return {
            "orgs": list(self.orgs.values()),
            "projects": list(self.projects.values()),
            "clusters": list(self.clusters.values()),
            "federations": [{**f, "orgConfigs": list(f["orgConfigs"].values())} for f in self.federations.values()],
            "idps": [{**self._idp_view(e), "jwksRevocations": e["jwksRevocations"]} for e in self.idps.values()],
            "serviceAccounts": [a["view"] for a in self.service_accounts.values()],
        }


# -- helpers ----------------------------------------------------------------------------------------


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0 turns close() into a TCP RST, like a dropped load-balancer connection.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


class _ApiFailure(Exception):
    def __init__(self, status: int, error_code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error_code, self.detail = status, error_code, detail


class _NotFound(_ApiFailure):
    def __init__(self, error_code: str, detail: str) -> None:
        super().__init__(404, error_code, detail)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _oauth_operation(raw_path: str) -> str | None:
    return {TOKEN_PATH: "oauthToken", REVOKE_PATH: "oauthRevoke"}.get(raw_path)


def _default_code(status: int) -> str:
    return {
        400: "VALIDATION_ERROR",
        401: "UNAUTHORIZED",
        403: "FORBIDDEN",
        404: "RESOURCE_NOT_FOUND",
        409: "CONFLICT",
        429: "RATE_LIMITED",
        500: "UNEXPECTED_ERROR",
        502: "BAD_GATEWAY",
        503: "SERVICE_UNAVAILABLE",
        504: "GATEWAY_TIMEOUT",
    }.get(status, "UNEXPECTED_ERROR")


def _query_problem(schema: dict[str, Any], raw: str) -> str | None:
    kind = schema.get("type")
    if kind == "array":
        allowed = (schema.get("items") or {}).get("enum")
        return None if not allowed or raw in allowed else f"must be one of {allowed}"
    if kind == "boolean":
        return None if raw in ("true", "false") else "must be true or false"
    if kind == "integer":
        try:
            value = int(raw)
        except ValueError:
            return "must be an integer"
        if "minimum" in schema and value < schema["minimum"]:
            return f"must be >= {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"must be <= {schema['maximum']}"
    return None


# -- standalone -------------------------------------------------------------------------------------


async def _serve(host: str, port: int, seed: str | None) -> None:
    fake = FakeAtlas()
    summary = fake.seed_demo() if seed == "demo" else {}
    base_url = await fake.start(host=host, port=port)
    print(json.dumps({"baseUrl": base_url, "seed": summary}, indent=2), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake MongoDB Atlas Admin API on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", choices=["demo"], default=None)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.seed))


if __name__ == "__main__":
    main()

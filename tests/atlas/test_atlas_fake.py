"""FakeAtlas itself: the HTTP control API, standalone use, digest edge cases and throughput."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.fakes.fake_atlas import FakeAtlas

ACCEPT_ORGS = {"Accept": "application/vnd.atlas.2023-01-01+json"}


async def _token(raw: httpx.AsyncClient, seed: dict[str, Any]) -> str:
    account = seed["serviceAccount"]
    response = await raw.post(
        "/api/oauth/token", data={"grant_type": "client_credentials"}, auth=(account["clientId"], account["secret"])
    )
    return str(response.json()["access_token"])


async def test_http_control_api(fake: FakeAtlas, seed: dict[str, Any]) -> None:
    assert fake.base_url is not None
    async with httpx.AsyncClient(base_url=fake.base_url) as raw:
        token = await _token(raw, seed)
        headers = {**ACCEPT_ORGS, "Authorization": f"Bearer {token}"}
        created = await raw.post(
            "/_fake/faults",
            json={"method": "GET", "path": "/orgs$", "kind": "status", "status": 503, "retry_after": 2},
        )
        assert created.status_code == 201
        failed = await raw.get("/api/atlas/v2/orgs", headers=headers)
        assert failed.status_code == 503
        assert failed.headers["Retry-After"] == "2"
        assert (await raw.get("/api/atlas/v2/orgs", headers=headers)).status_code == 200

        counts = (await raw.get("/_fake/counts")).json()
        assert counts == {"oauthToken": 1, "listOrgs": 2}
        recorded = (await raw.get("/_fake/requests")).json()
        assert [r["status"] for r in recorded] == [200, 503, 200]
        assert recorded[1]["headers"]["Accept"] == ACCEPT_ORGS["Accept"]

        await raw.post("/_fake/tokens/revoke-all")
        assert (await raw.get("/api/atlas/v2/orgs", headers=headers)).status_code == 401

        reset = (await raw.post("/_fake/reset", json={"seed": "demo"})).json()
        assert reset["groupId"]
        assert (await raw.get("/_fake/requests")).json() == []
        state = (await raw.get("/_fake/state")).json()
        assert len(state["idps"]) == 3


async def test_http_hold_until_released(fake: FakeAtlas, seed: dict[str, Any]) -> None:
    assert fake.base_url is not None
    async with httpx.AsyncClient(base_url=fake.base_url) as raw, httpx.AsyncClient(base_url=fake.base_url) as ctl:
        token = await _token(raw, seed)
        hold_id = (await ctl.post("/_fake/holds", json={"method": "GET", "path": "/orgs$"})).json()["id"]
        pending = asyncio.create_task(
            raw.get("/api/atlas/v2/orgs", headers={**ACCEPT_ORGS, "Authorization": f"Bearer {token}"})
        )
        for _ in range(100):
            if (await ctl.get(f"/_fake/holds/{hold_id}")).json()["arrived"] == 1:
                break
            await asyncio.sleep(0.01)
        assert not pending.done()
        released = (await ctl.post(f"/_fake/holds/{hold_id}/release")).json()
        assert released == {"arrived": 1, "released": True}
        assert (await pending).status_code == 200


async def test_python_hold_until_released(fake: FakeAtlas, seed: dict[str, Any]) -> None:
    assert fake.base_url is not None
    hold = fake.hold("DELETE", r"/jwks$")
    async with httpx.AsyncClient(base_url=fake.base_url) as raw:
        token = await _token(raw, seed)
        fed, idp = seed["federationSettingsId"], seed["idps"]["oidc"]
        path = f"/api/atlas/v2/federationSettings/{fed}/identityProviders/{idp}/jwks"
        pending = asyncio.create_task(
            raw.delete(
                path, headers={"Accept": "application/vnd.atlas.2023-11-15+json", "Authorization": f"Bearer {token}"}
            )
        )
        await hold.wait_arrived()
        assert fake.idps[seed["idps"]["oidc"]]["jwksRevocations"] == 0
        hold.release()
        assert (await pending).status_code == 204
    assert fake.idps[seed["idps"]["oidc"]]["jwksRevocations"] == 1


async def test_stale_digest_nonce_is_rechallenged(fake: FakeAtlas, seed: dict[str, Any]) -> None:
    assert fake.base_url is not None
    keys = seed["apiKey"]
    async with httpx.AsyncClient(
        base_url=fake.base_url, auth=httpx.DigestAuth(keys["publicKey"], keys["privateKey"])
    ) as raw:
        assert (await raw.get("/api/atlas/v2/orgs", headers=ACCEPT_ORGS)).status_code == 200
        fake.advance(fake.nonce_ttl + 1)
        response = await raw.get("/api/atlas/v2/orgs", headers=ACCEPT_ORGS)
    assert response.status_code == 200  # httpx answers the stale=true challenge with a fresh nonce
    stale = [r for r in fake.requests if r.status == 401]
    assert len(stale) == 2


async def test_expired_token_gets_401(fake: FakeAtlas, seed: dict[str, Any]) -> None:
    assert fake.base_url is not None
    async with httpx.AsyncClient(base_url=fake.base_url) as raw:
        token = await _token(raw, seed)
        fake.advance(fake.token_ttl + 1)
        response = await raw.get("/api/atlas/v2/orgs", headers={**ACCEPT_ORGS, "Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["errorCode"] == "UNAUTHORIZED"


REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_standalone_module_serves() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.fake_atlas",
        "--port",
        "0",
        "--seed",
        "demo",
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        lines = []
        async with asyncio.timeout(10):
            while not lines or lines[-1] != "}\n":
                lines.append((await process.stdout.readline()).decode())
        info = json.loads("".join(lines))
        async with httpx.AsyncClient(base_url=info["baseUrl"]) as raw:
            counts = await raw.get("/_fake/counts")
        assert counts.status_code == 200
        assert info["seed"]["serviceAccount"]["clientId"].startswith("mdb_sa_id_")
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.slow
async def test_fake_serves_over_a_thousand_requests_per_second(fake: FakeAtlas, seed: dict[str, Any]) -> None:
    """aiohttp's client as the load generator: httpx itself costs more per request than the fake."""
    assert fake.base_url is not None
    async with httpx.AsyncClient(base_url=fake.base_url) as raw:
        token = await _token(raw, seed)
    headers = {"Accept": "application/vnd.atlas.2024-08-05+json", "Authorization": f"Bearer {token}"}
    url = f"{fake.base_url}/api/atlas/v2/groups/{seed['groupId']}/clusters/Cluster0"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20)) as session:

        async def worker(n: int) -> None:
            for _ in range(n):
                async with session.get(url, headers=headers) as response:
                    assert response.status == 200
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker(100) for _ in range(20)))
        elapsed = time.perf_counter() - started
    # Load generator and server share one event loop (and core) here, so this is a lower bound.
    assert 2000 / elapsed > 1000, f"{2000 / elapsed:.0f} req/s"

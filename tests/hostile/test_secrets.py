"""Secret hygiene: run every flow, then look for every secret everywhere it could have leaked.

Secrets: the Slack bot token, the signing secret, the sealing key, the Atlas service account's
client secret, an Atlas API private key (a second bot on Digest auth), and the access tokens
typed into revoke-token forms. Places: every log record at DEBUG from every logger (including
httpx, httpcore, slack_sdk, slack_bolt, aiohttp, aiosqlite, asyncpg and SQLAlchemy) with its
exception and traceback, everything the fake Slack received (but the Authorization header that
must carry the bot token), every row of every table, ``GET /metrics``, and the repr of every
object that holds a secret.
"""

from __future__ import annotations

import logging
import secrets

import pytest

from bot.atlas import AtlasSettings
from bot.requests import RequestState
from bot.settings import Settings
from tests.hostile.harness import (
    ALICE,
    BOB,
    DAVE,
    HostileHarness,
    capture_everything,
    hostile_bot,
    leaks,
    seed_cluster,
    seed_oidc_idp,
)
from tests.hostile.tally import fault
from tests.slack_requests import sign

SEALING_KEY = "sealing-key-" + secrets.token_hex(16)
# These tests look for leaks, not for timeouts. One CI run failed in the first submission, while
# the bot read from Atlas under the hostile harness's 0.5 s timeout with every logger at DEBUG; it
# did not fail again in 30 runs here, loaded or not, so the timeout is only the likely cause.
GENEROUS_ATLAS_TIMEOUT = 5.0
_FORMATTER = logging.Formatter("%(levelname)s %(name)s %(message)s")


def everything_logged(records: list[logging.LogRecord]) -> str:
    """Each record as a handler would write it, exception and traceback included, plus its raw args."""
    return "\n".join(f"{_FORMATTER.format(r)} {r.args!r}" for r in records)


async def everywhere(h: HostileHarness, records: list[logging.LogRecord]) -> dict[str, str]:
    return {
        "logs": everything_logged(records),
        "slack": h.slack_traffic(),
        "database": await h.table_dump(),
        "metrics": await h.metrics_text(),
        "reprs": " ".join(
            repr(o) for o in (h.bot.settings, h.bot.atlas, h.bot.atlas._auth, h.bot.service._sealer, h.bot.slack)
        ),
    }


async def run_every_flow(h: HostileHarness) -> list[str]:
    """All five actions, approvals (one needing two people), a rejection, a withdrawal, Atlas
    failures and a token pasted where it must not be. Returns the revoke-token tokens used."""
    fed, idp = seed_oidc_idp(h)
    jwks = await h.request(f"revoke-jwks {fed} {idp}")
    await h.click(jwks, user=BOB)
    await h.wait_thread(jwks, "Done")

    org = h.fake_atlas.add_org("Solo")["id"]
    solo_fed = h.fake_atlas.add_federation([org])["id"]
    solo_idp = h.fake_atlas.add_idp(solo_fed, org_ids=[org])["id"]
    rejected = await h.request(f"delete-idp {solo_fed} {solo_idp}")
    await h.click(rejected, user=BOB, action="atlas_reject")
    await h.wait_thread(rejected, "rejected")
    deleted = await h.request(f"delete-idp {solo_fed} {solo_idp}")
    await h.click(deleted, user=BOB)
    await h.wait_thread(deleted, "Done")

    federation = await h.request(f"delete-federation {solo_fed}")
    await h.click(federation, user=BOB)
    await h.click(federation, user=DAVE)
    await h.wait_thread(federation, "Done")

    group = seed_cluster(h, "payments-0")
    h.atlas_fault("status", "POST", r":revokeMongoDBEmployeeAccess$", status=500)
    employee = await h.request(f"revoke-employee-access {group} payments-0")
    await h.click(employee, user=BOB)
    await h.wait_state(employee, "unknown")

    tokens = [await h.issue_atlas_token() for _ in range(3)]
    revoked = await h.request("revoke-token default", secret=tokens[0])
    await h.click(revoked, user=BOB)
    await h.wait_thread(revoked, "Done")
    h.atlas_fault("html", "POST", r"^/api/oauth/revoke$", status=500)
    failing = await h.request("revoke-token default", secret=tokens[1])
    await h.click(failing, user=BOB)
    await h.wait_state(failing, "failed", "unknown")
    withdrawn = await h.request("revoke-token default", secret=tokens[2])
    await h.click(withdrawn, user=ALICE, action="atlas_reject")
    await h.wait_thread(withdrawn, "withdrew")

    fault("secret hygiene: a token pasted into the command line")
    pasted = await h.command(f"revoke-token default {tokens[2]}")
    assert tokens[2] not in pasted.text
    fault("secret hygiene: a request signed with the bot token instead of the signing secret")
    body = b"command=/atlas&text=whoami"
    forged = await h.post(body, sign(body, h.environ["SLACK_BOT_TOKEN"]))
    assert forged.status_code == 401
    await h.bot.sweeper.sweep()
    await h.quiet()
    assert await h.state_of(revoked) == "succeeded"
    return tokens


async def test_no_secret_leaks_from_any_flow(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    capture_everything(caplog)
    async with hostile_bot(
        database_url, extra_env={"ATLAS_CHATOPS_SECRET_KEY": SEALING_KEY}, atlas_timeout=GENEROUS_ATLAS_TIMEOUT
    ) as h:
        tokens = await run_every_flow(h)
        # The revoked token is dead at Atlas, the other two are not (one failed, one withdrawn).
        assert h.fake_atlas.tokens[tokens[0]]["revoked"] and not h.fake_atlas.tokens[tokens[2]]["revoked"]
        # Only the sealed copy ever existed, and it is wiped once each request ended.
        assert all(r.sealed_secret is None for r in await h.bot.store.list_requests(states=list(RequestState)))
        places = await everywhere(h, caplog.records)
        secrets_ = [*h.secrets, SEALING_KEY, *tokens]
        assert len(caplog.records) > 1000  # DEBUG really was captured, third parties included
        assert {r.name.split(".")[0] for r in caplog.records} >= {"httpx", "httpcore", "slack_sdk", "sqlalchemy", "bot"}
        for place, text in places.items():
            assert leaks(text, secrets_) == [], f"a secret leaked into {place}"
        # The checks can fail: the secrets are where they belong (the Authorization header, the fake).
        auth_headers = " ".join(c.headers.get("authorization", "") for c in h.fake_slack.calls)
        assert leaks(auth_headers, [h.environ["SLACK_BOT_TOKEN"]]) != []
        revoke_bodies = " ".join(r.body.decode() for r in h.fake_atlas.requests if r.path == "/api/oauth/revoke")
        assert leaks(revoke_bodies, tokens[:2]) != []


async def test_an_api_private_key_never_leaks_either(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    capture_everything(caplog)
    public_key, private_key = "pubkey01", secrets.token_hex(16)
    env = {
        "MONGODB_ATLAS_CLIENT_ID": "",
        "MONGODB_ATLAS_CLIENT_SECRET": "",
        "MONGODB_ATLAS_PUBLIC_API_KEY": public_key,
        "MONGODB_ATLAS_PRIVATE_API_KEY": private_key,
    }
    async with hostile_bot(database_url, extra_env=env, atlas_timeout=GENEROUS_ATLAS_TIMEOUT) as h:
        h.fake_atlas.add_api_key(public_key, private_key)
        assert h.bot.atlas._auth.__class__.__name__ == "DigestAuth"
        fed, idp = seed_oidc_idp(h)
        ok = await h.request(f"revoke-jwks {fed} {idp}")
        await h.click(ok, user=BOB)
        await h.wait_thread(ok, "Done")
        h.fake_atlas.api_keys[public_key] = "rotated"  # the key is refused from now on
        fault("atlas fault: Digest credentials refused")
        refused = await h.request(f"revoke-jwks {fed} {idp}")
        await h.click(refused, user=BOB)
        await h.wait_state(refused, "failed")
        await h.quiet()
        places = await everywhere(h, caplog.records)
        places["settings"] = repr(AtlasSettings.model_validate(env)) + repr(Settings.from_environ(h.environ))
        for place, text in places.items():
            assert leaks(text, [private_key, *h.secrets]) == [], f"a secret leaked into {place}"
        # The check can fail: the key is where it belongs (inside the Digest response the fake verified).
        assert h.fake_atlas.count("revokeJwks") >= 2

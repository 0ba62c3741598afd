"""Atlas failing in every documented way while an approved action executes.

Each scenario makes a request, injects one kind of fault at the fake Atlas, approves, and checks:
the request ends in the expected terminal state; the thread says what failed, whether it is safe
to retry, and Atlas's errorCode; the approval message lost its buttons; the fake Atlas received the
expected number of calls and the action took effect at most as often as the scenario allows; and a
further click and a sweep change nothing (nothing runs twice).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.hostile.harness import BOB, DAVE, FAST_RETRY, HostileHarness, Requested, seed_cluster, seed_oidc_idp
from tests.hostile.tally import fault

JWKS = r"/jwks$"
IDP = r"/identityProviders/[0-9a-f]{24}$"
EMPLOYEE = r":revokeMongoDBEmployeeAccess$"
TOKEN = "/api/oauth/token"
REVOKE = "/api/oauth/revoke"


@dataclass(frozen=True)
class Target:
    command: str
    operation: str  # the fake's operation name for the write
    effects: Callable[[HostileHarness], int]  # how many times the write took effect


def jwks_target(h: HostileHarness) -> Target:
    fed, idp = seed_oidc_idp(h)
    return Target(f"revoke-jwks {fed} {idp}", "revokeJwks", lambda h: int(h.fake_atlas.idps[idp]["jwksRevocations"]))


def idp_target(h: HostileHarness) -> Target:
    fed, idp = seed_oidc_idp(h)
    return Target(f"delete-idp {fed} {idp}", "deleteIdp", lambda h: int(idp not in h.fake_atlas.idps))


def employee_target(h: HostileHarness) -> Target:
    group = seed_cluster(h, "payments-0")

    def effects(h: HostileHarness) -> int:
        return int("mongoDBEmployeeAccessGrant" not in h.fake_atlas.clusters[(group, "payments-0")])

    return Target(f"revoke-employee-access {group} payments-0", "revokeEmployeeAccess", effects)


def token_target(h: HostileHarness) -> Target:
    return Target("revoke-token default", "oauthRevoke", lambda h: 0)


@dataclass(frozen=True)
class Scenario:
    name: str
    target: Callable[[HostileHarness], Target]
    inject: Callable[[HostileHarness], None]
    state: str
    says: tuple[str, ...]
    calls: int  # requests the write operation received at the fake
    effects: int


def _rotate_secret(h: HostileHarness) -> None:
    fault("atlas fault: OAuth invalid_client (secret rotated)")
    h.fake_atlas.service_accounts[h.atlas_client_id]["secret"] = "mdb_sa_sk_rotated"
    h.fake_atlas.revoke_all_tokens()


def _token_limit(h: HostileHarness) -> None:
    fault("atlas fault: OAuth access_denied (token limit)")
    h.fake_atlas.max_tokens = 0
    h.fake_atlas.revoke_all_tokens()


SCENARIOS = [
    Scenario(
        "timeout on a write that must not be repeated",
        employee_target,
        lambda h: h.atlas_fault("delay", "POST", EMPLOYEE, seconds=0.8),
        "unknown",
        ("did not answer in time", "may or may not", "Check the target in Atlas"),
        calls=1,
        effects=1,  # Atlas acted after the bot stopped waiting: "may or may not" was the truth
    ),
    Scenario(
        "answer lost after a delete happened: not repeated, read back",
        idp_target,
        lambda h: h.atlas_fault("lose_response", "DELETE", IDP),
        "unknown",
        ("may or may not", "Check the target in Atlas", "Verified: Atlas now shows that the identity provider is gone"),
        calls=1,
        effects=1,
    ),
    Scenario(
        "connection reset before a write that must not be repeated",
        employee_target,
        lambda h: h.atlas_fault("reset_connection", "POST", EMPLOYEE),
        "unknown",
        ("connection to Atlas was lost", "may or may not", "Check the target in Atlas"),
        calls=1,
        effects=0,
    ),
    Scenario(
        "connection reset on a delete: never repeated (a second JWKS revocation logs everyone out again)",
        jwks_target,
        lambda h: h.atlas_fault("reset_connection", "DELETE", JWKS),
        "unknown",
        ("connection to Atlas was lost", "may or may not", "Check the target in Atlas"),
        calls=1,
        effects=0,
    ),
    Scenario(
        "429 storm with Retry-After",
        jwks_target,
        lambda h: h.atlas_fault("rate_limit", "DELETE", JWKS, retry_after=2, times=20),
        "failed",
        ("HTTP 429", "RATE_LIMITED_TOKEN_BUCKET", "safe to request again"),
        calls=FAST_RETRY.max_attempts,
        effects=0,
    ),
    Scenario(
        "429 storm without Retry-After",
        employee_target,
        lambda h: h.atlas_fault("rate_limit", "POST", EMPLOYEE, times=20),
        "failed",
        ("HTTP 429", "RATE_LIMITED_TOKEN_BUCKET", "safe to request again"),
        calls=FAST_RETRY.max_attempts,
        effects=0,
    ),
    Scenario(
        "one 429 with Retry-After, then success",
        employee_target,
        lambda h: h.atlas_fault("rate_limit", "POST", EMPLOYEE, retry_after=1),
        "succeeded",
        ("Done",),
        calls=2,
        effects=1,
    ),
    Scenario(
        "Retry-After longer than the call's deadline",
        jwks_target,
        lambda h: h.atlas_fault("rate_limit", "DELETE", JWKS, retry_after=3600),
        "failed",
        ("HTTP 429", "RATE_LIMITED_TOKEN_BUCKET", "asked it to wait 3600 s"),
        calls=1,
        effects=0,
    ),
    Scenario(
        "500 on a delete: may have acted, so unknown, then read back",
        idp_target,
        lambda h: h.atlas_fault("status", "DELETE", IDP, status=500),
        "unknown",
        ("HTTP 500", "UNEXPECTED_ERROR", "may or may not", "Read back from Atlas: it does not show that"),
        calls=1,
        effects=0,
    ),
    Scenario(
        "500 on a write that must not be repeated",
        employee_target,
        lambda h: h.atlas_fault("status", "POST", EMPLOYEE, status=500),
        "unknown",
        ("HTTP 500", "UNEXPECTED_ERROR", "Check the target in Atlas"),
        calls=1,
        effects=0,
    ),
    Scenario(
        "502 once on a delete: may have acted behind the gateway, so not repeated",
        jwks_target,
        lambda h: h.atlas_fault("status", "DELETE", JWKS, status=502),
        "unknown",
        ("HTTP 502", "may or may not", "Check the target in Atlas"),
        calls=1,
        effects=0,
    ),
    Scenario(
        "503 storm",
        jwks_target,
        lambda h: h.atlas_fault("status", "DELETE", JWKS, status=503, times=20),
        "failed",
        ("HTTP 503", "SERVICE_UNAVAILABLE", "safe"),
        calls=FAST_RETRY.max_attempts,
        effects=0,
    ),
    Scenario(
        "HTML error page (500) on a delete: unknown, then read back",
        idp_target,
        lambda h: h.atlas_fault("html", "DELETE", IDP, status=500),
        "unknown",
        ("HTTP 500", "HTML page", "Read back from Atlas: it does not show that"),
        calls=1,
        effects=0,
    ),
    Scenario(
        "HTML gateway page (502) on a write that must not be repeated",
        employee_target,
        lambda h: h.atlas_fault("html", "POST", EMPLOYEE, status=502),
        "unknown",
        ("HTTP 502", "Check the target in Atlas"),
        calls=1,
        effects=0,
    ),
    Scenario(
        "truncated JSON from the read just before executing",
        jwks_target,
        lambda h: h.atlas_fault("truncated_json", "GET", IDP, times=20),
        "failed",
        ("Could not read the target from Atlas again", "AtlasMalformedResponseError", "safe to request"),
        calls=0,
        effects=0,
    ),
    Scenario(
        "OAuth invalid_client: the service account secret was rotated",
        jwks_target,
        _rotate_secret,
        "failed",
        ("Could not read the target from Atlas again", "invalid_client", "nothing was run"),
        calls=0,
        effects=0,
    ),
    Scenario(
        "OAuth access_denied: 100 live tokens",
        employee_target,
        _token_limit,
        "failed",
        ("Could not read the target from Atlas again", "access_denied", "nothing was run"),
        calls=0,
        effects=0,
    ),
]


async def approve_and_wait(h: HostileHarness, requested: Requested, state: str) -> str:
    await h.click(requested, user=BOB)
    reached = await h.wait_state(requested, state, "succeeded", "failed", "unknown", "expired", timeout=15)
    await h.quiet()
    return reached


async def check(h: HostileHarness, scenario: Scenario) -> None:
    name = scenario.name
    target = scenario.target(h)
    requested = await h.request(target.command)
    calls_before = h.fake_atlas.count(target.operation)
    scenario.inject(h)
    assert await approve_and_wait(h, requested, scenario.state) == scenario.state, name
    result = " ".join(t for t in h.thread(requested) if ":gear:" not in t)
    for fragment in scenario.says:
        assert fragment in result, f"[{name}] {fragment!r} not in the thread: {result}"
    final = json.dumps(h.final_update(requested)["blocks"])
    assert '"type": "actions"' not in final, f"[{name}] buttons must be gone once the request ended"
    await h.atlas_idle()
    assert h.fake_atlas.count(target.operation) - calls_before == scenario.calls, name
    assert target.effects(h) == scenario.effects, name
    assert (await h.audit(requested)).count("executing") == 1, name
    # Nothing runs twice: a late click and a sweep leave it alone.
    await h.click(requested, user=DAVE)
    await h.bot.sweeper.sweep()
    await h.quiet()
    assert await h.state_of(requested) == scenario.state, name
    assert h.fake_atlas.count(target.operation) - calls_before == scenario.calls, name
    assert (await h.audit(requested)).count("executing") == 1, name
    h.fake_atlas.clear_faults()


CREDENTIALS = [s for s in SCENARIOS if s.inject in (_rotate_secret, _token_limit)]


async def test_atlas_faults_end_in_a_terminal_state_with_a_clear_message(hostile: HostileHarness) -> None:
    # One bot for all of them (each with its own target): a fault must not leak into the next request.
    for scenario in SCENARIOS:
        if scenario not in CREDENTIALS:
            await check(hostile, scenario)


@pytest.mark.parametrize("scenario", CREDENTIALS, ids=lambda s: s.name)
async def test_credential_faults_end_in_a_terminal_state_with_a_clear_message(
    hostile: HostileHarness, scenario: Scenario
) -> None:
    await check(hostile, scenario)


async def test_retry_after_is_honoured_and_backoff_is_bounded(hostile: HostileHarness) -> None:
    h = hostile
    with_header = await h.request(jwks_target(h).command)
    h.atlas_fault("rate_limit", "DELETE", JWKS, retry_after=2, times=20)
    await approve_and_wait(h, with_header, "failed")
    assert h.sleeps.delays == [2.0] * (FAST_RETRY.max_attempts - 1)
    h.sleeps.delays.clear()
    h.fake_atlas.clear_faults()
    without = await h.request(jwks_target(h).command)
    h.atlas_fault("rate_limit", "DELETE", JWKS, times=20)
    await approve_and_wait(h, without, "failed")
    assert len(h.sleeps.delays) == FAST_RETRY.max_attempts - 1
    assert all(0 <= d <= FAST_RETRY.max_delay for d in h.sleeps.delays), h.sleeps.delays


async def test_a_token_that_expires_mid_flight_is_refreshed_once_and_the_write_runs_once(
    hostile: HostileHarness,
) -> None:
    h = hostile
    target = jwks_target(h)
    requested = await h.request(target.command)
    hold = h.fake_atlas.hold("DELETE", JWKS)
    fault("atlas fault: 401 mid-flight, then a refreshed token")
    tokens_before = h.fake_atlas.count("oauthToken")
    await h.click(requested, user=BOB)
    await hold.wait_arrived()
    h.fake_atlas.revoke_all_tokens()  # the token the write carries is now dead
    hold.release()
    assert await h.wait_state(requested, "succeeded", "failed", "unknown") == "succeeded"
    await h.quiet()
    statuses = [r.status for r in h.fake_atlas.requests if r.operation and r.path.endswith("/jwks")]
    assert statuses == [401, 204]
    assert target.effects(h) == 1
    assert h.fake_atlas.count("oauthToken") == tokens_before + 1


async def test_oauth_invalid_client_on_the_revoke_call_itself(hostile: HostileHarness) -> None:
    h = hostile
    leaked = await h.issue_atlas_token()
    requested = await h.request("revoke-token default", secret=leaked)
    _rotate_secret(h)
    assert await approve_and_wait(h, requested, "failed") == "failed"
    thread = " ".join(h.thread(requested))
    assert "HTTP 401" in thread and "invalid_client" in thread and "credentials were refused" in thread
    assert h.fake_atlas.count("oauthRevoke") == 1
    assert leaked not in thread

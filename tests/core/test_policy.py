"""The policy: validated at start-up with errors naming the key, decided by pure functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.errors import ConfigurationError
from bot.policy import Actor, decide_approve, decide_request, load_policy, parse_policy, roles_of

KNOWN = ["revoke-jwks", "delete-idp", "delete-federation", "revoke-employee-access", "revoke-token"]
TEAM = "T0APP"

POLICY_DATA: dict[str, Any] = {
    "roles": {"oncall": ["U0ONCALL1", "@dba-oncall"], "approver": ["@atlas-approvers", "U0BOSS"]},
    "actions": {
        "revoke-jwks": {"request": ["oncall"], "approve": ["approver"], "approvals": 1},
        "delete-federation": {
            "request": ["oncall"],
            "approve": ["approver"],
            "approvals": 2,
            "channels": ["C0INCIDENT"],
        },
    },
    "approval_ttl_minutes": 30,
    "service_accounts": {
        "default": {
            "client_id_env": "MONGODB_ATLAS_CLIENT_ID",
            "client_secret_env": "MONGODB_ATLAS_CLIENT_SECRET",
        }
    },
}
POLICY = parse_policy(POLICY_DATA, known_actions=KNOWN)


def actor(user: str, *groups: str, team: str = TEAM) -> Actor:
    return Actor(user_id=user, team_id=team, group_handles=frozenset(groups))


def test_roles_from_ids_and_groups() -> None:
    assert roles_of(POLICY, actor("U0ONCALL1")) == ["oncall"]
    assert roles_of(POLICY, actor("U0OTHER", "dba-oncall", "atlas-approvers")) == ["oncall", "approver"]
    assert roles_of(POLICY, actor("U0NOBODY")) == []


def test_request_allowed_for_oncall() -> None:
    assert decide_request(POLICY, actor("U0ONCALL1"), "revoke-jwks", "C0ANY", app_team_id=TEAM)


def test_request_default_deny_for_absent_action() -> None:
    decision = decide_request(POLICY, actor("U0ONCALL1"), "delete-idp", "C0ANY", app_team_id=TEAM)
    assert not decision
    assert "not enabled" in decision.reason


def test_request_denied_without_role() -> None:
    decision = decide_request(POLICY, actor("U0NOBODY"), "revoke-jwks", "C0ANY", app_team_id=TEAM)
    assert not decision and "oncall" in decision.reason


def test_request_denied_in_wrong_channel() -> None:
    decision = decide_request(POLICY, actor("U0ONCALL1"), "delete-federation", "C0RANDOM", app_team_id=TEAM)
    assert not decision and "<#C0INCIDENT>" in decision.reason
    assert decide_request(POLICY, actor("U0ONCALL1"), "delete-federation", "C0INCIDENT", app_team_id=TEAM)


def test_slack_connect_guest_can_never_request_or_approve() -> None:
    guest = actor("U0ONCALL1", "atlas-approvers", team="T0OTHERCO")
    assert not decide_request(POLICY, guest, "revoke-jwks", "C0ANY", app_team_id=TEAM)
    decision = decide_approve(
        POLICY,
        guest,
        action="revoke-jwks",
        requester_id="U0X",
        request_channel_id="C0ANY",
        click_channel_id="C0ANY",
        app_team_id=TEAM,
    )
    assert not decision and "Slack Connect" in decision.reason


def test_approve_rules() -> None:
    kwargs = {"action": "revoke-jwks", "request_channel_id": "C0A", "app_team_id": TEAM}
    boss = actor("U0BOSS")
    assert decide_approve(POLICY, boss, requester_id="U0ONCALL1", click_channel_id="C0A", **kwargs)
    own = decide_approve(POLICY, boss, requester_id="U0BOSS", click_channel_id="C0A", **kwargs)
    assert not own and "own request" in own.reason
    elsewhere = decide_approve(POLICY, boss, requester_id="U0ONCALL1", click_channel_id="C0B", **kwargs)
    assert not elsewhere and "another channel" in elsewhere.reason
    no_role = decide_approve(POLICY, actor("U0ONCALL1"), requester_id="U0X", click_channel_id="C0A", **kwargs)
    assert not no_role and "approver" in no_role.reason


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["actions"]["revoke-jwks"].update(approvals=0), "actions.revoke-jwks.approvals"),
        (lambda d: d["actions"]["revoke-jwks"].update(request=["ghost"]), "role 'ghost' is not defined"),
        (
            lambda d: d["actions"].update({"drop-cluster": {"request": ["oncall"], "approve": ["approver"]}}),
            "actions.drop-cluster: unknown action",
        ),
        (lambda d: d["roles"].update(oncall=["not a user"]), "roles.oncall.0"),
        (lambda d: d["actions"]["revoke-jwks"].update(aprovals=2), "actions.revoke-jwks.aprovals"),
        (lambda d: d.update(approval_ttl_minutes=-5), "approval_ttl_minutes"),
        (
            lambda d: d["service_accounts"]["default"].update(client_id_env="lower"),
            "service_accounts.default.client_id_env",
        ),
    ],
)
def test_invalid_policy_names_the_key(mutate: Any, fragment: str) -> None:
    import copy

    data = copy.deepcopy(POLICY_DATA)
    mutate(data)
    with pytest.raises(ConfigurationError) as info:
        parse_policy(data, known_actions=KNOWN)
    assert fragment in str(info.value)


def test_load_policy_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ATLAS_CHATOPS_POLICY"):
        load_policy(tmp_path / "missing.yml", known_actions=KNOWN)
    bad = tmp_path / "bad.yml"
    bad.write_text("roles: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_policy(bad, known_actions=KNOWN)
    not_mapping = tmp_path / "list.yml"
    not_mapping.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="expected a mapping"):
        load_policy(not_mapping, known_actions=KNOWN)

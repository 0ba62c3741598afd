"""Who may request and approve what, and where: rules as data, decided by pure functions.

The policy file (YAML) is validated by pydantic at start-up; errors name the key path
(``actions.revoke-jwks.approvals``). Nothing in the file is ever a secret: service account
profiles name the *environment variables* that hold the credentials.

Deny by default: an action absent from ``actions`` cannot be requested by anybody, a role
absent from ``roles`` has no members, and a user whose Slack team is not the app's own
(a guest from another company in a Slack Connect channel) can never request or approve.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from bot.errors import ConfigurationError

__all__ = [
    "ActionRule",
    "Actor",
    "Decision",
    "Policy",
    "RateLimits",
    "ServiceAccountProfile",
    "decide_approve",
    "decide_request",
    "load_policy",
    "parse_policy",
    "roles_of",
]

# A Slack user id (U…, or W… on Enterprise Grid) or the @handle of a user group.
Member = Annotated[str, StringConstraints(pattern=r"^([UW][A-Z0-9]{2,20}|@[a-z0-9][a-z0-9._-]{0,79})$")]
ChannelId = Annotated[str, StringConstraints(pattern=r"^[CGD][A-Z0-9]{2,20}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]
ProfileName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActionRule(_Strict):
    request: tuple[str, ...] = Field(min_length=1)
    approve: tuple[str, ...] = Field(min_length=1)
    approvals: int = Field(default=1, ge=1, le=10)
    channels: tuple[ChannelId, ...] | None = None


class ServiceAccountProfile(_Strict):
    client_id_env: EnvName
    client_secret_env: EnvName


class RateLimits(_Strict):
    per_user_per_hour: int = Field(default=10, ge=1)
    per_channel_per_hour: int = Field(default=30, ge=1)


class Policy(_Strict):
    roles: dict[str, tuple[Member, ...]]
    actions: dict[str, ActionRule] = Field(default_factory=dict)
    approval_ttl_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    service_accounts: dict[ProfileName, ServiceAccountProfile] = Field(default_factory=dict)
    rate_limits: RateLimits = Field(default_factory=RateLimits)

    @model_validator(mode="after")
    def _roles_exist(self) -> Policy:
        for name, rule in self.actions.items():
            for key, roles in (("request", rule.request), ("approve", rule.approve)):
                for role in roles:
                    if role not in self.roles:
                        raise ValueError(f"actions.{name}.{key}: role {role!r} is not defined under roles")
        return self

    @property
    def group_handles(self) -> frozenset[str]:
        return frozenset(m[1:] for members in self.roles.values() for m in members if m.startswith("@"))


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{path}: {err['msg']}")
    return "; ".join(lines)


def parse_policy(data: Any, *, known_actions: Collection[str], source: str = "policy") -> Policy:
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: expected a mapping with 'roles' and 'actions' at the top level")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"{source}: {_format_errors(exc)}") from None
    unknown = sorted(set(policy.actions) - set(known_actions))
    if unknown:
        known = ", ".join(sorted(known_actions))
        raise ConfigurationError(f"{source}: actions.{unknown[0]}: unknown action; known actions are {known}")
    return policy


def load_policy(path: Path, *, known_actions: Collection[str]) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"ATLAS_CHATOPS_POLICY: cannot read the policy file {str(path)!r} ({exc.strerror})"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML ({exc})") from None
    return parse_policy(data, known_actions=known_actions, source=str(path))


@dataclass(frozen=True, slots=True)
class Actor:
    """A Slack user as the policy sees them: id, their own team, and the user groups they are in."""

    user_id: str
    team_id: str
    group_handles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


_ALLOW = Decision(True)


def roles_of(policy: Policy, actor: Actor) -> list[str]:
    """The roles the actor holds, in the order the policy defines them."""
    return [role for role, members in policy.roles.items() if any(_matches(m, actor) for m in members)]


def _matches(member: str, actor: Actor) -> bool:
    return member[1:] in actor.group_handles if member.startswith("@") else member == actor.user_id


def _has_any(policy: Policy, actor: Actor, roles: Iterable[str]) -> bool:
    return any(_matches(m, actor) for role in roles for m in policy.roles.get(role, ()))


def _foreign(actor: Actor, app_team_id: str) -> Decision | None:
    if actor.team_id != app_team_id:
        return Decision(False, "People from other organisations (Slack Connect) cannot request or approve actions.")
    return None


def decide_request(policy: Policy, actor: Actor, action: str, channel_id: str, *, app_team_id: str) -> Decision:
    if (foreign := _foreign(actor, app_team_id)) is not None:
        return foreign
    rule = policy.actions.get(action)
    if rule is None:
        return Decision(False, f"`{action}` is not enabled in this workspace's policy.")
    if rule.channels is not None and channel_id not in rule.channels:
        allowed = ", ".join(f"<#{c}>" for c in rule.channels)
        return Decision(False, f"`{action}` can only be requested in {allowed}.")
    if not _has_any(policy, actor, rule.request):
        return Decision(False, f"You need one of the roles {', '.join(rule.request)} to request `{action}`.")
    return _ALLOW


def decide_approve(
    policy: Policy,
    actor: Actor,
    *,
    action: str,
    requester_id: str,
    request_channel_id: str,
    click_channel_id: str | None,
    app_team_id: str,
) -> Decision:
    if (foreign := _foreign(actor, app_team_id)) is not None:
        return foreign
    if actor.user_id == requester_id:
        return Decision(False, "You cannot approve or reject your own request; ask another approver.")
    rule = policy.actions.get(action)
    if rule is None:
        return Decision(False, f"`{action}` is no longer enabled in the policy.")
    if click_channel_id is not None and click_channel_id != request_channel_id:
        return Decision(False, "This request belongs to another channel.")
    if not _has_any(policy, actor, rule.approve):
        return Decision(False, f"You need one of the roles {', '.join(rule.approve)} to approve `{action}`.")
    return _ALLOW

"""What comes in with a Slack request, and the checks an ack runs on it before anything else.

Pure and light: serve's ack side (bot.ack_side) loads this, not the service, its database or its
clients, when the work runs in a process of its own (bot.work_process).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from bot.actions import ActionSpec, parse_command
from bot.errors import ChatOpsError, InvalidCommand
from bot.policy import Policy
from bot.sealing import Sealer, SealError
from bot.views import CONFIRM_BLOCK, REASON_BLOCK, REASON_MAX, SECRET_BLOCK, Message, help_message, plain_message

__all__ = [
    "ClickInput",
    "CommandInput",
    "Intake",
    "MessageLocation",
    "ReplyTo",
    "SubmissionInput",
    "ValidSubmission",
    "error_text",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommandInput:
    user_id: str
    team_id: str
    channel_id: str
    text: str
    trigger_id: str
    response_url: str | None = None


@dataclass(frozen=True, slots=True)
class SubmissionInput:
    user_id: str
    team_id: str
    private_metadata: str
    values: Mapping[str, str | None]  # block_id -> the input's value


@dataclass(frozen=True, slots=True)
class ValidSubmission:
    spec: ActionSpec[Any]
    args: Any
    user_id: str
    team_id: str
    channel_id: str
    reason: str
    response_url: str | None
    secret: SecretStr | None


@dataclass(frozen=True, slots=True)
class MessageLocation:
    channel: str
    ts: str


@dataclass(frozen=True, slots=True)
class ClickInput:
    user_id: str
    team_id: str
    channel_id: str | None
    request_id: str
    # The approval message clicked on (not a /atlas pending list or the App Home tab). Slack shows the
    # message as soon as chat.postMessage returns, before the bot has stored its ts.
    approval_message: MessageLocation | None = None


class Intake:
    """The checks an ack runs before anything else: pure, on the ack's side of the bot (see
    bot.work_loop), with only the command registry, the policy's profiles and the form sealer."""

    def __init__(self, *, registry: Mapping[str, ActionSpec[Any]], policy: Policy, sealer: Sealer) -> None:
        self.registry = dict(registry)
        self.policy = policy
        self.sealer = sealer

    def parse(self, text: str) -> Message | None:
        """Pure first pass, cheap enough to run before the ack: a reply for bad input, else None."""
        try:
            parsed = parse_command(text, self.registry)
        except InvalidCommand as exc:
            return plain_message(exc.user_message, usage=exc.usage)
        if parsed.name == "help":
            return help_message(self.registry)
        if parsed.spec is not None and parsed.spec.secret_input is not None:
            profile = getattr(parsed.args, "profile", None)
            if profile not in self.policy.service_accounts:
                configured = ", ".join(f"`{p}`" for p in self.policy.service_accounts) or "none"
                return plain_message(
                    f"Unknown service account profile `{profile}`. Configured profiles: {configured}.",
                    usage=parsed.spec.usage,
                )
        return None

    def check_submission(self, sub: SubmissionInput) -> ValidSubmission | dict[str, str]:
        """Pure validation of the confirmation modal: a valid submission, or field errors."""
        try:
            meta = json.loads(self.sealer.verify(sub.private_metadata))
            spec = self.registry[meta["a"]]
            args = spec.validate(meta["t"])
            channel_id, requester, response_url = str(meta["c"]), str(meta["u"]), meta.get("r")
        except (SealError, ValueError, KeyError, TypeError, InvalidCommand):
            return {CONFIRM_BLOCK: "This form could not be verified. Close it and run the command again."}
        if requester != sub.user_id:
            return {CONFIRM_BLOCK: "This form belongs to someone else. Run the command yourself."}
        errors: dict[str, str] = {}
        identifier = spec.confirm_identifier(args)
        if (sub.values.get(CONFIRM_BLOCK) or "").strip() != identifier:
            errors[CONFIRM_BLOCK] = f"Type exactly {identifier} to confirm."
        reason = (sub.values.get(REASON_BLOCK) or "").strip()
        if not 3 <= len(reason) <= REASON_MAX:
            errors[REASON_BLOCK] = f"Give a reason of 3 to {REASON_MAX} characters."
        secret: SecretStr | None = None
        if spec.secret_input is not None:
            raw = (sub.values.get(SECRET_BLOCK) or "").strip()
            if not raw or len(raw) > 3000 or any(c.isspace() for c in raw):
                errors[SECRET_BLOCK] = "Paste the whole access token, without spaces."
            else:
                secret = SecretStr(raw)
        if errors:
            return errors
        return ValidSubmission(
            spec=spec,
            args=args,
            user_id=sub.user_id,
            team_id=sub.team_id,
            channel_id=channel_id,
            reason=reason,
            response_url=response_url if isinstance(response_url, str) else None,
            secret=secret,
        )


@dataclass(frozen=True, slots=True)
class ReplyTo:
    """Where to tell the person who acted that something went wrong."""

    user: str
    channel: str | None
    response_url: str | None


def error_text(error: Exception) -> str:
    """The one line a person sees for a failure after their ack (unexpected ones are logged)."""
    if isinstance(error, ChatOpsError):
        return f":warning: {error.user_message}"
    log.error("unhandled error in a listener: %s", type(error).__name__, exc_info=error)
    return ":warning: Something went wrong on the bot's side; nothing further was done. It was logged."

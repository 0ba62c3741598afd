"""The bot's own error tree (Atlas errors live in :mod:`bot.atlas.errors`).

    ChatOpsError                      base; ``user_message`` is safe to show in Slack
    ├── ConfigurationError            a setting or the policy file is missing or malformed
    ├── InvalidCommand                bad subcommand or argument: names the field and the pattern
    ├── NotAllowed                    the policy denies this user, channel or team
    ├── RateLimited                   too many requests from this user or channel
    ├── RequestNotFound               no request with that id
    ├── StaleRequest                  the request is no longer in a state that allows this
    │   └── IllegalTransition         a state move the table forbids (a lost race, or a bug)
    └── StoreUnavailable              the database could not be reached; nothing was changed

Every message here is written for the person in Slack and never carries a secret.
"""

from __future__ import annotations

__all__ = [
    "ChatOpsError",
    "ConfigurationError",
    "IllegalTransition",
    "InvalidCommand",
    "NotAllowed",
    "RateLimited",
    "RequestNotFound",
    "StaleRequest",
    "StoreUnavailable",
]


class ChatOpsError(Exception):
    """Base of the bot's errors. ``str(exc)`` is the user-facing message."""

    @property
    def user_message(self) -> str:
        return str(self)


class ConfigurationError(ChatOpsError):
    pass


class InvalidCommand(ChatOpsError):
    def __init__(self, message: str, *, field: str | None = None, usage: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.usage = usage


class NotAllowed(ChatOpsError):
    pass


class RateLimited(ChatOpsError):
    pass


class RequestNotFound(ChatOpsError):
    pass


class StaleRequest(ChatOpsError):
    pass


class IllegalTransition(StaleRequest):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"This request is {current} and cannot become {target}.")
        self.current = current
        self.target = target


class StoreUnavailable(ChatOpsError):
    pass

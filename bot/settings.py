"""Process settings from the environment (Atlas settings live in :mod:`bot.atlas.settings`).

Built once in the composition root, or by tests from an explicit mapping: nothing reads
``os.environ`` at import time. Every secret is a ``SecretStr``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigurationError
from bot.loop import EventLoopName

__all__ = ["Settings", "format_settings_error"]


def _default_database_url() -> str:
    # Imported here: bot.db needs SQLAlchemy, which the ack side of serve (bot.ack_side) never loads.
    from bot.db import default_database_url

    return default_database_url()


def _default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    slack_bot_token: SecretStr = Field(validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr = Field(validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    # The workspace the app is installed in; read from auth.test when not set.
    slack_team_id: str | None = Field(default=None, validation_alias="SLACK_TEAM_ID")
    host: str = Field(default="0.0.0.0", validation_alias="HOST")  # noqa: S104 - a server binds all interfaces
    port: int = Field(default=3000, ge=1, le=65535, validation_alias="PORT")
    database_url: str = Field(default_factory=_default_database_url, validation_alias="DATABASE_URL")
    policy_path: Path = Field(default=Path("policy.yml"), validation_alias="ATLAS_CHATOPS_POLICY")
    # Seals revoke-token's token at rest and signs modal metadata. Every replica needs the same value;
    # defaults to a key derived from the signing secret, which every replica already shares.
    secret_key: SecretStr | None = Field(default=None, validation_alias="ATLAS_CHATOPS_SECRET_KEY")
    replica_id: str = Field(default_factory=_default_replica_id, validation_alias="ATLAS_CHATOPS_REPLICA_ID")
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", validation_alias="LOG_LEVEL")
    group_cache_seconds: float = Field(default=60.0, ge=0, validation_alias="ATLAS_CHATOPS_GROUP_CACHE_SECONDS")
    sweep_interval_seconds: float = Field(default=15.0, gt=0, validation_alias="ATLAS_CHATOPS_SWEEP_SECONDS")
    execution_lease_seconds: float = Field(
        default=120.0, gt=0, validation_alias=AliasChoices("ATLAS_CHATOPS_LEASE_SECONDS")
    )
    # auto: uvloop where it is installed (a dependency except on Windows, which it does not support).
    event_loop: EventLoopName = Field(default="auto", validation_alias="ATLAS_CHATOPS_EVENT_LOOP")
    # serve: where the service runs, apart from the acks: in a process of its own (bot.work_process),
    # on a thread's loop (bot.work_loop), or on the HTTP server's loop.
    work_mode: Literal["process", "thread", "loop"] = Field(default="process", validation_alias="ATLAS_CHATOPS_WORK")
    # How much lower the work process's CPU priority is than serve's (Unix niceness; 0 for the same).
    work_niceness: int = Field(default=10, ge=0, le=19, validation_alias="ATLAS_CHATOPS_WORK_NICENESS")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from an explicit mapping (tests, the CLI) instead of the process environment."""
        try:
            return cls.model_validate({k: v for k, v in environ.items() if v != ""})
        except ValidationError as exc:
            raise ConfigurationError(format_settings_error(exc)) from None

    @property
    def sealing_key(self) -> SecretStr:
        return self.secret_key or self.slack_signing_secret

    def secret_values(self, environ: Mapping[str, str]) -> list[str]:
        """Every value the logs must mask: the tokens and keys above, and whatever the environment
        holds under a name that says it is secret (the service accounts' client secrets)."""
        values = [self.slack_bot_token.get_secret_value(), self.slack_signing_secret.get_secret_value()]
        if self.slack_app_token:
            values.append(self.slack_app_token.get_secret_value())
        if self.secret_key:
            values.append(self.secret_key.get_secret_value())
        for name, value in environ.items():
            if any(word in name for word in ("SECRET", "PRIVATE", "TOKEN", "PASSWORD")) and value:
                values.append(value)
        return values


def format_settings_error(exc: ValidationError) -> str:
    """Name the environment variable, never echo its value."""
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(p) for p in err["loc"])
        problems.append(f"{name}: {'not set' if err['type'] == 'missing' else err['msg']}")
    return "Invalid configuration: " + "; ".join(problems)

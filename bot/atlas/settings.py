"""Atlas connection settings, read from the environment variables the Atlas CLI uses."""

from __future__ import annotations

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.atlas._auth import OAuthClientCredentialsAuth
from bot.atlas._ratelimit import OAuthRateLimiter
from bot.atlas.errors import AtlasConfigurationError

__all__ = ["AtlasSettings"]

DEFAULT_BASE_URL = "https://cloud.mongodb.com"


class AtlasSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)

    client_id: str | None = Field(default=None, validation_alias="MONGODB_ATLAS_CLIENT_ID")
    client_secret: SecretStr | None = Field(default=None, validation_alias="MONGODB_ATLAS_CLIENT_SECRET")
    public_api_key: str | None = Field(default=None, validation_alias="MONGODB_ATLAS_PUBLIC_API_KEY")
    private_api_key: SecretStr | None = Field(default=None, validation_alias="MONGODB_ATLAS_PRIVATE_API_KEY")
    base_url: str = Field(default=DEFAULT_BASE_URL, validation_alias="MONGODB_ATLAS_BASE_URL")

    @property
    def auth_mode(self) -> str:
        if self.client_id and self.client_secret and self.client_secret.get_secret_value():
            return "oauth"
        if self.public_api_key and self.private_api_key and self.private_api_key.get_secret_value():
            return "digest"
        return "none"

    def build_auth(self, *, limiter: OAuthRateLimiter | None = None, refresh_margin: float = 60.0) -> httpx.Auth:
        """OAuth when a service account is configured, else Digest with API keys, else a config error."""
        mode = self.auth_mode
        if mode == "oauth":
            assert self.client_id is not None
            assert self.client_secret is not None
            return OAuthClientCredentialsAuth(
                self.client_id, self.client_secret, limiter=limiter, refresh_margin=refresh_margin
            )
        if mode == "digest":
            assert self.public_api_key is not None
            assert self.private_api_key is not None
            return httpx.DigestAuth(self.public_api_key, self.private_api_key.get_secret_value())
        raise AtlasConfigurationError(
            "no Atlas credentials configured: set MONGODB_ATLAS_CLIENT_ID and MONGODB_ATLAS_CLIENT_SECRET "
            "(service account, recommended) or MONGODB_ATLAS_PUBLIC_API_KEY and "
            "MONGODB_ATLAS_PRIVATE_API_KEY",
            operation="configure",
            error_code="MISSING_CREDENTIALS",
        )

"""The one exception tree of the Atlas client.

    AtlasError                          every failure; exposes operation, status, error_code, detail,
    │                                   retry_safe and outcome_unknown
    ├── AtlasValidationError            an argument broke the spec's pattern; raised before any I/O
    ├── AtlasConfigurationError         the bot is misconfigured (missing credentials, ...)
    │   └── AtlasVersionError           Atlas refused the pinned API version: 406 INVALID_VERSION_DATE
    │                                   or 410 VERSION_GONE (a bug in the operation table)
    ├── AtlasTransportError             no HTTP response was received
    │   ├── AtlasConnectError           the request never left (connect error/timeout, pool timeout)
    │   ├── AtlasTimeoutError           sent, but no answer in time
    │   └── AtlasConnectionLostError    sent, then the connection was reset or closed
    ├── AtlasMalformedResponseError     a response that is not what Atlas sends (HTML page, bad JSON)
    └── AtlasResponseError              Atlas answered with an error status; carries api_error or oauth_error
        ├── AtlasBadRequestError        400
        ├── AtlasUnauthorizedError      401 (after the one token re-fetch)
        ├── AtlasForbiddenError         403
        │   └── AtlasTokenLimitError    403 access_denied from /api/oauth/token: 100 live tokens
        ├── AtlasNotFoundError          404
        ├── AtlasConflictError          409
        ├── AtlasRateLimitError         429, or a wait that would not fit the call's deadline
        └── AtlasServerError            5xx

``retry_safe`` answers "may a human simply run the action again?"; ``outcome_unknown`` is True when a
non-idempotent write may or may not have reached Atlas, so a human must check before retrying.
Messages never contain credentials or tokens; translation from httpx lives only in ``_translate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.atlas.models import ApiErrorBody, OAuthErrorBody

__all__ = [
    "AtlasBadRequestError",
    "AtlasConfigurationError",
    "AtlasConflictError",
    "AtlasConnectError",
    "AtlasConnectionLostError",
    "AtlasError",
    "AtlasForbiddenError",
    "AtlasMalformedResponseError",
    "AtlasNotFoundError",
    "AtlasRateLimitError",
    "AtlasResponseError",
    "AtlasServerError",
    "AtlasTimeoutError",
    "AtlasTokenLimitError",
    "AtlasTransportError",
    "AtlasUnauthorizedError",
    "AtlasValidationError",
    "AtlasVersionError",
]


class AtlasError(Exception):
    """Base of every Atlas client error."""

    default_retry_safe = False

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int | None = None,
        error_code: str | None = None,
        detail: str | None = None,
        retry_safe: bool | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.status = status
        self.error_code = error_code
        self.detail = detail
        self.retry_safe = self.default_retry_safe if retry_safe is None else retry_safe
        self.outcome_unknown = outcome_unknown

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(operation={self.operation!r}, status={self.status!r}, "
            f"error_code={self.error_code!r}, retry_safe={self.retry_safe!r}, "
            f"outcome_unknown={self.outcome_unknown!r})"
        )


class AtlasValidationError(AtlasError):
    """A path parameter does not match the spec's pattern; nothing was sent."""

    def __init__(self, message: str, *, operation: str, field: str, pattern: str) -> None:
        super().__init__(message, operation=operation, error_code="INVALID_PATH_PARAMETER")
        self.field = field
        self.pattern = pattern


class AtlasConfigurationError(AtlasError):
    """The bot's configuration is wrong; retrying will not help until it is fixed."""


class AtlasVersionError(AtlasConfigurationError):
    """Atlas rejected the Accept version the operation table pins for this operation."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int,
        api_error: ApiErrorBody | None,
        error_code: str | None,
        detail: str | None,
    ) -> None:
        super().__init__(message, operation=operation, status=status, error_code=error_code, detail=detail)
        self.api_error = api_error


class AtlasTransportError(AtlasError):
    """No HTTP response was received."""


class AtlasConnectError(AtlasTransportError):
    """The request was never sent, so any operation may be retried."""

    default_retry_safe = True


class AtlasTimeoutError(AtlasTransportError):
    """The request was sent but no response arrived in time."""


class AtlasConnectionLostError(AtlasTransportError):
    """The request was sent and the connection was then reset or closed without a response."""


class AtlasMalformedResponseError(AtlasError):
    """Atlas (or something in front of it) sent a body that is not the documented JSON."""


class AtlasResponseError(AtlasError):
    """Atlas answered with an error status and, usually, a parsed error body."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int | None,
        error_code: str | None = None,
        detail: str | None = None,
        retry_safe: bool | None = None,
        outcome_unknown: bool = False,
        api_error: ApiErrorBody | None = None,
        oauth_error: OAuthErrorBody | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            operation=operation,
            status=status,
            error_code=error_code,
            detail=detail,
            retry_safe=retry_safe,
            outcome_unknown=outcome_unknown,
        )
        self.api_error = api_error
        self.oauth_error = oauth_error
        self.retry_after = retry_after


class AtlasBadRequestError(AtlasResponseError):
    """400: the request was invalid for the current state; fix the input, do not retry."""


class AtlasUnauthorizedError(AtlasResponseError):
    """401: the credentials were rejected even after fetching a fresh token."""


class AtlasForbiddenError(AtlasResponseError):
    """403: the service account or API key lacks the required role or IP access."""


class AtlasTokenLimitError(AtlasForbiddenError):
    """403 access_denied: the service account already holds 100 live tokens."""


class AtlasNotFoundError(AtlasResponseError):
    """404: the resource does not exist (or is invisible to these credentials)."""


class AtlasConflictError(AtlasResponseError):
    """409: the resource is in a state that forbids the operation."""


class AtlasRateLimitError(AtlasResponseError):
    """429: rate limited; ``retry_after`` says how long to wait when Atlas told us."""

    default_retry_safe = True


class AtlasServerError(AtlasResponseError):
    """5xx: Atlas or a gateway in front of it failed."""

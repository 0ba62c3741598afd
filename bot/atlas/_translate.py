"""The one place where httpx exceptions and non-2xx responses become ``bot.atlas.errors``.

Nothing here copies request headers, form bodies or URLs with credentials into messages: only the
operation, the status, Atlas's errorCode and its detail text.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from bot.atlas._operations import OAUTH_REVOKE, OAUTH_TOKEN, Operation
from bot.atlas.errors import (
    AtlasBadRequestError,
    AtlasConflictError,
    AtlasConnectError,
    AtlasConnectionLostError,
    AtlasError,
    AtlasForbiddenError,
    AtlasMalformedResponseError,
    AtlasNotFoundError,
    AtlasRateLimitError,
    AtlasResponseError,
    AtlasServerError,
    AtlasTimeoutError,
    AtlasTokenLimitError,
    AtlasTransportError,
    AtlasUnauthorizedError,
    AtlasVersionError,
)
from bot.atlas.models import ApiErrorBody, OAuthErrorBody

__all__ = ["error_from_response", "error_from_transport", "parse_model"]

M = TypeVar("M", bound=BaseModel)

_MAX_DETAIL = 300
_VERSION_CODES = frozenset({"INVALID_VERSION_DATE", "VERSION_GONE"})
_STATUS_CLASSES: dict[int, type[AtlasResponseError]] = {
    400: AtlasBadRequestError,
    401: AtlasUnauthorizedError,
    403: AtlasForbiddenError,
    404: AtlasNotFoundError,
    409: AtlasConflictError,
    429: AtlasRateLimitError,
}
_OAUTH_PATHS = frozenset({OAUTH_TOKEN.path, OAUTH_REVOKE.path})
_HINTS: dict[int, str] = {
    400: "the request was rejected; check the target and its current state before trying again",
    401: "the credentials were rejected; check MONGODB_ATLAS_CLIENT_ID/SECRET or the API keys",
    403: "the credentials lack the required Atlas role or this host is not on the API access list",
    404: "the resource does not exist or is not visible to these credentials",
    409: "the resource is in a state that forbids this operation",
    429: "Atlas rate limit reached; wait before trying again",
}


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "..."


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return float(value) if value >= 0 else None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _hint(status: int, operation: Operation) -> str:
    if status >= 500:
        if operation.idempotent:
            return "Atlas failed; it is safe to try again"
        return "Atlas failed; the action may or may not have happened, check its state before retrying"
    return _HINTS.get(status, "unexpected response from Atlas")


def error_from_response(response: httpx.Response, *, operation: Operation, label: str) -> AtlasError:
    """Build the error for a non-2xx response (or a 2xx whose body cannot be used)."""
    status = response.status_code
    via_oauth = response.request.url.path in _OAUTH_PATHS
    where = f"{label} (OAuth {response.request.url.path})" if via_oauth and label != operation.operation_id else label
    # A failed token fetch means the API request itself never went out.
    sent_api_request = not (via_oauth and operation is not OAUTH_TOKEN and operation is not OAUTH_REVOKE)
    payload = _json_or_none(response)
    api_error: ApiErrorBody | None = None
    oauth_error: OAuthErrorBody | None = None
    if isinstance(payload, dict):
        try:
            if isinstance(payload.get("error"), int):
                api_error = ApiErrorBody.model_validate(payload)
            elif isinstance(payload.get("error"), str):
                oauth_error = OAuthErrorBody.model_validate(payload)
        except ValidationError:
            api_error = oauth_error = None
    error_code = api_error.error_code if api_error else (oauth_error.error if oauth_error else None)
    detail = _clip(api_error.detail if api_error else (oauth_error.error_description if oauth_error else None))

    if status in (406, 410) and (error_code in _VERSION_CODES or api_error is None):
        return AtlasVersionError(
            f"{where}: Atlas refused Accept {operation.accept} ({status} {error_code or 'no errorCode'}); "
            "the pinned API version in bot/atlas/_operations.py must be fixed",
            operation=label,
            status=status,
            api_error=api_error,
            error_code=error_code,
            detail=detail,
        )

    # 503 means Atlas (or its gateway) did not take the call; it is retried even for writes
    # (see _retry.is_retryable). Any other 5xx on a write may hide a change that happened.
    unknown = status >= 500 and status != 503 and sent_api_request and not operation.idempotent
    if api_error is None and oauth_error is None and status not in (502, 503, 504):
        # Gateways answer 502/503/504 with HTML as a matter of course; anything else without the
        # documented JSON body is a malformed response.
        kind = "an HTML page" if "html" in response.headers.get("content-type", "") else "a non-JSON body"
        return AtlasMalformedResponseError(
            f"{where}: Atlas answered {status} with {kind} instead of the documented JSON error; "
            + ("the action may or may not have happened" if unknown else "try again later"),
            operation=label,
            status=status,
            retry_safe=not unknown and status >= 500,
            outcome_unknown=unknown,
        )

    if status == 403 and oauth_error is not None and oauth_error.error == "access_denied":
        cls: type[AtlasResponseError] = AtlasTokenLimitError
        hint = "the service account holds 100 live tokens; revoke some or wait for them to expire"
    elif status >= 500:
        cls, hint = AtlasServerError, _hint(status, operation)
    else:
        cls, hint = _STATUS_CLASSES.get(status, AtlasResponseError), _hint(status, operation)
    retry_safe = not unknown and (status >= 500 or status == 429)
    if not sent_api_request and status >= 500:
        retry_safe = True
    code_text = f" {error_code}" if error_code else ""
    detail_text = f": {detail}" if detail else ""
    return cls(
        f"{where} failed with {status}{code_text}{detail_text} ({hint})",
        operation=label,
        status=status,
        error_code=error_code,
        detail=detail,
        retry_safe=retry_safe,
        outcome_unknown=unknown,
        api_error=api_error,
        oauth_error=oauth_error,
        retry_after=_retry_after(response),
    )


def error_from_transport(exc: httpx.TransportError, *, operation: Operation, label: str) -> AtlasTransportError:
    """Classify a transport failure by whether the request can have reached Atlas."""
    failed_path = exc.request.url.path if _has_request(exc) else None
    before_api_request = failed_path in _OAUTH_PATHS and operation not in (OAUTH_TOKEN, OAUTH_REVOKE)
    error: AtlasTransportError
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)) or before_api_request:
        error = AtlasConnectError(
            f"{label}: could not reach Atlas ({type(exc).__name__}); nothing was sent, it is safe to try again",
            operation=label,
        )
    elif isinstance(exc, httpx.TimeoutException):
        error = AtlasTimeoutError(
            f"{label}: Atlas did not answer in time ({type(exc).__name__})" + _unknown_suffix(operation),
            operation=label,
            retry_safe=operation.idempotent,
            outcome_unknown=not operation.idempotent,
        )
    else:
        error = AtlasConnectionLostError(
            f"{label}: the connection to Atlas was lost before a response ({type(exc).__name__})"
            + _unknown_suffix(operation),
            operation=label,
            retry_safe=operation.idempotent,
            outcome_unknown=not operation.idempotent,
        )
    return error


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 - the property raises when no request is attached
    except RuntimeError:
        return False
    return True


def _unknown_suffix(operation: Operation) -> str:
    if operation.idempotent:
        return "; it is safe to try again"
    return "; the action may or may not have happened, check its state before retrying"


def parse_model(response: httpx.Response, model: type[M], *, label: str, idempotent: bool = True) -> M:
    """Validate a 2xx JSON body; an HTML page or a truncated body becomes AtlasMalformedResponseError."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        content_type = response.headers.get("content-type", "none")
        raise AtlasMalformedResponseError(
            f"{label}: Atlas answered {response.status_code} with a body that is not the documented JSON "
            f"({exc.error_count()} problem(s), content-type {content_type!r})",
            operation=label,
            status=response.status_code,
            retry_safe=idempotent,
            outcome_unknown=not idempotent,
        ) from exc

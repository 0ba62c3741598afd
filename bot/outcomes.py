"""Turning what Atlas answered into an :class:`Outcome` and words an on-call engineer can act on."""

from __future__ import annotations

from bot.atlas.errors import (
    AtlasConfigurationError,
    AtlasError,
    AtlasForbiddenError,
    AtlasNotFoundError,
    AtlasRateLimitError,
    AtlasUnauthorizedError,
)
from bot.requests import Outcome, RequestState
from bot.views import truncate

__all__ = ["outcome_from_error", "state_for", "success_outcome"]

_DETAIL_MAX = 600


def success_outcome(status: int = 204) -> Outcome:
    return Outcome(ok=True, status=status, summary="Atlas accepted the request.")


def _advice(exc: AtlasError) -> str:
    if exc.outcome_unknown:
        return "The request may or may not have reached Atlas. Check the target in Atlas before running it again."
    if isinstance(exc, AtlasConfigurationError):
        return "This is a bot configuration problem; tell the bot's maintainers. Retrying will not help."
    if isinstance(exc, AtlasUnauthorizedError):
        return "The bot's Atlas credentials were refused; check MONGODB_ATLAS_* settings."
    if isinstance(exc, AtlasForbiddenError):
        return "The bot's service account lacks the Atlas role this action needs."
    if isinstance(exc, AtlasNotFoundError):
        return "Atlas does not know this target: check the ids (it may already be gone)."
    if isinstance(exc, AtlasRateLimitError):
        if exc.retry_after is not None and exc.retry_after > 60:
            return f"Atlas rate-limited the bot and asked it to wait {exc.retry_after:.0f} s; request again after that."
        return "Atlas rate-limited the bot; it is safe to request again in a minute."
    if exc.retry_safe:
        return "Nothing was changed; it is safe to request the action again."
    return "Read Atlas's detail above before requesting the action again."


def outcome_from_error(exc: AtlasError) -> Outcome:
    parts = []
    if exc.status is not None:
        parts.append(f"HTTP {exc.status}")
    if exc.error_code:
        parts.append(exc.error_code)
    head = " ".join(parts) or type(exc).__name__
    detail = truncate(exc.detail or str(exc), _DETAIL_MAX)
    return Outcome(
        ok=False,
        status=exc.status,
        error_code=exc.error_code,
        detail=detail,
        retry_safe=exc.retry_safe,
        outcome_unknown=exc.outcome_unknown,
        summary=f"{head}: {detail} {_advice(exc)}",
    )


def state_for(outcome: Outcome) -> RequestState:
    if outcome.ok:
        return RequestState.SUCCEEDED
    return RequestState.UNKNOWN if outcome.outcome_unknown else RequestState.FAILED

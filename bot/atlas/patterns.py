"""Path-parameter patterns copied from the Atlas Admin API v2 spec, and the check that enforces them.

These constants are the single source of truth: the client validates every path parameter against
them before any I/O, and the bot's command argument models reuse them.
"""

from __future__ import annotations

import re
from typing import Final

from bot.atlas.errors import AtlasValidationError

__all__ = ["CLUSTER_NAME", "OBJECT_ID", "SERVICE_ACCOUNT_CLIENT_ID", "validate_path_param"]

#: 24-hex ObjectId: federationSettingsId, groupId, orgId and (from the IdP object's `id`) identityProviderId.
OBJECT_ID: Final = r"^([a-f0-9]{24})$"
#: Cluster name; rules out `/`, `..`, `:` and percent-encoding tricks in the path.
CLUSTER_NAME: Final = r"^[a-zA-Z0-9][a-zA-Z0-9-]*$"
#: Service account client id (`clientId` of getOrgServiceAccount).
SERVICE_ACCOUNT_CLIENT_ID: Final = r"^mdb_sa_id_[a-fA-F\d]{24}$"

_MAX_SHOWN = 64
_COMPILED: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _COMPILED.get(pattern)
    if compiled is None:
        compiled = _COMPILED[pattern] = re.compile(pattern)
    return compiled


def _shown(value: str) -> str:
    if len(value) <= _MAX_SHOWN:
        return repr(value)
    return f"{value[:_MAX_SHOWN]!r}... ({len(value)} chars)"


def validate_path_param(operation: str, field: str, value: object, pattern: str) -> str:
    """Return ``value`` if it fully matches ``pattern``; raise AtlasValidationError otherwise.

    ``re.fullmatch`` is used on top of the anchors because ``$`` also matches before a trailing newline.
    """
    if not isinstance(value, str) or _compiled(pattern).fullmatch(value) is None:
        shown = _shown(value) if isinstance(value, str) else type(value).__name__
        raise AtlasValidationError(
            f"{field}={shown} does not match the pattern {pattern}",
            operation=operation,
            field=field,
            pattern=pattern,
        )
    return value

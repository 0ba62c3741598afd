"""Who is in which Slack user group, read with ``usergroups.list`` and cached briefly.

Roles in the policy may name user groups by handle. Reading them on every click would hit
Slack's rate limits during an incident, so the membership map is cached for ``ttl`` seconds
and refreshed by one caller at a time. If Slack cannot be read and nothing is cached, nobody
is in any group: the policy then denies, which is the safe failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["Directory"]

log = logging.getLogger(__name__)


class Directory:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._members: dict[str, frozenset[str]] | None = None  # handle -> user ids
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._team_id: str | None = None

    async def groups_of(self, user_id: str) -> frozenset[str]:
        members = await self._membership()
        return frozenset(handle for handle, users in members.items() if user_id in users)

    async def team_id(self) -> str:
        """The app's own workspace, from ``auth.test`` once per process."""
        if self._team_id is None:
            response = await self._client.auth_test()
            self._team_id = str(response["team_id"])
        return self._team_id

    def set_team_id(self, team_id: str) -> None:
        self._team_id = team_id

    async def _membership(self) -> dict[str, frozenset[str]]:
        if self._members is not None and self._clock() - self._fetched_at < self._ttl:
            return self._members
        async with self._lock:
            if self._members is not None and self._clock() - self._fetched_at < self._ttl:
                return self._members
            try:
                self._members = await self._fetch()
                self._fetched_at = self._clock()
            except (SlackApiError, SlackClientError) as exc:
                error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
                log.warning("could not read Slack user groups (%s); using the last known membership", error)
                if self._members is None:
                    return {}
        return self._members

    async def _fetch(self) -> dict[str, frozenset[str]]:
        response = await self._client.usergroups_list(include_users=True)
        members: dict[str, frozenset[str]] = {}
        for group in response.get("usergroups") or []:
            handle, group_id = group.get("handle"), group.get("id")
            if not handle or not group_id:
                continue
            users = group.get("users")
            if users is None:
                listed = await self._client.usergroups_users_list(usergroup=group_id)
                users = listed.get("users") or []
            members[str(handle)] = frozenset(str(u) for u in users)
        return members

"""Targets for the picker's ``external_select`` menus, read from Atlas within Slack's time limit.

Slack expects a ``block_suggestion`` answer within 3 seconds, and a person types several
characters in a row. Listing every identity provider or cluster takes one Atlas read per
federation or project, so a listing is loaded once per action and kept for ``ttl_seconds``;
each keystroke filters the kept list locally. A load that outlasts the answer budget keeps
running in the background (so the next keystroke finds it done) while the menu answers with
what it has: the previous listing if there is one, else nothing yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.actions import ActionSpec, TargetOption, TargetSource
from bot.atlas.errors import AtlasError

__all__ = ["Search", "TargetCatalog", "matching"]

log = logging.getLogger(__name__)


def matching(options: Sequence[TargetOption], query: str) -> list[TargetOption]:
    """Options whose label or value contains every word of the query, ignoring case."""
    words = query.casefold().split()
    return [o for o in options if all(w in f"{o.label} {o.value}".casefold() for w in words)]


@dataclass(frozen=True, slots=True)
class Search:
    options: list[TargetOption]
    # False when Atlas has not answered yet (or failed) and the options are stale or missing.
    complete: bool


@dataclass(slots=True)
class _Entry:
    options: list[TargetOption] | None = None
    loaded_at: float = float("-inf")
    loading: asyncio.Task[list[TargetOption]] | None = None


def _retrieve(task: asyncio.Task[Any]) -> None:
    # A load nobody waited for to the end still has its failure read (and logged in _load),
    # instead of asyncio reporting "exception was never retrieved".
    if not task.cancelled():
        task.exception()


class TargetCatalog:
    def __init__(
        self,
        source: TargetSource,
        *,
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    async def search(self, spec: ActionSpec[Any], query: str, *, budget_seconds: float) -> Search:
        if spec.targets is None:
            return Search(options=[], complete=True)
        entry = self._entries.setdefault(spec.name, _Entry())
        fresh = entry.options is not None and self._clock() - entry.loaded_at < self._ttl
        if fresh:
            assert entry.options is not None
            return Search(options=matching(entry.options, query), complete=True)
        if entry.loading is None:
            entry.loading = asyncio.get_running_loop().create_task(self._load(spec, entry))
            entry.loading.add_done_callback(_retrieve)
        try:
            # shield: a keystroke that gives up waiting must not cancel the load for the next one.
            options = await asyncio.wait_for(asyncio.shield(entry.loading), timeout=budget_seconds)
        except TimeoutError:
            return Search(options=matching(entry.options or [], query), complete=False)
        except AtlasError:
            return Search(options=matching(entry.options or [], query), complete=False)
        return Search(options=matching(options, query), complete=True)

    async def _load(self, spec: ActionSpec[Any], entry: _Entry) -> list[TargetOption]:
        assert spec.targets is not None
        started = self._clock()
        try:
            options = await spec.targets(self._source)
        except AtlasError as exc:
            log.warning(
                "listing %s targets failed: %s %s %s", spec.name, type(exc).__name__, exc.status, exc.error_code
            )
            raise
        finally:
            entry.loading = None
        entry.options, entry.loaded_at = options, self._clock()
        log.info("listed %d %s targets in %.2f s", len(options), spec.name, self._clock() - started)
        return options

    async def aclose(self) -> None:
        """Cancel loads still running (shutdown)."""
        loads = [e.loading for e in self._entries.values() if e.loading is not None]
        for task in loads:
            task.cancel()
        await asyncio.gather(*loads, return_exceptions=True)

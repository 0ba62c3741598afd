"""The preview helpers: the read cache, concurrent reads and organisation names."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bot.actions import ExecutionContext, ReadCache
from bot.atlas import AtlasClient
from bot.atlas.errors import AtlasNotFoundError
from commands._reads import concurrently, org_names


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_read_cache_serves_within_the_ttl_and_reloads_after_it() -> None:
    clock = Clock()
    cache = ReadCache(ttl_seconds=60, clock=clock)
    loads: list[int] = []

    async def load() -> int:
        loads.append(len(loads))
        return len(loads)

    assert await cache.get("k", load, usable=lambda _: True) == 1
    clock.now += 59
    assert await cache.get("k", load, usable=lambda _: True) == 1
    clock.now += 2
    assert await cache.get("k", load, usable=lambda _: True) == 2
    assert await cache.get("k", load, usable=lambda v: v > 2) == 3, "an unusable entry is reloaded"
    assert len(loads) == 3


async def test_read_cache_callers_that_miss_together_share_one_load() -> None:
    cache = ReadCache(ttl_seconds=60)
    release = asyncio.Event()
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        return "names"

    waiting = [asyncio.ensure_future(cache.get("k", load, usable=lambda _: True)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == ["names"] * 20
    assert loads == 1
    assert await cache.get("k", load, usable=lambda _: True) == "names" and loads == 1


async def test_read_cache_one_caller_giving_up_does_not_cancel_the_shared_load() -> None:
    cache = ReadCache(ttl_seconds=60)
    release = asyncio.Event()

    async def load() -> str:
        await release.wait()
        return "names"

    impatient = asyncio.ensure_future(cache.get("k", load, usable=lambda _: True))
    patient = asyncio.ensure_future(cache.get("k", load, usable=lambda _: True))
    await asyncio.sleep(0)
    impatient.cancel()
    release.set()
    assert await patient == "names"
    assert impatient.cancelled()


async def test_read_cache_a_failed_load_fails_every_waiter_and_is_not_kept() -> None:
    cache = ReadCache(ttl_seconds=60)
    release = asyncio.Event()
    attempts = 0

    async def load() -> str:
        nonlocal attempts
        attempts += 1
        await release.wait()
        if attempts == 1:
            raise AtlasNotFoundError("gone", operation="listOrgs", status=404)
        return "names"

    waiting = [asyncio.ensure_future(cache.get("k", load, usable=lambda _: True)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, AtlasNotFoundError) for r in results)
    assert await cache.get("k", load, usable=lambda _: True) == "names" and attempts == 2


class Orgs:
    """A stand-in for AtlasClient.list_orgs that counts its calls."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.calls = 0

    async def list_orgs(self, **_: Any) -> Any:
        self.calls += 1
        return SimpleNamespace(results=[SimpleNamespace(id=i, name=n) for i, n in self.names.items()])


async def test_org_names_come_from_the_cache_until_an_unknown_id_is_asked_for() -> None:
    atlas = Orgs({"o1": "Payments", "o2": "Search"})
    ctx = ExecutionContext(atlas=cast(AtlasClient, atlas), cache=ReadCache())
    assert await org_names(ctx, ["o1", "o2"]) == "Payments (o1), Search (o2)"
    assert await org_names(ctx, ["o2"]) == "Search (o2)"
    assert atlas.calls == 1
    atlas.names["o3"] = "New org"
    assert await org_names(ctx, ["o3", "o1"]) == "New org (o3), Payments (o1)"
    assert atlas.calls == 2
    assert await org_names(ctx, []) == "none"
    assert atlas.calls == 2


async def test_org_names_without_a_cache_read_every_time() -> None:
    atlas = Orgs({"o1": "Payments"})
    ctx = ExecutionContext(atlas=cast(AtlasClient, atlas))
    await org_names(ctx, ["o1"])
    assert await org_names(ctx, ["o1", "hidden"]) == "Payments (o1), hidden"
    assert atlas.calls == 2


async def test_concurrently_runs_both_reads_at_once() -> None:
    started: list[str] = []
    both_started = asyncio.Event()

    async def read(name: str) -> str:
        started.append(name)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 1)  # times out if run one after the other
        return name

    assert await concurrently(read("idp"), read("orgs")) == ("idp", "orgs")


async def test_concurrently_raises_the_first_failure_as_is_and_cancels_the_other() -> None:
    cancelled = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    async def missing() -> str:
        raise AtlasNotFoundError("gone", operation="getFederationSettingIdentityProvider", status=404)

    with pytest.raises(AtlasNotFoundError):
        await concurrently(slow(), missing())
    assert cancelled.is_set()


async def test_concurrently_is_cancelled_with_its_caller() -> None:
    cancelled: list[str] = []

    async def slow(name: str) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        return name

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await concurrently(slow("a"), slow("b"))
    assert sorted(cancelled) == ["a", "b"]

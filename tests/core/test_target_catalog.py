"""The picker's target catalog, search and Slack option answers, without I/O."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from bot.actions import ActionSpec, TargetOption, TargetSource
from bot.atlas.errors import AtlasServerError
from bot.atlas.models import Page
from bot.picker import TargetCatalog, matching
from bot.views import MAX_SELECT_OPTIONS, target_options
from commands._reads import MAX_PAGES, PAGE_SIZE, all_pages

OPTIONS = [
    TargetOption(label="payments / ledger", words=("65a1" * 6, "ledger")),
    TargetOption(label="payments / archive", words=("65a1" * 6, "archive")),
    TargetOption(label="search / ledger-replica", words=("65b2" * 6, "ledger-replica")),
]


class _Args(BaseModel):
    name: str


class Lister:
    """A targets function whose answers (and their timing) the test controls."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self, source: TargetSource) -> list[TargetOption]:
        self.calls += 1
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return list(OPTIONS)


def spec_with(lister: Lister) -> ActionSpec[Any]:
    async def execute(ctx: Any, args: Any) -> None:
        raise AssertionError("never executed here")

    return ActionSpec(
        name="demo",
        title="Demo",
        arguments=(),
        args_model=_Args,
        describe=lambda a: "demo",
        impact="none",
        confirm_field="name",
        execute=execute,
        atlas_role="none",
        targets=lister,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["payments / ledger", "payments / archive", "search / ledger-replica"]),
        ("LEDGER", ["payments / ledger", "search / ledger-replica"]),
        ("payments ledger", ["payments / ledger"]),
        ("65b2", ["search / ledger-replica"]),  # ids match too (the value holds them)
        ("nothing", []),
    ],
)
def test_matching_needs_every_word_in_label_or_value(query: str, expected: list[str]) -> None:
    assert [o.label for o in matching(OPTIONS, query)] == expected


async def test_catalog_lists_once_then_filters_locally_until_the_listing_is_old() -> None:
    lister, clock = Lister(), Clock()
    lister.release.set()
    catalog = TargetCatalog(TargetSource(atlas=None), ttl_seconds=60, clock=clock)  # type: ignore[arg-type]
    spec = spec_with(lister)
    first = await catalog.search(spec, "", budget_seconds=1)
    assert first.complete and len(first.options) == 3
    assert [o.label for o in (await catalog.search(spec, "archive", budget_seconds=1)).options] == [
        "payments / archive"
    ]
    assert lister.calls == 1
    clock.now = 61  # the listing is a minute old: read Atlas again
    await catalog.search(spec, "", budget_seconds=1)
    assert lister.calls == 2


async def test_a_slow_listing_answers_in_budget_and_completes_for_the_next_keystroke() -> None:
    lister = Lister()
    catalog = TargetCatalog(TargetSource(atlas=None))  # type: ignore[arg-type]
    spec = spec_with(lister)
    slow = await catalog.search(spec, "", budget_seconds=0.05)
    assert (slow.options, slow.complete) == ([], False)
    # A second keystroke while the listing runs joins it instead of starting another.
    again = await catalog.search(spec, "ledger", budget_seconds=0.05)
    assert again.complete is False and lister.calls == 1
    lister.release.set()
    await asyncio.sleep(0.01)
    done = await catalog.search(spec, "ledger", budget_seconds=0.05)
    assert done.complete and len(done.options) == 2 and lister.calls == 1


async def test_an_atlas_failure_is_an_incomplete_answer_and_the_next_keystroke_retries() -> None:
    lister = Lister()
    lister.fail = AtlasServerError("down", operation="listOrgs", status=503, error_code="SERVICE_UNAVAILABLE")
    lister.release.set()
    catalog = TargetCatalog(TargetSource(atlas=None))  # type: ignore[arg-type]
    spec = spec_with(lister)
    failed = await catalog.search(spec, "", budget_seconds=1)
    assert (failed.options, failed.complete) == ([], False)
    lister.fail = None
    recovered = await catalog.search(spec, "", budget_seconds=1)
    assert recovered.complete and len(recovered.options) == 3 and lister.calls == 2


async def test_all_pages_follows_pages_until_a_short_one_and_stops_at_the_cap() -> None:
    asked: list[int] = []

    def fetcher(total: int) -> Any:
        async def fetch(page_num: int) -> Page[int]:
            asked.append(page_num)
            start = (page_num - 1) * PAGE_SIZE
            return Page[int](results=list(range(start, min(start + PAGE_SIZE, total))), total_count=total)

        return fetch

    assert len(await all_pages(fetcher(2 * PAGE_SIZE + 7))) == 2 * PAGE_SIZE + 7 and asked == [1, 2, 3]
    asked.clear()
    assert len(await all_pages(fetcher(PAGE_SIZE * (MAX_PAGES + 3)))) == PAGE_SIZE * MAX_PAGES
    assert asked == list(range(1, MAX_PAGES + 1))


def test_options_answer_is_capped_at_slacks_limit_with_a_heading_saying_so() -> None:
    few = target_options(OPTIONS)
    assert [o["value"] for o in few["options"]] == [o.value for o in OPTIONS]
    many = [TargetOption(label=f"project {i:03d} / " + "x" * 80, words=(f"{i:024x}", "c")) for i in range(130)]
    answer = target_options(many)
    (group,) = answer["option_groups"]
    assert group["label"]["text"] == f"First {MAX_SELECT_OPTIONS} of 130: type to narrow"
    assert len(group["options"]) == MAX_SELECT_OPTIONS
    assert all(len(o["text"]["text"]) <= 75 for o in group["options"])

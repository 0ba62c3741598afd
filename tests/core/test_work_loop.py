"""bot.work_loop: the service's own loop, on the caller's loop or on a thread of its own."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator

import pytest

from bot.slack.listeners import FORMS_PER_SECOND_FLOOR, FormsOpening
from bot.work_loop import HEARTBEAT_SECONDS, WorkLoop

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


@pytest.fixture
async def threaded() -> AsyncIterator[WorkLoop]:
    work = WorkLoop.start_thread(asyncio.new_event_loop)
    try:
        yield work
    finally:
        work.stop()


async def test_call_runs_on_the_work_thread_and_returns_its_result(threaded: WorkLoop) -> None:
    async def where() -> tuple[str, asyncio.AbstractEventLoop]:
        return threading.current_thread().name, asyncio.get_running_loop()

    name, loop = await threaded.call(where())
    assert name == "atlas-chatops-work"
    assert loop is threaded.loop and loop is not asyncio.get_running_loop()
    assert threaded.threaded


async def test_call_raises_the_work_loop_s_exception_here(threaded: WorkLoop) -> None:
    async def fail() -> None:
        raise LookupError("not there")

    with pytest.raises(LookupError, match="not there"):
        await threaded.call(fail())


async def test_cancelling_a_call_cancels_the_work(threaded: WorkLoop) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.ensure_future(threaded.call(forever()))
    assert await asyncio.to_thread(started.wait, 5)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await asyncio.to_thread(cancelled.wait, 5)


async def test_submit_returns_at_once_and_carries_the_caller_s_context(threaded: WorkLoop) -> None:
    release = threading.Event()
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    async def work() -> None:
        await asyncio.to_thread(release.wait, 5)
        seen.append((threading.current_thread().name, marker.get()))
        done.set()

    marker.set("request-42")
    threaded.submit(work())
    # Returned while the work is still blocked, and counted as unfinished from the start.
    assert not threaded.idle and not done.is_set()
    release.set()
    assert await asyncio.to_thread(done.wait, 5)
    assert seen == [("atlas-chatops-work", "request-42")]
    for _ in range(500):
        if threaded.idle:
            break
        await asyncio.sleep(0.01)
    assert threaded.idle


async def test_a_failing_submission_is_logged_and_the_loop_goes_on(
    threaded: WorkLoop, caplog: pytest.LogCaptureFixture
) -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    threaded.submit(fail())
    for _ in range(500):
        if threaded.idle:
            break
        await asyncio.sleep(0.01)
    assert any("work after an ack failed: RuntimeError" in r.getMessage() for r in caplog.records)

    async def still_running() -> str:
        return "yes"

    assert await threaded.call(still_running()) == "yes"


async def test_the_same_loop_runs_work_here() -> None:
    work = WorkLoop.same_loop()
    assert not work.threaded and work.loop is asyncio.get_running_loop()

    async def here() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert await work.call(here()) is asyncio.get_running_loop()
    finished = asyncio.Event()

    async def later() -> None:
        finished.set()

    work.submit(later())
    assert not work.idle
    await asyncio.wait_for(finished.wait(), 5)
    await asyncio.sleep(0)
    assert work.idle


async def test_finish_waits_for_short_work_and_cancels_what_outlives_the_deadline(threaded: WorkLoop) -> None:
    finished: list[str] = []

    async def short() -> None:
        await asyncio.sleep(0.05)
        finished.append("short")

    async def stuck() -> None:
        await asyncio.sleep(60)
        finished.append("stuck")

    threaded.submit(short())
    threaded.submit(stuck())
    assert await threaded.call(threaded.finish(0.5)) == 1
    assert finished == ["short"]
    assert threaded.idle


async def test_behind_says_how_long_the_work_loop_has_run_nothing(threaded: WorkLoop) -> None:
    release, stuck = threading.Event(), threading.Event()

    def stick() -> None:
        stuck.set()
        release.wait(30)

    async def one_beat_later() -> None:
        await asyncio.sleep(2 * HEARTBEAT_SECONDS)

    await threaded.call(one_beat_later())
    threaded.loop.call_soon_threadsafe(stick)
    assert await asyncio.to_thread(stuck.wait, 5)
    try:
        for _ in range(250):
            if threaded.behind() >= 0.3:
                break
            await asyncio.sleep(0.02)
        assert threaded.behind() >= 0.3
    finally:
        release.set()
    await threaded.call(one_beat_later())
    assert threaded.behind() < 0.3, "caught up once it runs again"
    assert WorkLoop.same_loop().behind() == 0.0


def test_forms_opening_reports_the_oldest_wait_and_forgets_opened_ones() -> None:
    now = [100.0]
    forms = FormsOpening(clock=lambda: now[0])
    assert forms.oldest_wait() == 0.0
    first = forms.add()
    now[0] += 1.0
    second = forms.add()
    now[0] += 0.5
    assert forms.oldest_wait() == 1.5
    forms.opened(first)
    forms.opened(first)  # once more: nothing changes
    assert forms.oldest_wait() == 0.5
    forms.opened(second)
    assert forms.oldest_wait() == 0.0


def test_forms_opening_expects_the_line_over_the_recent_pace_never_under_the_floor() -> None:
    now = [100.0]
    forms = FormsOpening(clock=lambda: now[0])
    assert forms.expected_wait() == 0.0
    waiting = [forms.add() for _ in range(100)]
    # Nothing opened lately: the bot is assumed to open FORMS_PER_SECOND_FLOOR a second.
    assert forms.expected_wait() == 100 / FORMS_PER_SECOND_FLOOR
    for ticket in waiting[:80]:
        now[0] += 0.01  # 80 forms open within 0.8 s: the pace is 80 a second
        forms.opened(ticket)
        forms.opened(ticket)  # once more: counted once
    more = [forms.add() for _ in range(140)]
    assert forms.expected_wait() == (20 + 140) / 80
    now[0] += 0.7  # all but the last 30 or so openings are now over a second old: a pace
    assert forms.expected_wait() == (20 + 140) / FORMS_PER_SECOND_FLOOR  # under the floor
    for ticket in waiting[80:] + more:
        forms.opened(ticket)
    assert forms.expected_wait() == 0.0

"""Where the bot's work runs, apart from where Slack's requests are acknowledged.

Slack waits 3 seconds for an ack, and Bolt answers one only when its 10 ms poll finds the
listener's ``ack()``. On one event loop that poll waits behind every ready callback of the bot's
own work (modals, previews, executions): at 200 commands/s in ``bench/`` the ack p99 was 19.0 ms
against 11.4 for bare Bolt. ``serve`` can therefore run the service (database, Slack and Atlas
clients, executions, sweeper) on a loop of its own in a second thread, and the HTTP server and Bolt
on the main thread's loop (12.5 ms then); by default it runs the service in a process of its own
(bot.work_process), which :class:`Work` hides from the listeners. Python hands the interpreter lock to a waiting thread
after :data:`GIL_SWITCH_SECONDS`, so an ack waits for that, not for the other loop's backlog.

Acks no longer slow down when the work falls behind, so the listeners ask :meth:`WorkLoop.behind`
before taking a command on (bot.slack.listeners). The tests run every flow both ways: on one loop
(:meth:`WorkLoop.same_loop`) and with the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["GIL_SWITCH_SECONDS", "HEARTBEAT_SECONDS", "LocalWork", "Work", "WorkLoop", "finish_or_cancel"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# CPython's default is 5 ms, and an ack takes the lock several times (the request in, the
# listener, the poll's wake-up). At 200 commands/s in bench/ the ack p99 was 25.4 ms with 1 ms
# (bare Bolt: 12.4), 13.3 and 13.5 with 0.2 ms, 12.5 with 0.1 ms. Only contending threads switch.
GIL_SWITCH_SECONDS = 0.0001

# How often the work loop notes that it is running callbacks; how far behind it is shows as the
# age of that note (see WorkLoop.behind).
HEARTBEAT_SECONDS = 0.05


async def finish_or_cancel(tasks: set[asyncio.Task[Any]], timeout: float, *, grace: float) -> int:
    """Wait up to ``timeout`` for ``tasks`` (a live set: finished ones leave it), cancel those still
    running, and give them ``grace`` seconds to unwind; returns how many were cancelled."""
    if tasks:
        await asyncio.wait(list(tasks), timeout=timeout)
    remaining = list(tasks)
    for task in remaining:
        task.cancel()
    if remaining:
        await asyncio.wait(remaining, timeout=grace)
    return len(remaining)


class WorkLoop:
    """Runs coroutines on the loop that owns the service's clients, from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread | None = None) -> None:
        self.loop = loop
        self._thread = thread
        self._tasks: set[asyncio.Task[Any]] = set()
        # Submitted and not finished, counted from the submitting thread on (a task exists only
        # once the work loop has started it).
        self._unfinished = 0
        self._count_lock = threading.Lock()
        self._beat = time.monotonic()
        self._heartbeat: asyncio.Task[None] | None = None

    @classmethod
    def same_loop(cls) -> WorkLoop:
        """The caller's own running loop: work runs beside the acks (tests, and embedding)."""
        return cls(asyncio.get_running_loop())

    @classmethod
    def start_thread(cls, loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> WorkLoop:
        """A new loop from ``loop_factory`` running in a daemon thread until :meth:`stop`."""
        started = threading.Event()
        loop = loop_factory()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="atlas-chatops-work", daemon=True)
        thread.start()
        started.wait()
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        work = cls(loop, thread)
        loop.call_soon_threadsafe(work._start_heartbeat)
        return work

    def _start_heartbeat(self) -> None:
        async def beat() -> None:
            while True:
                self._beat = time.monotonic()
                await asyncio.sleep(HEARTBEAT_SECONDS)

        self._heartbeat = self.loop.create_task(beat())

    def behind(self) -> float:
        """Seconds the work loop is behind: how long a callback submitted now would wait at least
        before it runs. Always 0 on the same loop (whoever asks is running on it)."""
        if self._thread is None:
            return 0.0
        return max(0.0, time.monotonic() - self._beat - HEARTBEAT_SECONDS)

    @property
    def threaded(self) -> bool:
        return self._thread is not None

    def submit(self, coro: Coroutine[Any, Any, None]) -> None:
        """Start ``coro`` on the work loop and return at once; the caller's context (log binding)
        goes with it. Failures must be handled inside ``coro``: nobody waits for it."""
        context = contextvars.copy_context()
        with self._count_lock:
            self._unfinished += 1
        if self._thread is None:
            self._start(coro, context)
        else:
            self.loop.call_soon_threadsafe(self._start, coro, context)

    def _start(self, coro: Coroutine[Any, Any, None], context: contextvars.Context) -> None:
        task = self.loop.create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    @property
    def idle(self) -> bool:
        """Nothing submitted is still to finish."""
        return self._unfinished == 0

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        with self._count_lock:
            self._unfinished -= 1
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("work after an ack failed: %s", type(exc).__name__, exc_info=exc)

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the work loop and wait for its result (or exception) from this loop.
        Cancelling the wait cancels ``coro``."""
        if self._thread is None:
            return await coro
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(future)

    async def finish(self, timeout: float) -> int:
        """On the work loop: wait up to ``timeout`` for the work submitted so far (a submission
        being stored, a modal being filled in), then cancel what is left; returns how many were."""
        return await finish_or_cancel(self._tasks, timeout, grace=1.0)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread's loop (after :meth:`call`-ing whatever must finish first)."""
        if self._thread is None:
            return
        if self._heartbeat is not None:
            self.loop.call_soon_threadsafe(self._heartbeat.cancel)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)


class Work(Protocol):
    """What the ack side asks of the work side, by the name of a handler's method (see
    bot.slack.after_ack) and plain arguments, wherever that side runs."""

    def submit(self, name: str, /, *args: Any, **kwargs: Any) -> None:
        """Start the handler's ``name`` and return at once (it reports its own failures)."""

    async def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Run the handler's ``name`` and wait for its result; cancelling the wait cancels it."""

    def behind(self) -> float:
        """Seconds the work side is behind (see :meth:`WorkLoop.behind`)."""

    async def metrics_text(self) -> bytes | None:
        """The work side's metrics in the text format, when it keeps its own (another process)."""


class LocalWork:
    """:class:`Work` on a :class:`WorkLoop` of this process: the handler's coroutine is made here
    and run there."""

    def __init__(self, loop: WorkLoop, handlers: object) -> None:
        self.loop = loop
        self.handlers = handlers

    def submit(self, name: str, /, *args: Any, **kwargs: Any) -> None:
        self.loop.submit(getattr(self.handlers, name)(*args, **kwargs))

    async def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        return await self.loop.call(getattr(self.handlers, name)(*args, **kwargs))

    def behind(self) -> float:
        return self.loop.behind()

    async def metrics_text(self) -> bytes | None:
        return None  # one registry, shared with the service

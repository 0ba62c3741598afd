"""The work side in a process of its own, so that acks never wait for its interpreter lock.

With the work on a second thread (bot.work_loop) both threads share one interpreter lock: at 200
commands/s in ``bench/`` an ack still took 1.3-1.4x bare Bolt's p99, 1.3-1.6x its idle p99 while
200 slow executions were in flight, and the bot acked at most 700 commands/s with p99 under
100 ms against bare Bolt's 3,000. ``serve`` therefore starts ``python -m bot.work_process`` beside
itself: it builds the service (database, Slack and Atlas clients, executions, sweeper) and runs
:class:`bot.slack.after_ack.AfterAck`'s methods as the ack side (:class:`WorkProcess`) names them.

The two talk over a socket pair that only they hold, in frames of a 4-byte length and a pickle of a
tuple of plain values (strings, dicts, the small frozen input dataclasses). The work side sends a
heartbeat every :data:`HEARTBEAT_SECONDS` (how far behind it is, as on the thread), and each form's
ticket once it has opened. It dies with the ack side (``PR_SET_PDEATHSIG``), finishes its work and
exits when the socket closes, and ignores SIGINT and SIGTERM: the ack side drains it on shutdown.
If it dies, the ack side logs it and ``serve`` exits non-zero for its supervisor to restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import logging
import os
import pickle
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from bot.errors import ChatOpsError, ConfigurationError, StoreUnavailable
from bot.work_loop import HEARTBEAT_SECONDS, finish_or_cancel

__all__ = ["WorkProcess", "WorkSideError", "WorkSideGone"]

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
# Building the service imports everything and may wait for the database; past this, serve gives up.
START_TIMEOUT_SECONDS = 60.0
_PR_SET_PDEATHSIG = 1


class WorkSideError(Exception):
    """A call on the work side raised something other than a ChatOpsError (logged there)."""


class WorkSideGone(ChatOpsError):
    """The work process is no longer there: nothing more can be done until serve restarts."""


def _frame(message: tuple[Any, ...]) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


async def _read(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next message, or None once the other side has closed the socket."""
    try:
        (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        # Only serve and the process it started hold this socket pair: nothing untrusted is unpickled.
        message: tuple[Any, ...] = pickle.loads(await reader.readexactly(length))  # noqa: S301
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return message


# ---------------------------------------------------------------------------------- the ack side


class WorkProcess:
    """:class:`bot.work_loop.Work` over the socket to ``python -m bot.work_process``."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        form_opened: Callable[[int], None],
    ) -> None:
        self.process = process
        self._reader, self._writer = reader, writer
        self._form_opened = form_opened
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._beat: float | None = None
        self.gone = asyncio.Event()  # the work process has exited or closed its socket
        self._reading: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        environ: Mapping[str, str],
        *,
        form_opened: Callable[[int], None],
        start_timeout: float = START_TIMEOUT_SECONDS,
        stderr: IO[bytes] | None = None,
    ) -> WorkProcess:
        """Start the work process with ``environ`` (its whole configuration) and wait until its
        service is built; a ConfigurationError or any failure to start is raised here. Its log
        goes to ``stderr`` (this process's own by default)."""
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.work_process",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                env=dict(environ),
                stdin=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        work = cls(process, reader, writer, form_opened=form_opened)
        try:
            first = await asyncio.wait_for(_read(reader), start_timeout)
        except TimeoutError:
            first = None
        if first is None or first[0] != "ready":
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            writer.close()
            if first is not None and first[0] == "failed":
                _, configuration, text = first
                raise ConfigurationError(text) if configuration else ChatOpsError(text)
            raise ChatOpsError(f"the work process did not start (exit code {process.returncode})")
        work._beat = time.monotonic()
        work._reading = asyncio.get_running_loop().create_task(work._read_forever())
        return work

    async def _read_forever(self) -> None:
        while (message := await _read(self._reader)) is not None:
            kind = message[0]
            if kind == "beat":
                self._beat = message[1]
            elif kind == "form_opened":
                self._form_opened(message[1])
            elif kind == "result":
                _, call_id, ok, value = message
                future = self._calls.pop(call_id, None)
                if future is not None and not future.done():
                    if ok:
                        future.set_result(value)
                    else:
                        chatops, name, text = value
                        future.set_exception(ChatOpsError(text) if chatops else WorkSideError(name))
        self.gone.set()
        for future in self._calls.values():
            if not future.done():
                future.set_exception(WorkSideGone("The bot's work process has stopped; nothing was done."))
        self._calls.clear()

    def _send(self, message: tuple[Any, ...]) -> None:
        if self.gone.is_set() or self._writer.is_closing():
            raise WorkSideGone("The bot's work process has stopped; nothing was done.")
        self._writer.write(_frame(message))

    def submit(self, name: str, /, *args: Any, **kwargs: Any) -> None:
        self._send(("submit", name, args, kwargs))

    async def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        try:
            self._send(("call", call_id, name, args, kwargs))
            return await future
        except asyncio.CancelledError:
            if self._calls.pop(call_id, None) is not None:
                with contextlib.suppress(WorkSideGone):
                    self._send(("cancel", call_id))
            raise
        finally:
            self._calls.pop(call_id, None)

    def behind(self) -> float:
        # Once the work process is gone its last beat only gets older: commands are refused as busy.
        if self._beat is None:
            return 0.0
        return max(0.0, time.monotonic() - self._beat - HEARTBEAT_SECONDS)

    async def metrics_text(self) -> bytes | None:
        text: bytes = await self.call("metrics_text")
        return text

    async def finish(self, timeout: float) -> int:
        """Wait up to ``timeout`` for what was handed over so far, then cancel the rest (their number)."""
        cancelled: int = await self.call("finish", timeout)
        return cancelled

    async def close(self, *, drain_seconds: float) -> int | None:
        """Drain the work side (executions get ``drain_seconds``) and wait for it to exit; its exit code."""
        if not self.gone.is_set():
            with contextlib.suppress(WorkSideGone, WorkSideError):
                await self.call("shutdown", drain_seconds)
            self._writer.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10.0)
        except TimeoutError:
            log.warning("the work process did not exit after its shutdown: killed")
            self.process.kill()
            await self.process.wait()
        if self._reading is not None:
            await self._reading
        return self.process.returncode


# --------------------------------------------------------------------------------- the work side


class _Server:
    """Runs what the ack side names: AfterAck's methods, and the few below about the process."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._tasks: set[asyncio.Task[Any]] = set()  # submitted, not finished
        self._calls: dict[int, asyncio.Task[Any]] = {}
        self.handlers: Any = None
        self.side: Any = None
        self.shut_down = asyncio.Event()

    def send(self, message: tuple[Any, ...]) -> None:
        if not self._writer.is_closing():
            self._writer.write(_frame(message))

    async def beat(self) -> None:
        while True:
            self.send(("beat", time.monotonic()))
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "submit":
            _, name, args, kwargs = message
            task = asyncio.get_running_loop().create_task(getattr(self.handlers, name)(*args, **kwargs))
            self._tasks.add(task)
            task.add_done_callback(self._submitted_done)
        elif kind == "call":
            _, call_id, name, args, kwargs = message
            task = asyncio.get_running_loop().create_task(self._answer(call_id, name, args, kwargs))
            self._calls[call_id] = task
        elif kind == "cancel" and (running := self._calls.get(message[1])) is not None:
            running.cancel()

    def _submitted_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("work after an ack failed: %s", type(exc).__name__, exc_info=exc)

    async def _answer(self, call_id: int, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            value = await self._run(name, args, kwargs)
        except asyncio.CancelledError:
            return
        except ChatOpsError as exc:
            self.send(("result", call_id, False, (True, type(exc).__name__, exc.user_message)))
        except Exception as exc:
            log.error("a call from the ack side failed: %s", type(exc).__name__, exc_info=exc)
            self.send(("result", call_id, False, (False, type(exc).__name__, "")))
        else:
            self.send(("result", call_id, True, value))
        finally:
            self._calls.pop(call_id, None)

    async def _run(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if name == "metrics_text":
            return self.side.metrics.render(work_side_only=True)
        if name == "finish":
            return await finish_or_cancel(self._tasks, args[0], grace=1.0)
        if name == "shutdown":
            await self.side.shutdown(drain_seconds=args[0])
            self.shut_down.set()
            return None
        return await getattr(self.handlers, name)(*args, **kwargs)


async def _ensure_schema_in_child(environ: Mapping[str, str]) -> None:
    """:func:`bot.schema.ensure_schema` in a short-lived ``python -m bot.schema``.

    This process lives as long as serve: Alembic's modules, which a migration or a revision check
    loads, would stay resident for nothing (about 12 MB). The child takes its settings from
    ``environ`` (no URL on a command line) and answers with one JSON line on stdout; its log goes
    where this process's does. Raises what ensure_schema would."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.schema",
        env=dict(environ),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode == 0:
        return
    try:
        answer = json.loads(out.decode().strip().splitlines()[-1])
        configuration, message = bool(answer["configuration"]), str(answer["message"])
    except (ValueError, IndexError, KeyError, TypeError):
        raise StoreUnavailable(
            f"Checking the database schema failed: python -m bot.schema exited with {child.returncode} "
            "(its log above says why)."
        ) from None
    raise (ConfigurationError if configuration else StoreUnavailable)(message)


def _die_with_parent() -> None:
    """Linux: be killed when the process that started us dies (a SIGKILLed serve leaves no worker
    executing on). Elsewhere the closed socket still stops the work side, after a drain."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


async def _serve(sock: socket.socket, environ: Mapping[str, str]) -> None:
    from bot.logs import pin_slack_library_levels
    from bot.loop import freeze_start_up_objects, space_out_full_collections
    from bot.settings import Settings
    from bot.slack.after_ack import AfterAck
    from bot.work_side import build_work_side

    reader, writer = await asyncio.open_unix_connection(sock=sock)
    server = _Server(writer)
    try:
        settings = Settings.from_environ(environ)
        await _ensure_schema_in_child(environ)
        side = build_work_side(settings, environ=environ)
    except ChatOpsError as exc:
        server.send(("failed", isinstance(exc, ConfigurationError), exc.user_message))
        await writer.drain()
        return
    side.start_sweeper()
    pin_slack_library_levels()
    server.side = side
    server.handlers = AfterAck(side.service, form_opened=lambda ticket: server.send(("form_opened", ticket)))
    freeze_start_up_objects()
    space_out_full_collections()
    server.send(("ready",))
    beating = asyncio.get_running_loop().create_task(server.beat())
    while (message := await _read(reader)) is not None:
        server.handle(message)
        if server.shut_down.is_set():
            break
    if not server.shut_down.is_set():
        # The ack side went away without a shutdown (it crashed or was stopped without one).
        await finish_or_cancel(server._tasks, 5.0, grace=1.0)
        await side.shutdown(drain_seconds=20.0)
    beating.cancel()
    writer.close()


def main(argv: list[str]) -> int:
    _die_with_parent()
    # The ack side (serve) handles these and drains this process; a Ctrl-C reaching the whole
    # process group must not stop executions here first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from bot.logs import configure_logging
    from bot.loop import event_loop_factory
    from bot.settings import Settings

    environ = dict(os.environ)
    sock = socket.socket(fileno=int(argv[0]))
    try:
        settings = Settings.from_environ(environ)
    except ChatOpsError:
        return 2  # serve has read the same settings already and said what is wrong
    configure_logging(level=settings.log_level, fmt=settings.log_format, secrets=settings.secret_values(environ))
    # An ack costs a fraction of what follows it (bench/: about 0.3 of 3 ms of CPU per command) and
    # Slack gives it 3 s, and /healthz answers from serve too: when both processes want the CPU,
    # serve's must not queue behind this one's backlog. On an idle machine this changes nothing.
    # Bench, SQLite, same machine, one run each: the highest rate acked with p99 under 100 ms went
    # from 2,250 to 2,750 commands/s, and the forms still all opened in 3 s up to 450/s in both.
    with contextlib.suppress(OSError):
        os.nice(settings.work_niceness)
    with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
        runner.run(_serve(sock, environ))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

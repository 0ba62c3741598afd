"""The system under test for one benchmark run, and the instruments around it.

Processes (each its own interpreter, so none of them steals the others' event loop):

* the bot: ``python -m bot serve`` in HTTP mode, configured only through its environment;
* the baseline: ``python -m bench.baseline``, a bare Bolt app on the same server stack;
* the load generator: ``python -m bench.load``, fed jobs over a pipe;
* this process: the fake Slack Web API and the fake Atlas on loopback, plus the orchestration.

The fakes are the test suite's own (:mod:`tests.fakes`), subclassed only to observe: the fake
Slack already stamps each call with ``time.monotonic()``; the Atlas one is given the same stamp,
and both tell a :class:`Watch` about the calls the benchmark correlates (views.open by
trigger_id, approval posts by IdP id, result posts by thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiohttp import web
from sqlalchemy import insert, update

from bot.actions import ExecutionContext
from bot.atlas import AtlasClient, AtlasSettings
from bot.db import create_engine
from bot.preview import Preview
from bot.requests import RequestState
from bot.store import TransitionEvent, action_requests, audit_events
from commands import load_registry
from tests.db import Backend, drop_database, make_database
from tests.fakes.fake_atlas import FakeAtlas
from tests.fakes.fake_slack import FakeSlack, FakeSlackCall
from tests.slack_requests import TEAM_ID

__all__ = [
    "APPROVERS",
    "BENCH_CHANNELS",
    "REQUESTERS",
    "LoadClient",
    "LoadResult",
    "ServerProcess",
    "Stack",
    "Watch",
    "running_stack",
]

SIGNING_SECRET = "bench-signing-secret-9b2e71"
BOT_TOKEN = "xoxb-bench-bot-token-41c7"
# Many requesters and channels, as in a real workspace: the rate-limit counts the bot runs per
# command are index range scans per user and per channel, and funnelling thousands of benchmark
# requests through one user would make them grow in a way no real incident does.
REQUESTERS = tuple(f"U0REQ{i:03d}" for i in range(50))
BENCH_CHANNELS = tuple(f"C0BENCH{i:02d}" for i in range(20))
APPROVERS = tuple(f"U0APR{i:02d}" for i in range(10))
SEED_CHANNELS = tuple(f"C0SEED{i:02d}" for i in range(40))
SEED_USERS = tuple(f"U0SEED{i:03d}" for i in range(200))
APPROVER_GROUP = "atlas-approvers"
# Results the bot posts in a request's thread once Atlas answered (ChatOps.result_text).
RESULT_PREFIXES = (":white_check_mark: Done", ":x:", ":grey_question:")
_HEX24 = re.compile(r"[0-9a-f]{24}")


def policy_document() -> dict[str, Any]:
    """The policy the bot runs with: the real shape, limits high enough for a load test."""
    rule = {"request": ["oncall"], "approve": ["approver"], "approvals": 1}
    return {
        "roles": {"oncall": [*REQUESTERS, *SEED_USERS], "approver": [f"@{APPROVER_GROUP}"]},
        "actions": {"revoke-jwks": rule},
        # A full run lasts longer than the default 30 minutes; nothing must expire under it.
        "approval_ttl_minutes": 24 * 60,
        "service_accounts": {
            "default": {"client_id_env": "MONGODB_ATLAS_CLIENT_ID", "client_secret_env": "MONGODB_ATLAS_CLIENT_SECRET"}
        },
        "rate_limits": {"per_user_per_hour": 1_000_000, "per_channel_per_hour": 1_000_000},
    }


# ---------------------------------------------------------------------------------- observing


class Watch:
    """What the fake Slack saw that the benchmark needs, kept small (times and ids, not payloads)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.opened: dict[str, float] = {}  # trigger_id -> views.open arrival
        self.results: dict[str, tuple[float, bool]] = {}  # thread_ts -> (arrival, succeeded)
        self._views: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._approvals: dict[str, asyncio.Future[FakeSlackCall]] = {}
        self.on_result: Callable[[str], None] | None = None

    def clear(self) -> None:
        self.counts.clear()
        self.failures.clear()
        self.opened.clear()
        self.results.clear()

    def expect_view(self, trigger_id: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._views[trigger_id] = future
        return future

    def expect_approval_post(self, idp_id: str) -> asyncio.Future[FakeSlackCall]:
        future: asyncio.Future[FakeSlackCall] = asyncio.get_running_loop().create_future()
        self._approvals[idp_id] = future
        return future

    def see(self, call: FakeSlackCall) -> None:
        self.counts[call.method] += 1
        if not call.ok:
            self.failures[f"{call.method}:{call.error}"] += 1
            return
        if call.method == "views.open":
            trigger_id = str(call.args.get("trigger_id", ""))
            self.opened[trigger_id] = call.received_at
            view_future = self._views.pop(trigger_id, None)
            if view_future is not None and not view_future.done():
                view_future.set_result(call.args["view"])
        elif call.method == "chat.postMessage":
            thread_ts = call.args.get("thread_ts")
            if thread_ts:
                text = str(call.args.get("text", ""))
                if text.startswith(RESULT_PREFIXES):
                    self.results[str(thread_ts)] = (call.received_at, text.startswith(RESULT_PREFIXES[0]))
                    if self.on_result is not None:
                        self.on_result(str(thread_ts))
            elif self._approvals:
                for idp_id in set(_HEX24.findall(json.dumps(call.args.get("blocks", "")))):
                    post_future = self._approvals.pop(idp_id, None)
                    if post_future is not None and not post_future.done():
                        post_future.set_result(call)


class ObservedSlack(FakeSlack):
    """The test suite's fake Slack, telling a :class:`Watch` about every call it records."""

    def __init__(self, watch: Watch, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watch = watch

    def _record(self, call: FakeSlackCall) -> None:
        super()._record(call)
        self.watch.see(call)


@dataclass(frozen=True, slots=True)
class AtlasArrival:
    arrived: float
    answered: float
    method: str
    path: str
    status: int


class TimedAtlas(FakeAtlas):
    """The test suite's fake Atlas, stamping each API request with its arrival time.

    The base class keeps headers and bodies of every request; for tens of thousands of requests
    that is memory this process does not need, so only the stamps are kept.
    """

    def __init__(self) -> None:
        super().__init__(record_requests=False)
        self.arrivals: list[AtlasArrival] = []
        self.in_flight = 0

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        path = request.rel_url.raw_path
        if not path.startswith("/api/atlas/"):
            return await super()._dispatch(request)
        self.in_flight += 1
        try:
            response = await super()._dispatch(request)
        finally:
            self.in_flight -= 1
        self.arrivals.append(AtlasArrival(arrived, time.monotonic(), request.method, path, response.status))
        return response


# ---------------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A child process serving HTTP, with the /proc figures the report needs."""

    name: str
    process: asyncio.subprocess.Process
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        """The process and its descendants (the bot's work process, see bot.work_process)."""
        found, queue = [], [self.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    queue.extend(int(child) for child in (task / "children").read_text().split())
        return found

    def cpu_seconds(self) -> float:
        """CPU time of the process and its descendants alive now."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                # utime + stime, fields 14 and 15 of /proc/PID/stat (after the parenthesised command name).
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def memory_kib_by_process(self, key: str) -> list[tuple[str, int]]:
        """``key`` of /proc/PID/status (VmRSS, VmHWM) for the process and each descendant, named by
        the module or subcommand it runs (``serve``, ``bot.work_process``)."""
        found = []
        for pid in self.pids():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
                name = next((a for a in argv if a.startswith("bot.") or a == "serve"), Path(argv[0]).name)
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(f"{key}:"):
                        found.append((name, int(line.split()[1])))
        return found

    def memory_kib(self, key: str) -> int:
        """``key`` summed over the process and its descendants: for VmHWM, the sum of each one's own
        peak (never less than what they held at once)."""
        found = self.memory_kib_by_process(key)
        if not found:
            raise KeyError(key)
        return sum(kib for _, kib in found)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def warnings(self) -> Counter[str]:
        """WARNING/ERROR lines the process logged, by logger and first words (never the full text)."""
        found: Counter[str] = Counter()
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                # "<time> LEVEL logger [request id]: message" (the id is absent in older formats)
                match = re.search(r" (WARNING|ERROR) ([\w.]+)(?: \[[^\]]*\])?: (.{0,60})", line)
                if match:
                    found[f"{match.group(1)} {match.group(2)}: {match.group(3)}"] += 1
        return found

    async def stop(self) -> int | None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode


async def start_server(
    name: str, args: list[str], env: dict[str, str], port: int, workdir: Path, *, ready_within: float = 30.0
) -> ServerProcess:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *args, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=workdir
        )
    server = ServerProcess(name=name, process=process, url=f"http://127.0.0.1:{port}", log_path=log_path)
    deadline = time.monotonic() + ready_within
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} on start:\n{server.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{server.url}/healthz")).status_code == 200:
                    return server
            await asyncio.sleep(0.1)
    await server.stop()
    raise RuntimeError(f"{name} did not answer /healthz within {ready_within:.0f} s:\n{server.log_tail()}")


@dataclass
class LoadResult:
    sent: list[float]
    done: list[float]
    status: list[int]
    lag: list[float]
    errors: dict[str, int]

    @property
    def ok(self) -> list[int]:
        """Indexes of requests answered 200."""
        return [i for i, s in enumerate(self.status) if s == 200]

    def latencies(self) -> list[float]:
        return [self.done[i] - self.sent[i] for i in self.ok]


class LoadClient:
    """The driver's end of the pipe to the load process (:mod:`bench.load`)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, env: dict[str, str]) -> LoadClient:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.load",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            # One result line holds thousands of timings; the default 64 KiB line limit is too small.
            limit=1 << 28,
        )
        return cls(process)

    async def run(
        self, url: str, bodies: list[bytes], *, rate: float | None = None, concurrency: int | None = None
    ) -> LoadResult:
        job: dict[str, Any] = {
            "url": url,
            "secret": SIGNING_SECRET,
            "bodies": [b.decode("utf-8") for b in bodies],
            "mode": "open" if rate is not None else "closed",
            "rate": rate,
            "concurrency": concurrency,
        }
        assert self.process.stdin is not None and self.process.stdout is not None
        async with self._lock:
            self.process.stdin.write(json.dumps(job).encode() + b"\n")
            await self.process.stdin.drain()
            line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the load process exited ({self.process.returncode})")
        data = json.loads(line)
        results = data["results"]
        return LoadResult(
            sent=[r[0] for r in results],
            done=[r[1] for r in results],
            status=[r[2] for r in results],
            lag=data["lag"],
            errors=data["errors"],
        )

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout=10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


# ---------------------------------------------------------------------------------- database


async def seed_pending(database_url: str, count: int, *, preview: Preview, target: dict[str, str], label: str) -> None:
    """``count`` pending requests written straight into the tables, as the bot would have stored
    them (same columns, a real preview), in bulk: through the bot it would take minutes."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    preview_json = preview.model_dump(mode="json", exclude={"evidence"})
    try:
        for start in range(0, count, 1000):
            rows, events = [], []
            for i in range(start, min(count, start + 1000)):
                request_id = f"{i:08d}{'5eed' * 6}"
                created = now - timedelta(seconds=count - i)
                rows.append(
                    {
                        "id": request_id,
                        "action": "revoke-jwks",
                        "target": target,
                        "target_label": label,
                        "requester_id": SEED_USERS[i % len(SEED_USERS)],
                        "requester_team_id": TEAM_ID,
                        "channel_id": SEED_CHANNELS[i % len(SEED_CHANNELS)],
                        "reason": f"Seeded pending request {i} for the benchmark (incident INC-{i % 97})",
                        "state": RequestState.PENDING.value,
                        "approvals_required": 1,
                        "approval_count": 0,
                        "created_at": created,
                        "updated_at": created,
                        # Past the end of any run, so the sweeper never expires them mid-benchmark.
                        "expires_at": now + timedelta(days=1),
                        "preview": preview_json,
                        "preview_digest": preview.digest,
                    }
                )
                events.append(
                    {
                        "request_id": request_id,
                        "at": created,
                        "actor_id": rows[-1]["requester_id"],
                        "event": TransitionEvent.REQUESTED.value,
                        "channel_id": rows[-1]["channel_id"],
                        "detail": {"action": "revoke-jwks", "target_label": label, "approvals_required": 1},
                    }
                )
            async with engine.begin() as conn:
                await conn.execute(insert(action_requests), rows)
                await conn.execute(insert(audit_events), events)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    backend: Backend
    database_url: str
    workdir: Path
    watch: Watch
    slack: ObservedSlack
    atlas: TimedAtlas
    federation_id: str
    bot: ServerProcess
    baseline: ServerProcess
    load: LoadClient
    http: httpx.AsyncClient
    seeded_pending: int
    idle_rss_kib: int = 0
    _idps: int = field(default=0)

    def new_idp(self) -> str:
        """A fresh OIDC IdP in the benchmark federation: one per request, so that an Atlas call
        can be traced back to the click that caused it."""
        self._idps += 1
        idp: dict[str, Any] = self.atlas.add_idp(self.federation_id, protocol="OIDC")
        return str(idp["id"])

    async def cancel_leftovers(self, request_ids: Collection[str]) -> int:
        """Cancel those of ``request_ids`` still pending or approved, straight in the database.

        Phase isolation: an approval the bot could not carry out within its cell would otherwise be
        executed by the sweeper (a few per pass) under the next cells' figures. The number cancelled
        is reported with the cell it belongs to.
        """
        if not request_ids:
            return 0
        engine = create_engine(self.database_url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(
                    update(action_requests)
                    .where(
                        action_requests.c.id.in_(list(request_ids)),
                        action_requests.c.state.in_([RequestState.PENDING.value, RequestState.APPROVED.value]),
                    )
                    .values(state=RequestState.CANCELLED.value)
                )
                return int(result.rowcount or 0)
        finally:
            await engine.dispose()

    def reset_observations(self) -> None:
        """Forget calls and stamps between phases (the fakes' seeded directory data stays)."""
        self.slack.reset()
        self.watch.clear()
        self.atlas.arrivals.clear()
        self.atlas.clear_faults()


async def _real_preview(atlas_env: dict[str, str], federation_id: str, idp_id: str) -> Preview:
    """The preview revoke-jwks shows for an IdP, read from the fake Atlas by the real command code."""
    spec = load_registry()["revoke-jwks"]
    args = spec.validate({"federation_settings_id": federation_id, "identity_provider_id": idp_id})
    async with AtlasClient.from_settings(AtlasSettings.model_validate(atlas_env)) as client:
        assert spec.preview is not None
        return await spec.preview(ExecutionContext(atlas=client), args)


def _clean_up(workdir: Path, *, keep_logs: Path | None, prefix: str) -> None:
    # Synchronous on purpose: it runs once, after every process of the run has stopped.
    if keep_logs is not None:
        keep_logs.mkdir(parents=True, exist_ok=True)
        for log in workdir.glob("*.log"):
            shutil.copy(log, keep_logs / f"{prefix}-{log.name}")
    shutil.rmtree(workdir, ignore_errors=True)


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    # Nothing of the caller's own Slack/Atlas/database configuration may leak into the children.
    prefixes = ("SLACK_", "MONGODB_ATLAS_", "DATABASE_URL", "ATLAS_CHATOPS_", "PORT", "HOST", "LOG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH", "")]))
    return {**env, **extra}


@contextlib.asynccontextmanager
async def running_stack(
    backend: Backend,
    *,
    seed_pending_count: int,
    bot_command: Sequence[str] | None = None,
    keep_logs: Path | None = None,
) -> AsyncIterator[Stack]:
    """Fakes, a fresh database with ``seed_pending_count`` pending requests, the bot, the baseline
    and the load process; all of it torn down (database dropped) on the way out.

    ``bot_command`` replaces ``python -m bot serve`` (arguments after the interpreter), e.g. to run
    a patched build for an A/B comparison; ``keep_logs`` is a folder to copy the servers' logs to.
    """
    watch = Watch()
    slack = ObservedSlack(watch, bot_token=BOT_TOKEN)
    api_url = await slack.start()
    slack.add_usergroup(id="S0APPROVERS", handle=APPROVER_GROUP, users=list(APPROVERS))
    atlas = TimedAtlas()
    atlas_url = await atlas.start()
    demo = atlas.seed_demo()
    federation_id = str(demo["federationSettingsId"])
    atlas_env = {
        "MONGODB_ATLAS_BASE_URL": atlas_url,
        "MONGODB_ATLAS_CLIENT_ID": demo["serviceAccount"]["clientId"],
        "MONGODB_ATLAS_CLIENT_SECRET": demo["serviceAccount"]["secret"],
    }
    database_url = await make_database(backend)
    workdir = Path(tempfile.mkdtemp(prefix="acops-bench-"))
    started: list[ServerProcess] = []
    load: LoadClient | None = None
    try:
        seed_idp = str(atlas.add_idp(federation_id, protocol="OIDC")["id"])
        preview = await _real_preview(atlas_env, federation_id, seed_idp)
        await seed_pending(
            database_url,
            seed_pending_count,
            preview=preview,
            target={"federation_settings_id": federation_id, "identity_provider_id": seed_idp},
            label=f"IdP {seed_idp} (federation {federation_id})",
        )
        policy_path = workdir / "policy.yml"
        policy_path.write_text(yaml.safe_dump(policy_document()))
        common = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": api_url,
            "SLACK_TEAM_ID": TEAM_ID,
            "HOST": "127.0.0.1",
        }
        bot_port, baseline_port = _free_port(), _free_port()
        bot_env = _child_env(
            {
                **common,
                **atlas_env,
                "PORT": str(bot_port),
                "DATABASE_URL": database_url,
                "ATLAS_CHATOPS_POLICY": str(policy_path),
                "ATLAS_CHATOPS_REPLICA_ID": "bench-bot",
            }
        )
        bot_args = list(bot_command) if bot_command else ["-m", "bot", "serve"]
        bot = await start_server("bot", bot_args, bot_env, bot_port, workdir)
        started.append(bot)
        baseline_env = _child_env({**common, "PORT": str(baseline_port)})
        baseline = await start_server("baseline", ["-m", "bench.baseline"], baseline_env, baseline_port, workdir)
        started.append(baseline)
        load = await LoadClient.start(_child_env({}))
        async with httpx.AsyncClient(timeout=30) as http:
            yield Stack(
                backend=backend,
                database_url=database_url,
                workdir=workdir,
                watch=watch,
                slack=slack,
                atlas=atlas,
                federation_id=federation_id,
                bot=bot,
                baseline=baseline,
                load=load,
                http=http,
                seeded_pending=seed_pending_count,
                idle_rss_kib=bot.memory_kib("VmRSS"),
            )
    finally:
        if load is not None:
            await load.stop()
        for server in reversed(started):
            await server.stop()
        await slack.stop()
        await atlas.stop()
        await drop_database(database_url)
        _clean_up(workdir, keep_logs=keep_logs, prefix=backend)

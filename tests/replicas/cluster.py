"""Several real ``python -m bot serve`` processes sharing one PostgreSQL database.

Each replica is a separate OS process with its own port and ``ATLAS_CHATOPS_REPLICA_ID``; Slack's
side is played by signed requests from this process, and the Slack Web API and Atlas are the
recording fakes served from this process's event loop. Nothing inside the bot is patched: what the
tests observe is what the processes did to the database, to fake Atlas and to fake Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.requests import ActionRequest, NewActionRequest, RequestState
from bot.store import Store, action_requests, audit_events
from commands import load_registry
from tests.fakes.fake_atlas import FakeAtlas
from tests.fakes.fake_slack import FakeSlack, FakeSlackCall
from tests.slack_requests import TEAM_ID, block_actions, plain_text_value, sign, slash_command, view_submission

__all__ = [
    "ALICE",
    "BOB",
    "CHANNEL",
    "SIGNING_SECRET",
    "Cluster",
    "Replica",
    "Requested",
    "atlas_writes",
    "audit_counts",
    "state_counts",
]

SIGNING_SECRET = "replicas-signing-secret-0b7e"
BOT_TOKEN = "xoxb-replicas-bot-token-41aa"
CHANNEL = "C0INCIDENT"
ALICE, BOB = "U0ALICE", "U0BOB"
ROOT = Path(__file__).resolve().parents[2]

POLICY: dict[str, Any] = {
    "roles": {"oncall": [ALICE], "approver": ["@atlas-approvers"]},
    "actions": {
        name: {"request": ["oncall"], "approve": ["approver"], "approvals": 1}
        for name in ("revoke-jwks", "delete-idp", "delete-federation", "revoke-employee-access")
    },
    "approval_ttl_minutes": 60,
    "rate_limits": {"per_user_per_hour": 100_000, "per_channel_per_hour": 100_000},
}

# Atlas operations that change something: one of these per request is the exactly-once contract.
WRITE_OPERATIONS = frozenset(
    {
        "revokeFederationSettingIdentityProviderJwks",
        "deleteFederationSettingIdentityProvider",
        "deleteFederationSetting",
        "revokeGroupClusterMongoDbEmployeeAccess",
    }
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Replica:
    name: str
    port: int
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def log(self, tail: int = 60) -> str:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def signal(self, sig: signal.Signals) -> None:
        if self.alive:
            self.process.send_signal(sig)

    async def wait_exit(self, timeout: float) -> int:
        async with asyncio.timeout(timeout):
            return await self.process.wait()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


@dataclass
class Requested:
    request_id: str
    message_ts: str


@dataclass
class Cluster:
    """Starts replicas against ``database_url`` and the fakes; kills whatever is left at the end."""

    tmp_path: Path
    database_url: str
    fake_slack: FakeSlack
    fake_atlas: FakeAtlas
    http: aiohttp.ClientSession
    atlas_client_id: str
    atlas_client_secret: str
    replicas: list[Replica] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.policy_path = self.tmp_path / "policy.yml"
        self.policy_path.write_text(yaml.safe_dump(POLICY), encoding="utf-8")

    # ------------------------------------------------------------------ processes

    def environ(self, name: str, *, lease_seconds: float, sweep_seconds: float, database_url: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MONGODB_ATLAS_", "ATLAS_CHATOPS_"))}
        env.update(
            {
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": self.fake_slack.api_url,
                "SLACK_TEAM_ID": TEAM_ID,
                "HOST": "127.0.0.1",
                "DATABASE_URL": database_url,
                "MONGODB_ATLAS_BASE_URL": str(self.fake_atlas.base_url),
                "MONGODB_ATLAS_CLIENT_ID": self.atlas_client_id,
                "MONGODB_ATLAS_CLIENT_SECRET": self.atlas_client_secret,
                "ATLAS_CHATOPS_POLICY": str(self.policy_path),
                "ATLAS_CHATOPS_REPLICA_ID": name,
                "ATLAS_CHATOPS_LEASE_SECONDS": str(lease_seconds),
                "ATLAS_CHATOPS_SWEEP_SECONDS": str(sweep_seconds),
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        return env

    async def start(
        self,
        *names: str,
        lease_seconds: float = 30.0,
        sweep_seconds: float = 1.0,
        drain_seconds: float = 20.0,
        database_url: str | None = None,
        wait_healthy: bool = True,
    ) -> list[Replica]:
        """Start one process per name (concurrently) and wait until each answers ``/healthz``
        (unless told not to: for a start expected to fail)."""
        started: list[Replica] = []
        for name in names:
            port = free_port()
            log_path = self.tmp_path / f"{name}.log"
            with log_path.open("wb") as log_file:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    "serve",
                    "--port",
                    str(port),
                    "--drain-seconds",
                    str(drain_seconds),
                    cwd=self.tmp_path,
                    env=self.environ(
                        name,
                        lease_seconds=lease_seconds,
                        sweep_seconds=sweep_seconds,
                        database_url=database_url or self.database_url,
                    ),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=asyncio.subprocess.STDOUT,
                )
            replica = Replica(name=name, port=port, process=process, log_path=log_path)
            self.replicas.append(replica)
            started.append(replica)
        if wait_healthy:
            await asyncio.gather(*(self.wait_healthy(r) for r in started))
        return started

    async def healthz(self, replica: Replica) -> int | None:
        """``/healthz``'s status, or None when nothing listens."""
        try:
            async with self.http.get(f"{replica.url}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as response:
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def wait_healthy(self, replica: Replica, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.healthz(replica) != 200:
            if not replica.alive:
                code = replica.process.returncode
                raise AssertionError(f"replica {replica.name} exited with {code}:\n{replica.log()}")
            if loop.time() > deadline:
                raise AssertionError(f"replica {replica.name} not healthy after {timeout}s:\n{replica.log()}")
            await asyncio.sleep(0.1)

    async def kill_all(self) -> None:
        for replica in self.replicas:
            replica.signal(signal.SIGKILL)
        for replica in self.replicas:
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                await replica.wait_exit(10)

    # ------------------------------------------------------------------ Slack's side

    async def post(self, replica: Replica, body: bytes, *, headers: dict[str, str] | None = None) -> Answer:
        """POST a body to a replica's ``/slack/events``, signed now as Slack does (or with ``headers``)."""
        headers = headers if headers is not None else sign(body, SIGNING_SECRET)
        async with self.http.post(replica.events_url, data=body, headers=headers) as response:
            return Answer(status=response.status, body=await response.read())

    def approve_click(self, requested: Requested, *, user: str = BOB) -> bytes:
        """One signed-ready Approve click, exactly as Slack would deliver (and redeliver) it."""
        return block_actions(
            user_id=user,
            channel_id=CHANNEL,
            message_ts=requested.message_ts,
            action_id="atlas_approve",
            value=requested.request_id,
            response_url=self.fake_slack.response_url(channel_id=CHANNEL),
        )

    async def command(self, replica: Replica, text: str, *, user: str = ALICE) -> tuple[Answer, str]:
        """A slash command; returns the HTTP answer and its trigger_id."""
        trigger_id = self.fake_slack.issue_trigger_id()
        body = slash_command(
            text,
            user_id=user,
            channel_id=CHANNEL,
            trigger_id=trigger_id,
            response_url=self.fake_slack.response_url(channel_id=CHANNEL),
        )
        return await self.post(replica, body), trigger_id

    async def request(self, replica: Replica, text: str, *, reason: str, user: str = ALICE) -> Requested:
        """The real flow: command, confirmation modal, submission; returns the posted request."""
        response, trigger_id = await self.command(replica, text, user=user)
        assert response.status == 200, response.body
        opened = await self.fake_slack.wait_for(
            "views.open", predicate=lambda c: c.args.get("trigger_id") == trigger_id, timeout=10
        )
        view = opened[0].args["view"]
        label = next(b for b in view["blocks"] if b.get("block_id") == "confirm")["label"]["text"]
        identifier = label.removeprefix("Type ").removesuffix(" to confirm")
        body = view_submission(
            user_id=user,
            callback_id=view["callback_id"],
            private_metadata=view["private_metadata"],
            values={"confirm": {"value": plain_text_value(identifier)}, "reason": {"value": plain_text_value(reason)}},
        )
        submitted = await self.post(replica, body)
        assert submitted.status == 200 and not submitted.body, submitted.body
        posts = await self.fake_slack.wait_for(
            "chat.postMessage",
            predicate=lambda c: not c.args.get("thread_ts") and reason in str(c.args.get("blocks")),
            timeout=10,
        )
        buttons = [e for b in posts[0].args["blocks"] if b["type"] == "actions" for e in b["elements"]]
        return Requested(request_id=buttons[0]["value"], message_ts=str(posts[0].response["ts"]))

    def thread(self, requested: Requested) -> list[str]:
        return [str(c.args.get("text", "")) for c in self.thread_calls(requested)]

    def thread_calls(self, requested: Requested) -> list[FakeSlackCall]:
        return [
            c
            for c in self.fake_slack.calls_to("chat.postMessage")
            if c.args.get("thread_ts") == requested.message_ts and c.args.get("channel") == CHANNEL
        ]

    def last_update(self, requested: Requested) -> dict[str, Any]:
        updates = [c for c in self.fake_slack.calls_to("chat.update") if c.args.get("ts") == requested.message_ts]
        assert updates, "the approval message was never updated"
        return updates[-1].args


# ---------------------------------------------------------------------- seeding and observing


async def seed_requests(
    store: Store, fake_slack: FakeSlack, targets: Sequence[tuple[str, dict[str, str]]], *, start: int = 0
) -> list[Requested]:
    """Pending requests as if ALICE had submitted them, each with its approval message in Slack."""
    registry = load_registry()
    seeded: list[Requested] = []
    for n, (action, target) in enumerate(targets, start=start):
        spec = registry[action]
        args = spec.validate(target)
        request = await store.create_request(
            NewActionRequest(
                action=action,
                target=spec.target_of(args),
                target_label=spec.label_of(args),
                requester_id=ALICE,
                requester_team_id=TEAM_ID,
                channel_id=CHANNEL,
                reason=f"replica test request {n}",
                approvals_required=1,
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
        ts = f"1700000000.{n:06d}"
        fake_slack.add_message(channel=CHANNEL, ts=ts, text="approval request")
        await store.set_message(request.id, channel=CHANNEL, ts=ts)
        seeded.append(Requested(request_id=request.id, message_ts=ts))
    return seeded


async def state_counts(engine: AsyncEngine, ids: Iterable[str] | None = None) -> Counter[str]:
    query = select(action_requests.c.state, func.count()).group_by(action_requests.c.state)
    if ids is not None:
        query = query.where(action_requests.c.id.in_(list(ids)))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return Counter({state: count for state, count in rows})


async def audit_counts(engine: AsyncEngine) -> Counter[tuple[str, str]]:
    """(request id, event) -> how many audit rows."""
    query = select(audit_events.c.request_id, audit_events.c.event, func.count()).group_by(
        audit_events.c.request_id, audit_events.c.event
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return Counter({(request_id, event): count for request_id, event, count in rows if request_id})


async def wait_states(
    engine: AsyncEngine, ids: Sequence[str], *, done: Iterable[RequestState], timeout: float, what: str = ""
) -> Counter[str]:
    """Poll until every request in ``ids`` is in one of ``done``; returns the final state counts."""
    wanted = {state.value for state in done}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        counts = await state_counts(engine, ids)
        if sum(n for state, n in counts.items() if state in wanted) == len(ids):
            return counts
        if loop.time() > deadline:
            raise AssertionError(f"{what}: after {timeout}s the requests are {dict(counts)}")
        await asyncio.sleep(0.2)


async def wait_until(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str) -> None:
    """Poll ``check`` every 50 ms until it is true; fail naming ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout}s: {what}") from None


def atlas_writes(fake_atlas: FakeAtlas) -> Counter[str]:
    """Write calls Atlas received, per target path."""
    return Counter(r.path for r in fake_atlas.requests if r.operation in WRITE_OPERATIONS)


async def get(store: Store, requested: Requested) -> ActionRequest:
    return await store.get(requested.request_id)

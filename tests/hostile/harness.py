"""The real bot on loopback, as in :mod:`tests.e2e.harness`, with the knobs hostile tests need.

Differences from ``running_bot``: the Atlas client gets a fast retry policy, a short per-call
timeout and a ``sleep`` that records every wait it was asked for (so a test can check Atlas's
Retry-After was honoured without really waiting); helpers send raw or forged bodies, take a
snapshot of everything a request could change, inject faults (counted in :mod:`tests.hostile.tally`)
and read every place a secret could leak to (logs, Slack traffic, the database, ``/metrics``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.app import build_bot
from bot.atlas._retry import RetryPolicy
from bot.policy import parse_policy
from bot.settings import Settings
from bot.store import metadata
from commands import load_registry
from tests.e2e.harness import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    DAVE,
    DEFAULT_POLICY,
    MALLORY,
    OTHER_CHANNEL,
    SIGNING_SECRET,
    Harness,
    Requested,
    running_fakes,
    serve_on_loopback,
)
from tests.hostile.tally import fault
from tests.slack_requests import FORM_CONTENT_TYPE, TEAM_ID, sign

__all__ = [
    "ALICE",
    "ATLAS_TIMEOUT",
    "BOB",
    "CAROL",
    "CHANNEL",
    "DAVE",
    "FAST_RETRY",
    "MALLORY",
    "OTHER_CHANNEL",
    "SIGNING_SECRET",
    "STRANGER",
    "TEAM_ID",
    "HostileHarness",
    "RecordingSleep",
    "Requested",
    "Snapshot",
    "capture_everything",
    "errors_logged",
    "hostile_bot",
    "leaks",
    "seed_cluster",
    "seed_oidc_idp",
]

STRANGER = "U0STRANGER"  # a member of the workspace with no role at all

# Fast but real: 4 attempts, jittered backoff of at most 20 ms, within a 5 s deadline.
FAST_RETRY = RetryPolicy(max_attempts=4, deadline=5.0, base_delay=0.005, max_delay=0.02)
ATLAS_TIMEOUT = 0.5
# Loggers that could print a secret if anything handed them one; all captured at DEBUG.
THIRD_PARTY_LOGGERS = (
    "httpx",
    "httpcore",
    "slack_sdk",
    "slack_bolt",
    "aiohttp",
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "sqlalchemy.engine",
    "sqlalchemy.pool",
)
# Responses that would show the bot's insides.
TRACE_MARKERS = ("Traceback", 'File "', "Exception", "Error:", "line ", "/work/", "site-packages")


def capture_everything(caplog: pytest.LogCaptureFixture, level: int = logging.DEBUG) -> None:
    caplog.set_level(level)
    for name in (*THIRD_PARTY_LOGGERS, "bot", "commands"):
        caplog.set_level(level, logger=name)


class RecordingSleep:
    """Stands in for ``asyncio.sleep`` in the Atlas client: records the delay, waits a token 1 ms."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0.001)


@dataclass(frozen=True)
class Snapshot:
    """Everything a request to the bot could have changed."""

    rows: dict[str, int]
    atlas_requests: int
    slack_calls: dict[str, int]
    response_url_posts: int


def seed_oidc_idp(h: Harness, *, orgs: int = 1) -> tuple[str, str]:
    org_ids = [h.fake_atlas.add_org(f"Org {i}")["id"] for i in range(orgs)]
    federation = h.fake_atlas.add_federation(org_ids)
    idp = h.fake_atlas.add_idp(federation["id"], protocol="OIDC", org_ids=org_ids[:1])
    return federation["id"], idp["id"]


def seed_cluster(h: Harness, name: str = "payments-0") -> str:
    org = h.fake_atlas.add_org()["id"]
    group = h.fake_atlas.add_project(org)["id"]
    h.fake_atlas.add_cluster(group, name, grant_type="CLUSTER_DATABASE_LOGS")
    return str(group)


@dataclass
class HostileHarness(Harness):
    sleeps: RecordingSleep = field(default_factory=RecordingSleep)

    # --------------------------------------------------------------- the wire

    async def post(self, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        # Bytes, so a header may carry what a str header could not (non-ASCII, as on the wire).
        raw = {name.encode("ascii"): value.encode("utf-8") for name, value in headers.items()}
        return await self.http.post(f"{self.url}/slack/events", content=body, headers=raw)

    async def post_signed(self, body: bytes, *, content_type: str = FORM_CONTENT_TYPE) -> httpx.Response:
        return await self.post(body, sign(body, SIGNING_SECRET, content_type=content_type))

    # --------------------------------------------------------------- observations

    async def snapshot(self) -> Snapshot:
        await self.settle()
        slack_calls: dict[str, int] = {}
        for call in self.fake_slack.calls:
            slack_calls[call.method] = slack_calls.get(call.method, 0) + 1
        return Snapshot(
            rows=await self.row_counts(),
            atlas_requests=len(self.fake_atlas.requests),
            slack_calls=slack_calls,
            response_url_posts=len(self.fake_slack.response_url_posts),
        )

    async def row_counts(self) -> dict[str, int]:
        async with self.bot.engine.connect() as conn:
            return {name: len((await conn.execute(select(table))).all()) for name, table in metadata.tables.items()}

    async def table_dump(self) -> str:
        """Every row of every table the bot owns, as text."""
        async with self.bot.engine.connect() as conn:
            rows: list[str] = []
            for name, table in metadata.tables.items():
                rows += [f"{name}: {tuple(r)!r}" for r in (await conn.execute(select(table))).all()]
        return "\n".join(rows)

    async def metrics_text(self) -> str:
        response = await self.http.get(f"{self.url}/metrics")
        assert response.status_code == 200
        return response.text

    def slack_traffic(self) -> str:
        """Everything the bot sent to Slack: Web API calls (args, and headers but the auth header)
        and response_url posts."""
        parts = []
        for call in self.fake_slack.calls:
            headers = {k: v for k, v in call.headers.items() if k != "authorization"}
            parts.append(f"{call.method} {call.args!r} {headers!r}")
        parts += [repr(p.body) for p in self.fake_slack.response_url_posts]
        return "\n".join(parts)

    def posted_blocks(self) -> list[dict[str, Any]]:
        """Every block the bot asked Slack to show (messages, updates, ephemerals, modals, response_url)."""
        blocks: list[dict[str, Any]] = []
        for call in self.fake_slack.calls:
            blocks += list(call.args.get("blocks") or [])
            view = call.args.get("view")
            if isinstance(view, dict):
                blocks += list(view.get("blocks") or [])
        for post in self.fake_slack.response_url_posts:
            blocks += list(post.body.get("blocks") or [])
        return blocks

    def atlas_writes(self) -> list[str]:
        """Atlas calls that change something: any method but GET, OAuth token fetches aside."""
        return [
            f"{r.method} {r.path}"
            for r in self.fake_atlas.requests
            if r.method != "GET" and r.path != "/api/oauth/token"
        ]

    async def state_of(self, requested: Requested) -> str:
        return (await self.bot.store.get(requested.request_id)).state.value

    async def audit(self, requested: Requested) -> list[str]:
        return [e.event for e in await self.bot.store.list_audit(request_id=requested.request_id)]

    async def wait_state(self, requested: Requested, *states: str, timeout: float = 10.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                state = await self.state_of(requested)
                if state in states:
                    return state
                await asyncio.sleep(0.02)

    async def atlas_idle(self, timeout: float = 5.0) -> None:
        """Wait until the fake Atlas has answered (or dropped) every request it received."""
        async with asyncio.timeout(timeout):
            while True:
                if all(r.status is not None for r in self.fake_atlas.requests):
                    return
                await asyncio.sleep(0.01)

    async def quiet(self) -> None:
        """Let Bolt's after-ack listener work and the bot's executions finish."""
        await asyncio.sleep(0.05)
        await self.settle()

    # --------------------------------------------------------------- faults (counted)

    def atlas_fault(self, kind: str, method: str, path: str, **options: Any) -> None:
        """Queue one kind of failure at the fake Atlas: status, rate_limit, delay, html,
        truncated_json or reset (the fake's own knobs)."""
        times = int(options.get("times", 1))
        fake = self.fake_atlas
        label = kind
        if kind == "status":
            status = int(options.pop("status"))
            fake.fail(method, path, status, options.pop("error_code", None), **options)
            label = f"atlas fault: HTTP {status}"
        elif kind == "rate_limit":
            fake.rate_limit(method, path, **options)
            label = "atlas fault: 429 " + (
                "with Retry-After" if options.get("retry_after") is not None else "without Retry-After"
            )
        elif kind == "delay":
            fake.delay(method, path, options.pop("seconds"), **options)
            label = "atlas fault: timeout (no answer in time)"
        elif kind in ("html", "truncated_json", "reset_connection", "lose_response"):
            getattr(fake, kind)(method, path, **options)
            label = f"atlas fault: {kind}"
        else:
            raise ValueError(f"unknown Atlas fault {kind!r}")
        fault(label, times)

    def slack_fault(self, method: str, error: str, *, times: int = 1, retry_after: int = 1) -> None:
        if error == "ratelimited":
            self.fake_slack.rate_limit_next(method, retry_after=retry_after, times=times)
        else:
            self.fake_slack.fail_next(method, error=error, times=times)
        fault(f"slack fault: {method} {error}", times)


@asynccontextmanager
async def hostile_bot(
    database_url: str,
    *,
    policy_data: Mapping[str, Any] | None = None,
    extra_env: Mapping[str, str] | None = None,
    retry: RetryPolicy = FAST_RETRY,
    atlas_timeout: float = ATLAS_TIMEOUT,
    strict_channels: bool = False,
    group_cache_seconds: float = 0,
) -> AsyncIterator[HostileHarness]:
    extra_env = {"ATLAS_CHATOPS_GROUP_CACHE_SECONDS": str(group_cache_seconds), **(extra_env or {})}
    fakes_running = running_fakes(
        database_url, replica_id="hostile-replica", extra_env=extra_env, strict_channels=strict_channels
    )
    async with fakes_running as fakes:
        environ = fakes.environ
        settings = Settings.from_environ(environ)
        policy = parse_policy(dict(policy_data or DEFAULT_POLICY), known_actions=load_registry())
        sleeps = RecordingSleep()
        bot = build_bot(
            settings,
            environ=environ,
            policy=policy,
            atlas_options={"retry": retry, "timeout": atlas_timeout, "sleep": sleeps},
        )
        runner, url = await serve_on_loopback(bot.web_app)
        async with httpx.AsyncClient(timeout=10) as http:
            harness = HostileHarness(
                bot=bot,
                database_url=database_url,
                sleeps=sleeps,
                **fakes.harness_fields(url, http),
            )
            try:
                yield harness
            finally:
                await harness.settle()
                await runner.cleanup()
                await bot.shutdown(drain_seconds=5)


def errors_logged(records: list[logging.LogRecord]) -> list[str]:
    """Records at ERROR or above, and any record carrying a traceback: an unhandled failure."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.ERROR or (r.exc_info is not None and r.exc_info[0] is not None)
    ]


def leaks(text: str, secrets: list[str]) -> list[str]:
    """Which of ``secrets`` (or a recognisable 12-character slice of one) occur in ``text``."""
    found = []
    for secret in secrets:
        slices = {secret} | {secret[i : i + 12] for i in range(0, max(1, len(secret) - 11), 4)}
        if any(s in text for s in slices if len(s) >= 12):
            found.append(secret[:4] + "…")
    return found

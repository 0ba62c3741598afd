"""Drive the real bot over HTTP as Slack would, against fake Slack and fake Atlas servers.

The bot runs in this process on a loopback port (real sockets, the real aiohttp server and
Bolt app); Slack's side is the signed-request builders plus the recording fake Web API, and
Atlas is the spec-checking fake. Nothing inside the bot is patched.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import yaml
from aiohttp import web

from bot.ack_side import build_ack_side, build_intake
from bot.app import Bot, build_bot
from bot.db import create_engine
from bot.metrics import Metrics
from bot.policy import Policy, parse_policy
from bot.requests import ActionRequest
from bot.settings import Settings
from bot.slack.listeners import FormsOpening
from bot.store import Store
from bot.work_loop import WorkLoop
from bot.work_process import WorkProcess
from commands import load_registry
from tests.fakes.fake_atlas import FakeAtlas
from tests.fakes.fake_slack import FakeSlack, FakeSlackCall
from tests.slack_requests import TEAM_ID, SlackClient, plain_text_value

T = TypeVar("T")

SIGNING_SECRET = "e2e-signing-secret-5f3c9a"
BOT_TOKEN = "xoxb-e2e-bot-token-7d41"
CHANNEL = "C0INCIDENT"
OTHER_CHANNEL = "C0RANDOM"
ALICE, BOB, CAROL, DAVE, MALLORY = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", "U0MALLORY"

DEFAULT_POLICY: dict[str, Any] = {
    "roles": {"oncall": [ALICE, CAROL, "@dba-oncall"], "approver": ["@atlas-approvers", CAROL]},
    "actions": {
        "revoke-jwks": {"request": ["oncall"], "approve": ["approver"], "approvals": 1},
        "delete-idp": {"request": ["oncall"], "approve": ["approver"], "approvals": 1},
        "delete-federation": {
            "request": ["oncall"],
            "approve": ["approver"],
            "approvals": 2,
            "channels": [CHANNEL],
        },
        "revoke-employee-access": {"request": ["oncall"], "approve": ["approver"], "approvals": 1},
        "revoke-token": {"request": ["oncall"], "approve": ["approver"], "approvals": 1},
    },
    "approval_ttl_minutes": 30,
    "service_accounts": {
        "default": {
            "client_id_env": "MONGODB_ATLAS_CLIENT_ID",
            "client_secret_env": "MONGODB_ATLAS_CLIENT_SECRET",
        },
    },
    "rate_limits": {"per_user_per_hour": 50, "per_channel_per_hour": 200},
}


@dataclass
class Requested:
    request_id: str
    message_ts: str
    identifier: str


WorkMode = Literal["one-loop", "work-thread", "work-process"]


@dataclass
class Harness:
    """``bot`` is None with ``work-process``: the service is in ``process``, out of reach, and is
    observed as Slack and Atlas see it and through the database (:meth:`stored`)."""

    bot: Bot | None
    database_url: str
    url: str
    slack: SlackClient
    fake_slack: FakeSlack
    fake_atlas: FakeAtlas
    environ: dict[str, str]
    http: httpx.AsyncClient
    atlas_client_id: str
    atlas_client_secret: str
    secrets: list[str] = field(default_factory=list)
    process: WorkProcess | None = None
    work_log: Path | None = None

    # --------------------------------------------------------------- Slack-side actions

    async def command(
        self, text: str, *, user: str = ALICE, channel: str = CHANNEL, team: str = TEAM_ID
    ) -> httpx.Response:
        return await self.slack.command(
            text,
            user_id=user,
            channel_id=channel,
            team_id=team,
            trigger_id=self.fake_slack.issue_trigger_id(),
            response_url=self.fake_slack.response_url(channel_id=channel),
        )

    async def open_modal(self, text: str, *, user: str = ALICE, channel: str = CHANNEL) -> dict[str, Any]:
        before = len(self.fake_slack.calls_to("views.open"))
        response = await self.command(text, user=user, channel=channel)
        assert response.status_code == 200, response.text
        calls = await self.fake_slack.wait_for("views.open", count=before + 1)
        view: dict[str, Any] = calls[-1].args["view"]
        return view

    async def submit(
        self,
        view: dict[str, Any],
        *,
        user: str = ALICE,
        confirm: str | None = None,
        reason: str = "Leaked signing key, incident INC-42",
        secret: str | None = None,
        private_metadata: str | None = None,
        team: str = TEAM_ID,
    ) -> httpx.Response:
        label = next(b for b in view["blocks"] if b.get("block_id") == "confirm")["label"]["text"]
        identifier = label.removeprefix("Type ").removesuffix(" to confirm")
        values: dict[str, dict[str, Any]] = {
            "confirm": {"value": plain_text_value(identifier if confirm is None else confirm)},
            "reason": {"value": plain_text_value(reason)},
        }
        if secret is not None:
            values["secret"] = {"value": plain_text_value(secret)}
        return await self.slack.submit(
            user_id=user,
            team_id=team,
            callback_id=view["callback_id"],
            private_metadata=view["private_metadata"] if private_metadata is None else private_metadata,
            values=values,
        )

    async def request(
        self,
        text: str,
        *,
        user: str = ALICE,
        channel: str = CHANNEL,
        secret: str | None = None,
        reason: str = "Leaked signing key, incident INC-42",
    ) -> Requested:
        """Command, modal, submit; returns the posted approval message's request id and ts."""
        before = len(self.approval_posts())
        view = await self.open_modal(text, user=user, channel=channel)
        response = await self.submit(view, user=user, secret=secret, reason=reason)
        assert response.status_code == 200 and not response.content, response.text
        await self.fake_slack.wait_for(
            "chat.postMessage", count=before + 1, predicate=lambda c: not c.args.get("thread_ts")
        )
        # The bot stores the message's ts just after posting it; a person cannot click that fast.
        await self.settle()
        post = self.approval_posts()[-1]
        buttons = [e for b in post.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
        label = next(b for b in view["blocks"] if b.get("block_id") == "confirm")["label"]["text"]
        return Requested(
            request_id=buttons[0]["value"],
            message_ts=str(post.response["ts"]),
            identifier=label.removeprefix("Type ").removesuffix(" to confirm"),
        )

    async def click(
        self,
        requested: Requested,
        *,
        user: str,
        action: str = "atlas_approve",
        channel: str = CHANNEL,
        team: str = TEAM_ID,
        value: str | None = None,
    ) -> httpx.Response:
        """A click on the approval message as the bot posted it (its blocks, the button's block_id);
        on a message the bot did not post (``requested.message_ts`` made up), a lone button."""
        posted = next((c for c in self.approval_posts() if str(c.response["ts"]) == requested.message_ts), None)
        blocks, block_id = None, "actions"
        if posted is not None:
            blocks = posted.args["blocks"]
            block_id = next(
                b["block_id"]
                for b in blocks
                if b["type"] == "actions" and any(e["action_id"] == action for e in b["elements"])
            )
        return await self.slack.click(
            user_id=user,
            team_id=team,
            channel_id=channel,
            message_ts=requested.message_ts,
            message_blocks=blocks,
            block_id=block_id,
            action_id=action,
            value=requested.request_id if value is None else value,
            response_url=self.fake_slack.response_url(channel_id=channel),
        )

    # --------------------------------------------------------------- observations

    def approval_posts(self) -> list[FakeSlackCall]:
        return [c for c in self.fake_slack.calls_to("chat.postMessage") if not c.args.get("thread_ts") and c.ok]

    def thread(self, requested: Requested) -> list[str]:
        return [
            str(c.args.get("text", "")) + " " + str(c.args.get("blocks", ""))
            for c in self.fake_slack.calls_to("chat.postMessage")
            if c.args.get("thread_ts") == requested.message_ts
        ]

    async def wait_thread(self, requested: Requested, fragment: str, timeout: float = 10.0) -> str:
        calls = await self.fake_slack.wait_for(
            "chat.postMessage",
            timeout=timeout,
            predicate=lambda c: c.args.get("thread_ts") == requested.message_ts and fragment in str(c.args),
        )
        return str(calls[-1].args)

    def final_update(self, requested: Requested) -> dict[str, Any]:
        updates = [c for c in self.fake_slack.calls_to("chat.update") if c.args.get("ts") == requested.message_ts]
        assert updates, "the approval message was never updated"
        return updates[-1].args

    def ephemerals(self) -> list[str]:
        return [str(p.body) for p in self.fake_slack.response_url_posts]

    async def wait_ephemeral(self, fragment: str, timeout: float = 5.0) -> str:
        """The first reply to one person (via response_url) containing ``fragment``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for body in self.ephemerals():
                if fragment in body:
                    return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no ephemeral reply containing {fragment!r}; got {self.ephemerals()}")
            await asyncio.sleep(0.01)

    async def settle(self) -> None:
        """Wait until the bot has no background work left (what listeners hand over after the
        ack, and executions; in the work process, what was handed over)."""
        if self.process is not None:
            assert await self.process.finish(10.0) == 0, "work handed over did not finish in 10 s"
            for _ in range(500):
                metrics = (await self.http.get(f"{self.url}/metrics")).text
                if "\natlas_chatops_executions_in_flight 0.0\n" in metrics:
                    return
                await asyncio.sleep(0.01)
            raise AssertionError("executions did not finish")
        bot = self.in_process_bot
        for _ in range(500):
            if not bot.service._tasks and bot.work.idle:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("background work did not finish")

    def work_log_text(self) -> str:
        """What the work process logged (DEBUG and up), or "" without one."""
        return self.work_log.read_text(encoding="utf-8", errors="replace") if self.work_log else ""

    @property
    def in_process_bot(self) -> Bot:
        assert self.bot is not None, "this test looks inside the bot: it cannot run with work-process"
        return self.bot

    async def on_service_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` where the bot's store and clients live (their own thread with ``work_thread``)."""
        return await self.in_process_bot.work.call(coro)

    async def stored(self, request_id: str) -> ActionRequest:
        """The request as the database holds it (read over a connection of the test's own with
        ``work-process``)."""
        if self.bot is not None:
            return await self.on_service_loop(self.bot.store.get(request_id))
        engine = create_engine(self.database_url)
        try:
            return await Store(engine).get(request_id)
        finally:
            await engine.dispose()

    async def issue_atlas_token(self) -> str:
        basic = base64.b64encode(f"{self.atlas_client_id}:{self.atlas_client_secret}".encode()).decode()
        response = await self.http.post(
            f"{self.fake_atlas.base_url}/api/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        self.secrets.append(token)
        return token


async def serve_on_loopback(web_app: web.Application) -> tuple[web.AppRunner, str]:
    """``web_app`` served on a free loopback port: its runner (to clean up) and its base URL."""
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class Fakes:
    """The fake Slack and Atlas a test's bot talks to, and the environment that points it at them."""

    slack: FakeSlack
    atlas: FakeAtlas
    atlas_client_id: str
    atlas_client_secret: str
    environ: dict[str, str]

    def harness_fields(self, url: str, http: httpx.AsyncClient) -> dict[str, Any]:
        """The fields of a :class:`Harness` that come from the fakes and the client talking to a bot
        at ``url``, among them the secrets every harness checks never leak."""
        return {
            "url": url,
            "slack": SlackClient(http, signing_secret=SIGNING_SECRET, url=f"{url}/slack/events"),
            "fake_slack": self.slack,
            "fake_atlas": self.atlas,
            "environ": self.environ,
            "http": http,
            "atlas_client_id": self.atlas_client_id,
            "atlas_client_secret": self.atlas_client_secret,
            "secrets": [SIGNING_SECRET, BOT_TOKEN, self.atlas_client_secret],
        }


@asynccontextmanager
async def running_fakes(
    database_url: str, *, replica_id: str, extra_env: Mapping[str, str] | None = None, strict_channels: bool = False
) -> AsyncIterator[Fakes]:
    """Both fakes started, with the usual user groups and one Atlas service account; stopped after."""
    fake_slack = FakeSlack(bot_token=BOT_TOKEN, strict_channels=strict_channels)
    api_url = await fake_slack.start()
    fake_slack.add_usergroup(id="S0APPROVERS", handle="atlas-approvers", users=[BOB, DAVE])
    fake_slack.add_usergroup(id="S0DBAONCALL", handle="dba-oncall", users=[MALLORY])
    fake_atlas = FakeAtlas()
    try:
        atlas_url = await fake_atlas.start()
        client_id, client_secret = fake_atlas.add_service_account()
        environ = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": api_url,
            "SLACK_TEAM_ID": TEAM_ID,
            "DATABASE_URL": database_url,
            "MONGODB_ATLAS_BASE_URL": atlas_url,
            "MONGODB_ATLAS_CLIENT_ID": client_id,
            "MONGODB_ATLAS_CLIENT_SECRET": client_secret,
            "ATLAS_CHATOPS_REPLICA_ID": replica_id,
            **(extra_env or {}),
        }
        yield Fakes(
            slack=fake_slack,
            atlas=fake_atlas,
            atlas_client_id=client_id,
            atlas_client_secret=client_secret,
            environ=environ,
        )
    finally:
        await fake_slack.stop()
        await fake_atlas.stop()


@asynccontextmanager
async def running_bot(
    database_url: str,
    *,
    policy_data: Mapping[str, Any] | None = None,
    extra_env: Mapping[str, str] | None = None,
    work_thread: bool = False,
    work_process: bool = False,
) -> AsyncIterator[Harness]:
    """``work_thread``: the service on its own thread's loop, as ``serve`` runs it with
    ``ATLAS_CHATOPS_WORK=thread`` (bot.work_loop). ``work_process``: this process acks and a real
    ``python -m bot.work_process`` runs the rest, as ``serve`` does by default (its log is
    ``Harness.work_log``)."""
    policy: Policy = parse_policy(dict(policy_data or DEFAULT_POLICY), known_actions=load_registry())
    async with AsyncExitStack() as stack:
        fakes = await stack.enter_async_context(
            running_fakes(database_url, replica_id="e2e-replica", extra_env=extra_env)
        )
        environ = fakes.environ
        bot: Bot | None = None
        process: WorkProcess | None = None
        work_log: Path | None = None
        work: WorkLoop | None = None
        if work_process:
            # The work process reads its policy and settings as serve's would: from a file and its environment.
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="e2e-work-")))
            (directory / "policy.yml").write_text(yaml.safe_dump(dict(policy_data or DEFAULT_POLICY)))
            environ["ATLAS_CHATOPS_POLICY"] = str(directory / "policy.yml")
            work_log = directory / "work.log"
            settings = Settings.from_environ(environ)
            forms_opening = FormsOpening()
            with work_log.open("wb") as log_file:
                child_environ = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ATLAS_CHATOPS_"))}
                process = await WorkProcess.start(
                    {**child_environ, **environ, "LOG_LEVEL": "DEBUG"},
                    form_opened=forms_opening.opened,
                    stderr=log_file,
                )
            _, web_app = build_ack_side(
                settings, intake=build_intake(settings), metrics=Metrics(), work=process, forms_opening=forms_opening
            )
        else:
            settings = Settings.from_environ(environ)
            work = WorkLoop.start_thread(asyncio.new_event_loop) if work_thread else None

            async def build() -> Bot:
                return build_bot(settings, environ=environ, policy=policy, work=work)

            bot = await (work.call(build()) if work is not None else build())
            web_app = bot.web_app
        runner, url = await serve_on_loopback(web_app)
        async with httpx.AsyncClient(timeout=10) as http:
            harness = Harness(
                bot=bot,
                process=process,
                database_url=database_url,
                work_log=work_log,
                **fakes.harness_fields(url, http),
            )
            try:
                yield harness
            finally:
                await harness.settle()
                await runner.cleanup()
                if process is not None:
                    assert await process.close(drain_seconds=5) == 0, harness.work_log_text()
                else:
                    assert bot is not None
                    await harness.on_service_loop(bot.shutdown(drain_seconds=5))
                    if work is not None:
                        work.stop()

"""`atlas-chatops serve --socket`: the real CLI process over Socket Mode against the fake Slack.

The fake answers ``apps.connections.open`` (app-level token only) with a WebSocket URL of its own,
greets with ``hello``, sends envelopes (``slash_commands``, ``interactive``) exactly as Slack does and
records the app's acknowledgements. No signature applies in Socket Mode; what matters is that each
envelope is acknowledged by id and the same flow runs as in HTTP mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import yaml

from tests.e2e.harness import ALICE, BOB, CHANNEL, DEFAULT_POLICY
from tests.fakes.fake_atlas import FakeAtlas
from tests.fakes.fake_slack import FakeSlack
from tests.slack_requests import block_actions, plain_text_value, slash_command, view_submission

pytestmark = pytest.mark.e2e

APP_TOKEN = "xapp-1-A0ATLAS-socket-test-token"
BOT_TOKEN = "xoxb-socket-test-bot-token"


def interactive_payload(body: bytes) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(dict(parse_qsl(body.decode()))["payload"])
    return payload


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SocketBot:
    process: asyncio.subprocess.Process
    slack: FakeSlack
    atlas: FakeAtlas
    health_url: str
    output: Path


@pytest.fixture
async def socket_bot(database_url: str, tmp_path: Path) -> AsyncIterator[SocketBot]:
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN)
    api_url = await slack.start()
    slack.add_usergroup(id="S0APPROVERS", handle="atlas-approvers", users=[BOB])
    atlas = FakeAtlas()
    atlas_url = await atlas.start()
    client_id, client_secret = atlas.add_service_account()
    policy = tmp_path / "policy.yml"
    policy.write_text(yaml.safe_dump(DEFAULT_POLICY), encoding="utf-8")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": "socket-mode-signing-secret",
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": api_url,
        "SLACK_TEAM_ID": "T0APP",
        "DATABASE_URL": database_url,
        "ATLAS_CHATOPS_POLICY": str(policy),
        "MONGODB_ATLAS_BASE_URL": atlas_url,
        "MONGODB_ATLAS_CLIENT_ID": client_id,
        "MONGODB_ATLAS_CLIENT_SECRET": client_secret,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "INFO",
    }
    output = tmp_path / "serve.log"
    with output.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--socket", env=env, stdout=log, stderr=log
        )
    bot = SocketBot(process, slack, atlas, f"http://127.0.0.1:{port}/healthz", output)
    try:
        for _ in range(300):
            if slack.socket_connections or process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert slack.socket_connections == 1, output.read_text()
        yield bot
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await slack.stop()
        await atlas.stop()


async def test_socket_mode_runs_the_whole_flow_and_stops_cleanly(socket_bot: SocketBot) -> None:
    bot = socket_bot
    org = bot.atlas.add_org("Acme")
    federation = bot.atlas.add_federation([org["id"]])
    idp = bot.atlas.add_idp(federation["id"], protocol="OIDC", org_ids=[org["id"]])
    # The app-level token opened the connection; the bot token is never sent for it.
    opened = bot.slack.calls_to("apps.connections.open")
    assert opened and opened[-1].token == APP_TOKEN

    command = dict(
        parse_qsl(
            slash_command(
                f"revoke-jwks {federation['id']} {idp['id']}",
                user_id=ALICE,
                channel_id=CHANNEL,
                trigger_id=bot.slack.issue_trigger_id(),
                response_url=bot.slack.response_url(channel_id=CHANNEL),
            ).decode()
        )
    )
    envelope = await bot.slack.send_envelope("slash_commands", command)
    assert (await bot.slack.wait_socket_ack(envelope))["envelope_id"] == envelope
    view = (await bot.slack.wait_for("views.open"))[-1].args["view"]
    label = next(b for b in view["blocks"] if b.get("block_id") == "confirm")["label"]["text"]

    submission = view_submission(
        user_id=ALICE,
        callback_id=view["callback_id"],
        private_metadata=view["private_metadata"],
        values={
            "confirm": {"value": plain_text_value(label.removeprefix("Type ").removesuffix(" to confirm"))},
            "reason": {"value": plain_text_value("Leaked key, INC-7")},
        },
    )
    envelope = await bot.slack.send_envelope("interactive", interactive_payload(submission))
    await bot.slack.wait_socket_ack(envelope)
    post = (await bot.slack.wait_for("chat.postMessage", predicate=lambda c: not c.args.get("thread_ts")))[-1]
    request_id = next(e["value"] for b in post.args["blocks"] if b["type"] == "actions" for e in b["elements"])

    click = block_actions(
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts=str(post.response["ts"]),
        action_id="atlas_approve",
        value=request_id,
        response_url=bot.slack.response_url(channel_id=CHANNEL),
    )
    envelope = await bot.slack.send_envelope("interactive", interactive_payload(click))
    await bot.slack.wait_socket_ack(envelope)
    await bot.slack.wait_for(
        "chat.postMessage",
        timeout=10,
        predicate=lambda c: c.args.get("thread_ts") == post.response["ts"] and "Done" in str(c.args),
    )
    assert bot.atlas.count("revokeFederationSettingIdentityProviderJwks") == 1

    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(bot.health_url)).json() == {"status": "ok", "database": "ok"}
    bot.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(bot.process.wait(), timeout=30) == 0
    log = bot.output.read_text()
    assert "serving in Socket Mode" in log and "stopped" in log
    assert "(uvloop event loop, the service in a process of its own)" in log, (
        "serve runs on uvloop when it is installed (ATLAS_CHATOPS_EVENT_LOOP=auto), the service in a second process"
    )
    for _ in range(100):
        if not bot.slack.socket_connections:
            break
        await asyncio.sleep(0.05)
    assert bot.slack.socket_connections == 0
    assert APP_TOKEN not in log and BOT_TOKEN not in log

"""Slack's side of the benchmark: the request bodies the load process sends, and the unmeasured
set-up flow that turns a command into a pending request with its approval message.

Everything is built with the test suite's signed-request builders (:mod:`tests.slack_requests`),
and the set-up flow is the one ``tests/e2e/harness.py`` drives: command, the modal the bot opened
at the fake Slack, a view_submission carrying that modal's ``private_metadata`` and the typed
confirmation, then the approval message the bot posted.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import dataclass
from typing import Any

from bench.stack import APPROVERS, BENCH_CHANNELS, REQUESTERS, SIGNING_SECRET, Stack
from bot.views import APPROVE_ACTION_ID, CONFIRM_BLOCK, REASON_BLOCK, VALUE_ACTION_ID
from tests.slack_requests import SlackClient, block_actions, plain_text_value, slash_command

__all__ = ["Pending", "click_bodies", "command_bodies", "create_pending"]

_sequence = itertools.count()
# How long one set-up step may take before the benchmark calls the bot broken.
STEP_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Pending:
    request_id: str
    message_ts: str
    channel_id: str
    idp_id: str


def _trigger_id(tag: str) -> str:
    # The "trigger-" prefix makes the fake Slack accept it once in views.open without having
    # issued it (first sight counts as issue), so bodies can be built ahead of sending them.
    return f"trigger-{tag}-{next(_sequence)}-{secrets.token_hex(4)}"


def command_bodies(stack: Stack, count: int, *, tag: str, text: str | None = None) -> tuple[list[bytes], list[str]]:
    """``count`` slash commands from rotating requesters and channels, and their trigger ids.

    One IdP serves the whole batch: a command only opens a modal and reads a preview, so the
    target does not need to be unique.
    """
    text = text or f"revoke-jwks {stack.federation_id} {stack.new_idp()}"
    bodies, triggers = [], []
    for i in range(count):
        channel = BENCH_CHANNELS[i % len(BENCH_CHANNELS)]
        trigger = _trigger_id(tag)
        bodies.append(
            slash_command(
                text,
                user_id=REQUESTERS[i % len(REQUESTERS)],
                channel_id=channel,
                trigger_id=trigger,
                response_url=stack.slack.response_url(channel_id=channel),
            )
        )
        triggers.append(trigger)
    return bodies, triggers


def click_bodies(stack: Stack, pending: list[Pending]) -> list[bytes]:
    """An Approve click on each request's message, by an approver who did not request it."""
    return [
        block_actions(
            user_id=APPROVERS[i % len(APPROVERS)],
            channel_id=p.channel_id,
            message_ts=p.message_ts,
            action_id=APPROVE_ACTION_ID,
            value=p.request_id,
            button_text="Approve",
            style="primary",
            response_url=stack.slack.response_url(channel_id=p.channel_id),
        )
        for i, p in enumerate(pending)
    ]


def slack_client(stack: Stack) -> SlackClient:
    return SlackClient(stack.http, signing_secret=SIGNING_SECRET, url=f"{stack.bot.url}/slack/events")


async def _one_pending(stack: Stack, client: SlackClient, i: int) -> Pending:
    idp = stack.new_idp()
    user = REQUESTERS[i % len(REQUESTERS)]
    channel = BENCH_CHANNELS[i % len(BENCH_CHANNELS)]
    trigger = _trigger_id("setup")
    opened = stack.watch.expect_view(trigger)
    response = await client.command(
        f"revoke-jwks {stack.federation_id} {idp}",
        user_id=user,
        channel_id=channel,
        trigger_id=trigger,
        response_url=stack.slack.response_url(channel_id=channel),
    )
    if response.status_code != 200:
        raise RuntimeError(f"set-up command answered HTTP {response.status_code}")
    view: dict[str, Any] = await asyncio.wait_for(opened, STEP_TIMEOUT_SECONDS)
    label = next(b for b in view["blocks"] if b.get("block_id") == CONFIRM_BLOCK)["label"]["text"]
    identifier = label.removeprefix("Type ").removesuffix(" to confirm")
    posted = stack.watch.expect_approval_post(idp)
    response = await client.submit(
        user_id=user,
        callback_id=view["callback_id"],
        private_metadata=view["private_metadata"],
        values={
            CONFIRM_BLOCK: {VALUE_ACTION_ID: plain_text_value(identifier)},
            REASON_BLOCK: {VALUE_ACTION_ID: plain_text_value("Benchmark: leaked signing key, incident INC-6")},
        },
    )
    if response.status_code != 200 or response.content:
        raise RuntimeError(f"set-up submission answered HTTP {response.status_code}: {response.text[:200]}")
    post = await asyncio.wait_for(posted, STEP_TIMEOUT_SECONDS)
    buttons = [e for b in post.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    request_id = next(str(e["value"]) for e in buttons if e.get("action_id") == APPROVE_ACTION_ID)
    return Pending(request_id=request_id, message_ts=str(post.response["ts"]), channel_id=channel, idp_id=idp)


async def create_pending(stack: Stack, count: int, *, concurrency: int = 16) -> list[Pending]:
    """``count`` pending requests made through the bot's real flow (not measured)."""
    client = slack_client(stack)
    gate = asyncio.Semaphore(concurrency)

    async def gated(i: int) -> Pending:
        async with gate:
            return await _one_pending(stack, client, i)

    return list(await asyncio.gather(*(gated(i) for i in range(count))))

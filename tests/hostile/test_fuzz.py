"""Property-based: thousands of random command texts and payload mutations, all signed as Slack would.

For every request: never a 5xx, no stack trace in the response, nothing logged at ERROR (and no
traceback) while the bot handles it, including the work it does after the ack. Commands that
cannot be valid (a stranger's, a foreign team's, or any with an argument no pattern accepts)
never reach the fake Atlas, and no mutation of a click or a submission ever approves or runs
anything. The number of requests sent is counted in :mod:`tests.hostile.tally` and printed in the
terminal summary.

Example counts come from a settings profile: ``HOSTILE_FUZZ_PROFILE=thorough`` for a long run
(ten times the examples), the default ``ci`` keeps the whole hostile suite within a minute or two.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.harness import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    DAVE,
    MALLORY,
    STRANGER,
    TEAM_ID,
    TRACE_MARKERS,
    HostileHarness,
    Requested,
    capture_everything,
    hostile_bot,
    seed_oidc_idp,
)
from tests.hostile.strategies import command_texts, hostile_word, mutated, user_texts
from tests.hostile.tally import fuzzed
from tests.slack_requests import block_actions, plain_text_value, slash_command, view_submission

_SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much]
settings.register_profile(
    "hostile-ci", max_examples=300, deadline=None, database=None, suppress_health_check=_SUPPRESSED
)
settings.register_profile(
    "hostile-thorough", max_examples=3000, deadline=None, database=None, suppress_health_check=_SUPPRESSED
)
PROFILE = settings.get_profile("hostile-" + os.environ.get("HOSTILE_FUZZ_PROFILE", "ci"))

APPROVERS = {BOB, CAROL, DAVE}
# Well-formed Atlas request paths: the fake names the operation of every route it matched.
_SAFE_PATH = re.compile(r"^/api/(atlas/v2|oauth)/[A-Za-z0-9/_:-]+$")


@dataclass
class Fuzz:
    h: HostileHarness = field(repr=False)
    caplog: pytest.LogCaptureFixture = field(repr=False)
    pending: Requested
    modal: dict[str, Any] = field(repr=False)
    atlas_baseline: int

    async def send(self, body: bytes) -> httpx.Response:
        """Send one signed body; wait until the bot is idle; check what every request must satisfy."""
        first_record = len(self.caplog.records)
        before = set(asyncio.all_tasks())
        response = await self.h.post_signed(body)
        await _idle(before)
        assert response.status_code < 500, (response.status_code, response.text[:300])
        for marker in TRACE_MARKERS:
            assert marker not in response.text, response.text[:300]
        errors = [
            f"{r.name}: {r.getMessage()}"
            for r in self.caplog.records[first_record:]
            if r.levelno >= logging.ERROR or (r.exc_info is not None and r.exc_info[0] is not None)
        ]
        assert errors == [], errors
        return response

    def new_atlas_requests(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.h.fake_atlas.requests[self.atlas_baseline :]]


def _is_work(task: asyncio.Task[Any]) -> bool:
    # aiohttp serves each connection in a task that outlives its requests while the connection is
    # kept alive (the bot's Slack client keeps one open for 15 s): an idle connection, not work.
    return getattr(task.get_coro(), "__qualname__", "") != "RequestHandler.start"


async def _idle(before: set[asyncio.Task[Any]], timeout: float = 10.0) -> None:
    """Wait for every task started since ``before`` (the work each listener hands over after its
    ack, the bot's posts), not for connections kept alive."""
    me = asyncio.current_task()
    started: list[asyncio.Task[Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while started := [
                t for t in asyncio.all_tasks() if t not in before and t is not me and not t.done() and _is_work(t)
            ]:
                await asyncio.wait(started)
    except TimeoutError:
        stacks = [f"{t.get_coro()!r} at {t.get_stack(limit=3)!r}" for t in started]
        raise AssertionError(f"still running after {timeout:.0f} s: {stacks}") from None


@pytest.fixture
async def fuzz(database_url: str, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Fuzz]:
    capture_everything(caplog, logging.INFO)
    async with hostile_bot(database_url, group_cache_seconds=60) as h:
        fed, idp = seed_oidc_idp(h)
        pending = await h.request(f"revoke-jwks {fed} {idp}")
        modal = await h.open_modal("revoke-token default")
        await h.quiet()
        fuzz = Fuzz(h, caplog, pending, modal, atlas_baseline=len(h.fake_atlas.requests))
        yield fuzz
        # Whatever was thrown at it, the request made before is untouched and nothing ran.
        await h.quiet()
        assert await h.state_of(pending) == "pending"
        assert (await h.bot.store.get(pending.request_id)).approvers == ()
        assert h.atlas_writes() == []


def _command(fuzz: Fuzz, text: str, *, user: str, team: str = TEAM_ID) -> bytes:
    h = fuzz.h
    return slash_command(
        text,
        user_id=user,
        team_id=team,
        channel_id=CHANNEL,
        trigger_id=h.fake_slack.issue_trigger_id(),
        response_url=h.fake_slack.response_url(channel_id=CHANNEL),
    )


@settings(PROFILE)
@given(
    text=command_texts(),
    who=st.sampled_from([(STRANGER, TEAM_ID), (ALICE, "T0OTHERCO"), (BOB, "E0GRID"), (MALLORY, "T0OTHERCO")]),
)
async def test_commands_from_people_who_may_not_request_never_reach_atlas(
    fuzz: Fuzz, text: str, who: tuple[str, str]
) -> None:
    user, team = who
    fuzzed("command text, no right to request")
    response = await fuzz.send(_command(fuzz, text, user=user, team=team))
    assert response.status_code == (400 if "\x00" in text else 200)
    assert fuzz.new_atlas_requests() == []


@settings(PROFILE)
@given(text=command_texts(hostile_args_only=True))
async def test_commands_with_a_hostile_argument_never_reach_atlas(fuzz: Fuzz, text: str) -> None:
    # Alice may request everything: only the argument patterns stand between her text and a URL.
    fuzzed("command text, hostile argument")
    response = await fuzz.send(_command(fuzz, text, user=ALICE))
    assert response.status_code == (400 if "\x00" in text else 200)
    assert fuzz.new_atlas_requests() == []


def _payload(body: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(dict(parse_qsl(body.decode()))["payload"])
    return loaded


def _form(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


@st.composite
def click_mutations(draw: st.DrawFn, fuzz: Fuzz) -> tuple[bytes, list[str]]:
    h, pending = fuzz.h, fuzz.pending
    base = _payload(
        block_actions(
            user_id=draw(st.sampled_from([MALLORY, STRANGER, "U0FUZZ"])),
            channel_id=draw(st.sampled_from([CHANNEL, "C0OTHER"])),
            message_ts=pending.message_ts,
            action_id=draw(st.sampled_from(["atlas_approve", "atlas_reject", "atlas_pick_action"])),
            value=pending.request_id,
            response_url=h.fake_slack.response_url(channel_id=CHANNEL),
        )
    )

    def strings(path: tuple[str | int, ...], current: str) -> st.SearchStrategy[str]:
        field = path[-1]
        if field == "id" and path[0] == "user":
            # Anyone but an approver, or the requester (who may withdraw, legitimately).
            return st.sampled_from([MALLORY, STRANGER, "", "U0" + "A" * 300])
        if field in ("value",):
            return st.one_of(st.just(pending.request_id.upper()), st.just(pending.request_id[:8]), hostile_word())
        if field == "action_id":
            return st.sampled_from(["atlas_approve", "atlas_reject", "atlas_pick_action", "atlas_pick_target"])
        return st.nothing()

    tree, notes = draw(mutated(base, strings=strings))
    if isinstance(tree.get("user"), dict) and str(tree["user"].get("id")) in APPROVERS | {ALICE}:
        tree["user"]["id"] = STRANGER
    return _form(tree), notes


@st.composite
def submission_mutations(draw: st.DrawFn, fuzz: Fuzz) -> tuple[bytes, list[str]]:
    modal = fuzz.modal
    label = next(b for b in modal["blocks"] if b.get("block_id") == "confirm")["label"]["text"]
    identifier = label.removeprefix("Type ").removesuffix(" to confirm")
    values = {
        "confirm": {"value": plain_text_value(draw(st.one_of(st.just(identifier), st.text(max_size=30))))},
        "reason": {"value": plain_text_value(draw(user_texts(max_size=700)))},
        "secret": {"value": plain_text_value(draw(st.one_of(st.just("tok" * 10), st.text(max_size=50))))},
    }
    base = _payload(
        view_submission(
            user_id=draw(st.sampled_from([ALICE, MALLORY])),
            callback_id=modal["callback_id"],
            private_metadata=modal["private_metadata"],
            values=values,
        )
    )
    if draw(st.booleans()):
        return _form(base), ["unmutated"]
    tree, notes = draw(mutated(base))
    return _form(tree), notes


@st.composite
def command_form_mutations(draw: st.DrawFn, fuzz: Fuzz) -> tuple[bytes, list[str]]:
    fields = dict(parse_qsl(_command(fuzz, draw(command_texts()), user=STRANGER).decode(), keep_blank_values=True))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(fields)))
        if draw(st.booleans()):
            fields.pop(name, None)
        else:
            fields[name] = draw(st.one_of(st.text(max_size=40), hostile_word()))
    # A stranger stays a stranger (whatever user_id says, no one listed in the policy).
    if fields.get("user_id") in APPROVERS | {ALICE, MALLORY}:
        fields["user_id"] = STRANGER
    return urlencode(fields).encode(), [f"form fields {sorted(fields)}"]


@settings(PROFILE, max_examples=PROFILE.max_examples * 4 // 3)
@given(data=st.data())
async def test_mutated_clicks_submissions_and_commands_never_approve_or_run_anything(
    fuzz: Fuzz, data: st.DataObject
) -> None:
    kind = data.draw(st.sampled_from(["click", "submission", "command form"]))
    strategy = {"click": click_mutations, "submission": submission_mutations, "command form": command_form_mutations}
    body, notes = data.draw(strategy[kind](fuzz))
    fuzzed(f"payload mutation, {kind}")
    response = await fuzz.send(body)
    assert response.status_code in (200, 400), (notes, response.status_code)
    assert fuzz.h.atlas_writes() == [], notes

"""The service on its own thread (as ``serve`` runs it with ``ATLAS_CHATOPS_WORK=thread``; its
default, a process of its own, is tested in tests/replicas/test_work_process.py): Slack's acks never
wait for it, and a command is refused at once when its form could not open in time.

Every e2e flow also runs with the service on its own thread (the ``harness`` fixture's
``work-thread`` case); most tests here are about what only that arrangement can do.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bot.slack.listeners import (
    BEFORE_ACK_SECONDS,
    REFUSE_COMMANDS_BEHIND_SECONDS,
    REFUSE_COMMANDS_EXPECTED_WAIT_SECONDS,
    REFUSE_COMMANDS_FORM_WAIT_SECONDS,
)
from tests.e2e.harness import BOB, Harness, running_bot
from tests.e2e.test_flow import seed_oidc_idp
from tests.e2e.test_picker import choose_action, open_picker, submit_picker, suggest

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def stuck_work_loop(h: Harness) -> AsyncIterator[threading.Event]:
    """The service's loop runs nothing else until the block ends (or the yielded event is set)."""
    release, stuck = threading.Event(), threading.Event()

    def stick() -> None:
        stuck.set()
        release.wait(30)

    h.bot.work.loop.call_soon_threadsafe(stick)
    assert await asyncio.to_thread(stuck.wait, 5)
    try:
        yield release
    finally:
        release.set()
        # Until its next heartbeat the loop still looks stuck (WorkLoop.behind), and an answer asked
        # for in between is "too busy": what follows the block starts once the loop runs again.
        for _ in range(100):
            if h.bot.work.behind() < BEFORE_ACK_SECONDS / 2:
                break
            await asyncio.sleep(0.05)


async def test_acks_are_sent_while_the_service_loop_is_stuck(database_url: str) -> None:
    async with running_bot(database_url, work_thread=True) as h:
        fed, idp = seed_oidc_idp(h)
        requested = await h.request(f"revoke-jwks {fed} {idp}")
        async with stuck_work_loop(h) as release:
            opened_before = len(h.fake_slack.calls_to("views.open"))
            command = await h.command(f"revoke-jwks {fed} {idp}")
            assert command.status_code == 200 and not command.content
            refused = await h.command("revoke-employee-access 65a1b2c3d4e5f6a7b8c9d0e1 ../../admin")
            assert refused.status_code == 200 and "clusterName" in refused.json()["text"]
            click = await h.click(requested, user=BOB)
            assert click.status_code == 200 and not click.content
            # Acked, and nothing of the work behind them has run yet.
            assert not release.is_set()
            assert len(h.fake_slack.calls_to("views.open")) == opened_before
            assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 0
        await h.fake_slack.wait_for("views.open", count=opened_before + 1)
        await h.wait_thread(requested, "Done")
        await h.settle()
        assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 1


async def test_a_failure_after_the_ack_reaches_the_person_from_the_work_thread(database_url: str) -> None:
    async with running_bot(database_url, work_thread=True) as h:
        fed, idp = seed_oidc_idp(h)
        h.fake_slack.fail_next("views.open", error="expired_trigger_id")
        response = await h.command(f"revoke-jwks {fed} {idp}")
        assert response.status_code == 200 and not response.content
        reply = await h.wait_ephemeral("Could not open the confirmation form")
        assert "expired_trigger_id" in reply


async def test_commands_are_refused_at_once_when_the_work_is_too_far_behind_and_clicks_are_not(
    database_url: str,
) -> None:
    async with running_bot(database_url, work_thread=True) as h:
        fed, idp = seed_oidc_idp(h)
        requested = await h.request(f"revoke-jwks {fed} {idp}")
        opened_before = len(h.fake_slack.calls_to("views.open"))
        async with stuck_work_loop(h):
            for _ in range(100):
                if h.bot.work.behind() > REFUSE_COMMANDS_BEHIND_SECONDS:
                    break
                await asyncio.sleep(0.05)
            refused = await h.command(f"revoke-jwks {fed} {idp}")
            assert refused.status_code == 200
            body = refused.json()
            assert body["response_type"] == "ephemeral"
            assert "too busy to open the form" in body["text"] and "Nothing was done" in body["text"]
            click = await h.click(requested, user=BOB)  # an approval is never turned away
            assert click.status_code == 200 and not click.content
        await h.wait_thread(requested, "Done")
        await h.settle()
        assert len(h.fake_slack.calls_to("views.open")) == opened_before, "the refused command opened nothing"
        assert h.fake_atlas.count("revokeFederationSettingIdentityProviderJwks") == 1
        metrics = (await h.http.get(f"{h.url}/metrics")).text
        assert "atlas_chatops_commands_refused_busy_total 1.0" in metrics


async def test_commands_are_refused_while_an_earlier_form_has_waited_too_long_to_open(harness: Harness) -> None:
    h = harness
    fed, idp = seed_oidc_idp(h)
    h.fake_slack.delay("views.open", 6.0)  # Slack, or the bot's own backlog, holds the first form
    first = await h.command(f"revoke-jwks {fed} {idp}")
    assert first.status_code == 200 and not first.content
    await h.fake_slack.wait_for("views.open")
    await asyncio.sleep(REFUSE_COMMANDS_FORM_WAIT_SECONDS + 0.2)
    second = await h.command(f"revoke-jwks {fed} {idp}")
    assert "too busy to open the form" in second.json()["text"]
    h.fake_slack.delay("views.open", 0)
    await h.fake_slack.wait_for("views.update")  # the first form opened and is being filled in
    third = await h.command(f"revoke-jwks {fed} {idp}")
    assert third.status_code == 200 and not third.content, "taken on again once the old form opened"
    await h.fake_slack.wait_for("views.open", count=2)
    await h.settle()


async def test_a_burst_of_commands_is_refused_once_its_forms_would_wait_too_long_in_line(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before any form has waited long, and before any has opened to show the bot's pace: the line
    # ahead of a new form is what says it would wait (here, at 5 forms a second, over 1 s).
    monkeypatch.setattr("bot.slack.listeners.FORMS_PER_SECOND_FLOOR", 5.0)
    h = harness
    fed, idp = seed_oidc_idp(h)
    h.fake_slack.delay("views.open", REFUSE_COMMANDS_FORM_WAIT_SECONDS - 0.3)
    taken_on = int(5.0 * REFUSE_COMMANDS_EXPECTED_WAIT_SECONDS) + 1  # the last sees 5 in line: 1.0 s
    started = time.monotonic()
    answers = [await h.command(f"revoke-jwks {fed} {idp}") for _ in range(taken_on + 2)]
    assert time.monotonic() - started < REFUSE_COMMANDS_FORM_WAIT_SECONDS - 0.3, "no form opened meanwhile"
    assert [not a.content for a in answers] == [True] * taken_on + [False, False]
    for refused in answers[taken_on:]:
        assert "too busy to open the form" in refused.json()["text"]
    await h.fake_slack.wait_for("views.open", count=taken_on)
    h.fake_slack.delay("views.open", 0)
    await h.settle()
    assert len(h.fake_slack.calls_to("views.open")) == taken_on, "the refused commands opened nothing"
    again = await h.command(f"revoke-jwks {fed} {idp}")
    assert again.status_code == 200 and not again.content, "taken on again once the line has opened"
    await h.fake_slack.wait_for("views.open", count=taken_on + 1)
    await h.settle()


async def test_picker_answers_say_busy_within_slacks_3_seconds_while_the_work_loop_is_stuck(
    database_url: str,
) -> None:
    async with running_bot(database_url, work_thread=True) as h:
        fed, idp = seed_oidc_idp(h)
        chosen = await choose_action(h, await open_picker(h), "revoke-jwks")
        option = {"value": f"{fed} {idp}", "text": {"type": "plain_text", "text": "x"}}
        async with stuck_work_loop(h):
            # Each is answered within Slack's 3 s: the first after waiting BEFORE_ACK_SECONDS, the
            # second at once (by then the work loop's heartbeat says it is further behind than that).
            started = time.monotonic()
            assert await suggest(h, chosen, "revoke-jwks") == []
            options_took = time.monotonic() - started
            assert BEFORE_ACK_SECONDS - 0.1 <= options_took < 3.0, options_took
            started = time.monotonic()
            answer = await submit_picker(h, chosen, "revoke-jwks", option)
            next_took = time.monotonic() - started
            assert answer["response_action"] == "errors" and "Press Next again" in answer["errors"]["pick_action"]
            assert next_took < 3.0, next_took
        # The work loop is free again: the same menu and Next work (the listing may take a keystroke
        # or two to arrive, as with a slow Atlas).
        for _ in range(50):
            if options := await suggest(h, chosen, "revoke-jwks"):
                break
            await asyncio.sleep(0.1)
        assert [o["value"] for o in options] == [f"{fed} {idp}"]
        answer = await submit_picker(h, chosen, "revoke-jwks", options[0])
        assert answer["response_action"] == "update" and answer["view"]["callback_id"] == "atlas_confirm"
        await h.settle()
        metrics = (await h.http.get(f"{h.url}/metrics")).text
        assert "atlas_chatops_answers_too_late_total 2.0" in metrics

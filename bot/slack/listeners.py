"""Bolt listeners: ack, turn the payload into an input value, hand the rest over by name.

What follows an ack (and every read an answer waits for) is a method of
:class:`bot.slack.after_ack.AfterAck`, run through a :class:`bot.work_loop.Work`: on this loop, on
the service's thread, or in the work process (bot.work_process).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.intake import ClickInput, CommandInput, Intake, MessageLocation, ReplyTo, SubmissionInput, error_text
from bot.metrics import Metrics
from bot.views import (
    APPROVE_ACTION_ID,
    CONFIRM_CALLBACK_ID,
    DECISION_BLOCK,
    PICK_ACTION_BLOCK,
    PICK_ACTION_ID,
    PICK_CALLBACK_ID,
    PICK_TARGET_ACTION_ID,
    REJECT_ACTION_ID,
    Message,
    plain_message,
)
from bot.work_loop import Work

__all__ = ["FormsOpening", "register"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# A command opens its form with several steps on the work loop (the policy, a database read,
# views.open), each waiting behind its backlog and for a database connection. When the work loop
# is over 1 s behind, or the oldest command taken on has waited over 2 s for its form, a new form
# would likely miss Slack's 3 s trigger_id window: the person is told at once instead. Forms wait
# in line, so one that has waited 2 s says a new one would wait about as long.
REFUSE_COMMANDS_BEHIND_SECONDS = 1.0
REFUSE_COMMANDS_FORM_WAIT_SECONDS = 2.0
# Both signals above lag a burst: acks return in milliseconds, so 50 people (or a script) typing
# again at once had queued 2,000 forms in bench/ (closed loop, 50 at a time) before the oldest had
# waited 2 s, and 1,316 of them opened after Slack's 3 s. The forms still to open divided by how
# many opened in the last second says at once how long a new one would wait in line; past 1 s it
# is refused (what follows views.open, and Slack's own round trip, need the rest of the window).
# Until the bot has shown its pace, it is assumed to open FORMS_PER_SECOND_FLOOR a second, so
# a burst from idle is taken on up to that many seconds' worth.
REFUSE_COMMANDS_EXPECTED_WAIT_SECONDS = 1.0
FORMS_PER_SECOND_FLOOR = 50.0
FORMS_PACE_WINDOW_SECONDS = 1.0
BUSY_LOG_EVERY_SECONDS = 10.0
# Picker options and the picker's Next are answered in their ack, which Slack waits 3 s for: what
# such an ack waits for on the work loop gets 2.5 s from the ack's side, backlog included, and is
# cancelled after that (the person gets "busy" rather than Slack's generic error).
BEFORE_ACK_SECONDS = 2.5


class FormsOpening:
    """Commands taken on whose form has not opened yet, oldest first, and when recent ones opened.
    Counted in by the ack side, counted out (by ticket) from the work side: any thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: dict[int, float] = {}  # insertion order is age order
        self._opened_at: deque[float] = deque()  # within the last FORMS_PACE_WINDOW_SECONDS
        self._tickets = itertools.count(1)
        self._lock = threading.Lock()

    def add(self) -> int:
        """Count one command in; :meth:`opened` with the returned ticket counts it out."""
        ticket = next(self._tickets)
        with self._lock:
            self._since[ticket] = self._clock()
        return ticket

    def opened(self, ticket: int) -> None:
        """The ticket's form has opened, or will not be (calling it again does nothing)."""
        with self._lock:
            if self._since.pop(ticket, None) is not None:
                now = self._clock()
                self._opened_at.append(now)
                self._forget_before(now - FORMS_PACE_WINDOW_SECONDS)

    def _forget_before(self, cutoff: float) -> None:
        while self._opened_at and self._opened_at[0] < cutoff:
            self._opened_at.popleft()

    def oldest_wait(self) -> float:
        with self._lock:
            oldest = next(iter(self._since.values()), None)
        return 0.0 if oldest is None else self._clock() - oldest

    def expected_wait(self) -> float:
        """About how long a form taken on now would wait for those ahead of it to open (Little's law:
        the forms in line over the recent pace, which is never taken as under the floor)."""
        with self._lock:
            self._forget_before(self._clock() - FORMS_PACE_WINDOW_SECONDS)
            waiting, opened = len(self._since), len(self._opened_at)
        pace = max(opened / FORMS_PACE_WINDOW_SECONDS, FORMS_PER_SECOND_FLOOR)
        return waiting / pace


def _click_input(body: dict[str, Any]) -> ClickInput:
    user_id, team_id = _user(body)
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    action = (body.get("actions") or [{}])[0]
    on_approval_message = (
        action.get("block_id") == DECISION_BLOCK  # /atlas pending and the Home tab number theirs
        and container.get("type") == "message"
        and not container.get("is_ephemeral")
        and isinstance(container.get("channel_id"), str)
        and isinstance(container.get("message_ts"), str)
    )
    return ClickInput(
        user_id=user_id,
        team_id=team_id,
        channel_id=channel,
        request_id=str(action.get("value", "")),
        approval_message=(
            MessageLocation(channel=container["channel_id"], ts=container["message_ts"])
            if on_approval_message
            else None
        ),
    )


def _view_values(view: dict[str, Any]) -> dict[str, str | None]:
    """block_id -> the typed text, or the value of the selected option for menus."""
    values: dict[str, str | None] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for element in (actions or {}).values():
            if not isinstance(element, dict):
                continue
            selected = element.get("selected_option")
            if isinstance(selected, dict):
                values[block_id] = str(selected.get("value", ""))
            else:
                values[block_id] = element.get("value")
    return values


def _user(body: dict[str, Any]) -> tuple[str, str]:
    """(user id, the user's own team id): it differs from the app's in Slack Connect channels."""
    user = body.get("user") or {}
    return str(user.get("id", "")), str(user.get("team_id") or (body.get("team") or {}).get("id", ""))


def _from_home_tab(body: dict[str, Any]) -> bool:
    return (body.get("view") or {}).get("type") == "home"


def _reply_to(body: dict[str, Any]) -> ReplyTo:
    """Who to tell about a failure: the command's or the click's person, where they acted."""
    return ReplyTo(
        user=str(body.get("user_id") or _user(body)[0]),
        channel=body.get("channel_id") or _click_input(body).channel_id,
        response_url=body.get("response_url"),
    )


def register(app: AsyncApp, intake: Intake, metrics: Metrics, work: Work, forms_opening: FormsOpening) -> None:
    """Listeners ack on Bolt's loop with what ``intake`` checks there; the rest goes to ``work``,
    whose side counts each form out of ``forms_opening`` by its ticket once it opens."""

    async def before_ack(too_late: T, name: str, /, **kwargs: Any) -> T:
        """Work an ack's body depends on (options, a picked target), run on the work side; ``too_late``
        when it cannot be answered within :data:`BEFORE_ACK_SECONDS`."""
        if work.behind() <= BEFORE_ACK_SECONDS:
            try:
                answer: T = await asyncio.wait_for(work.call(name, **kwargs), BEFORE_ACK_SECONDS)
                return answer
            except TimeoutError:
                pass
        metrics.answers_too_late.inc()
        log.warning("an answer Slack waits for took over %.1f s on the bot's work side", BEFORE_ACK_SECONDS)
        return too_late

    busy_logged_at, refused_unlogged = 0.0, 0

    def too_busy() -> Message | None:
        nonlocal busy_logged_at, refused_unlogged
        behind, form_wait, expected = work.behind(), forms_opening.oldest_wait(), forms_opening.expected_wait()
        if (
            behind <= REFUSE_COMMANDS_BEHIND_SECONDS
            and form_wait <= REFUSE_COMMANDS_FORM_WAIT_SECONDS
            and expected <= REFUSE_COMMANDS_EXPECTED_WAIT_SECONDS
        ):
            return None
        behind = max(behind, form_wait, expected)
        metrics.commands_refused_busy.inc()
        refused_unlogged += 1
        if time.monotonic() - busy_logged_at >= BUSY_LOG_EVERY_SECONDS:  # one line, not one per command
            log.warning("the bot's work is %.1f s behind: %d commands refused as busy", behind, refused_unlogged)
            busy_logged_at, refused_unlogged = time.monotonic(), 0
        return plain_message(
            f":hourglass: The bot is too busy to open the form within Slack's 3 seconds (its work is "
            f"{behind:.1f} s behind). Nothing was done: run the command again in a few seconds."
        )

    @app.command("/atlas")
    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        early = intake.parse(str(body.get("text", ""))) or too_busy()
        if early is not None:
            await ack(text=early.text, blocks=early.blocks_as_dicts(), response_type="ephemeral")
            return
        await ack()
        cmd = CommandInput(
            user_id=str(body.get("user_id", "")),
            team_id=str(body.get("team_id", "")),
            channel_id=str(body.get("channel_id", "")),
            text=str(body.get("text", "")),
            trigger_id=str(body.get("trigger_id", "")),
            response_url=body.get("response_url"),
        )
        work.submit("open_form", _reply_to(body), cmd, forms_opening.add())

    @app.view(CONFIRM_CALLBACK_ID)
    async def on_confirm(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id, team_id = _user(body)
        submission = SubmissionInput(
            user_id=user_id,
            team_id=team_id,
            private_metadata=str(view.get("private_metadata", "")),
            values=_view_values(view),
        )
        checked = intake.check_submission(submission)
        if isinstance(checked, dict):
            await ack(response_action="errors", errors=checked)
            return
        await ack()
        work.submit("submit", _reply_to(body), submission)

    @app.action(APPROVE_ACTION_ID)
    async def on_approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        work.submit("approve", _reply_to(body), _click_input(body), home=_from_home_tab(body))

    @app.action(REJECT_ACTION_ID)
    async def on_reject(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        work.submit("reject", _reply_to(body), _click_input(body), home=_from_home_tab(body))

    @app.action(PICK_ACTION_ID)
    async def on_pick_action(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        view = body.get("view") or {}
        work.submit(
            "pick_action",
            _reply_to(body),
            user_id=_user(body)[0],
            private_metadata=str(view.get("private_metadata", "")),
            action=str((action.get("selected_option") or {}).get("value", "")),
            view_id=str(view.get("id", "")),
            view_hash=str(view.get("hash", "")),
        )

    @app.options(PICK_TARGET_ACTION_ID)
    async def on_pick_options(ack: AsyncAck, body: dict[str, Any]) -> None:
        user_id, team_id = _user(body)
        answer = await before_ack(
            # Like an Atlas listing that outlasts its budget: nothing to pick yet, the next keystroke asks again.
            {"options": []},
            "picker_options",
            user_id=user_id,
            team_id=team_id,
            private_metadata=str((body.get("view") or {}).get("private_metadata", "")),
            block_id=str(body.get("block_id", "")),
            query=str(body.get("value", ""))[:200],
        )
        await ack(**answer)

    @app.view(PICK_CALLBACK_ID)
    async def on_pick(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id, team_id = _user(body)
        picked = await before_ack(
            {PICK_ACTION_BLOCK: "The bot is too busy to check this within Slack's 3 seconds. Press Next again."},
            "picker_next",
            sub=SubmissionInput(
                user_id=user_id,
                team_id=team_id,
                private_metadata=str(view.get("private_metadata", "")),
                values=_view_values(view),
            ),
        )
        if isinstance(picked, dict):
            await ack(response_action="errors", errors=picked)
            return
        pick, confirmation_view = picked
        # The picker turns into the confirmation form in place (no trigger_id needed), then fills in.
        await ack(response_action="update", view=confirmation_view)
        work.submit("fill_picked", _reply_to(body), pick, str(view.get("id", "")))

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab") != "home":
            return
        work.submit(
            "publish_home", _reply_to(body), user_id=str(event.get("user", "")), team_id=str(body.get("team_id", ""))
        )

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        # A listener failing before its work was handed over (a read an ack waited for, say).
        work.submit("tell_text", _reply_to(body), error_text(error))

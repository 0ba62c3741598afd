"""Bolt listeners: ack, turn the payload into an input value, call one service method, reply.

Replies to one person go through the ``response_url`` Slack gave us (it works even where the
bot is not in the channel), falling back to ``chat.postEphemeral``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import ChatOpsError
from bot.service import ChatOps, ClickInput, CommandInput, MessageLocation, SubmissionInput
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
from bot.work_loop import WorkLoop

__all__ = ["register"]

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
    Added on the ack's thread, counted out on the work thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: dict[object, float] = {}  # insertion order is age order
        self._opened_at: deque[float] = deque()  # within the last FORMS_PACE_WINDOW_SECONDS
        self._lock = threading.Lock()

    def add(self) -> Callable[[], None]:
        """Count one command in; the returned function counts it out (calling it again does nothing)."""
        key = object()
        with self._lock:
            self._since[key] = self._clock()

        def opened() -> None:
            with self._lock:
                if self._since.pop(key, None) is not None:
                    now = self._clock()
                    self._opened_at.append(now)
                    self._forget_before(now - FORMS_PACE_WINDOW_SECONDS)

        return opened

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


def _ephemeral(message: Message) -> dict[str, Any]:
    return {
        "text": message.text,
        "blocks": message.blocks_as_dicts(),
        "response_type": "ephemeral",
        "replace_original": False,
    }


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


def register(app: AsyncApp, service: ChatOps, work: WorkLoop) -> None:
    """Listeners ack on Bolt's loop; everything after the ack, and every read an answer waits
    for, runs on ``work``: the service's loop (see :mod:`bot.work_loop`)."""

    async def tell(message: Message, *, response_url: str | None, channel: str | None, user: str) -> None:
        if response_url:
            try:
                sent = await AsyncWebhookClient(response_url).send_dict(_ephemeral(message))
                if sent.status_code == 200:
                    return
                # used_url (6th post), expired_url (after 30 minutes), or Slack failing.
                log.warning("response_url post failed: HTTP %s", sent.status_code)
            except (SlackClientError, aiohttp.ClientError, OSError, ValueError) as exc:
                log.warning("response_url post failed: %s", type(exc).__name__)
        if channel:
            try:
                await service.slack.chat_postEphemeral(
                    channel=channel, user=user, text=message.text, blocks=message.blocks
                )
            except (SlackApiError, SlackClientError) as exc:
                error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
                log.warning("chat.postEphemeral failed: %s", error)

    async def report(error: Exception, body: dict[str, Any]) -> None:
        """One place turns failures into a message for the person who acted (on the work loop)."""
        if isinstance(error, ChatOpsError):
            text = f":warning: {error.user_message}"
        else:
            log.error("unhandled error in a listener: %s", type(error).__name__, exc_info=error)
            text = ":warning: Something went wrong on the bot's side; nothing further was done. It was logged."
        user = str(body.get("user_id") or _user(body)[0])
        channel = body.get("channel_id") or _click_input(body).channel_id
        await tell(plain_message(text), response_url=body.get("response_url"), channel=channel, user=user)

    def after_ack(work_after_ack: Coroutine[Any, Any, None], body: dict[str, Any]) -> None:
        async def guarded() -> None:
            try:
                await work_after_ack
            except Exception as error:
                await report(error, body)

        work.submit(guarded())

    async def before_ack(read: Coroutine[Any, Any, T], *, too_late: T) -> T:
        """Work an ack's body depends on (options, a picked target), run on the work loop; ``too_late``
        when it cannot be answered within :data:`BEFORE_ACK_SECONDS`."""
        if work.behind() > BEFORE_ACK_SECONDS:
            read.close()  # never started
        else:
            try:
                return await asyncio.wait_for(work.call(read), BEFORE_ACK_SECONDS)
            except TimeoutError:
                pass
        service.metrics.answers_too_late.inc()
        log.warning("an answer Slack waits for took over %.1f s on the bot's work loop", BEFORE_ACK_SECONDS)
        return too_late

    busy_logged_at, refused_unlogged = 0.0, 0
    forms_opening = FormsOpening()

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
        service.metrics.commands_refused_busy.inc()
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
        early = service.parse(str(body.get("text", ""))) or too_busy()
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

        form_opened = forms_opening.add()

        async def open_form() -> None:
            try:
                reply = await service.command(cmd, form_opened=form_opened)
            finally:
                form_opened()  # a meta command, a denial, a failure: nothing more to wait for
            if reply is not None:
                await tell(reply, response_url=cmd.response_url, channel=cmd.channel_id, user=cmd.user_id)

        after_ack(open_form(), body)

    @app.view(CONFIRM_CALLBACK_ID)
    async def on_confirm(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id, team_id = _user(body)
        checked = service.check_submission(
            SubmissionInput(
                user_id=user_id,
                team_id=team_id,
                private_metadata=str(view.get("private_metadata", "")),
                values=_view_values(view),
            )
        )
        if isinstance(checked, dict):
            await ack(response_action="errors", errors=checked)
            return
        await ack()

        async def submit() -> None:
            try:
                reply = await service.submit(checked)
            except ChatOpsError as exc:
                # A view submission has no response_url of its own, so the error report could not
                # reach the requester; the form's signed metadata carries the command's.
                reply = plain_message(f":warning: {exc.user_message}")
            if reply is not None:
                await tell(reply, response_url=checked.response_url, channel=checked.channel_id, user=checked.user_id)

        after_ack(submit(), body)

    async def decided(reply: Message | None, body: dict[str, Any], done: str) -> None:
        if _from_home_tab(body):
            # No response_url on the home tab: the refreshed tab carries the answer.
            user_id, team_id = _user(body)
            await service.publish_home(user_id=user_id, team_id=team_id, notice=reply.text if reply else done)
        elif reply is not None:
            click = _click_input(body)
            await tell(reply, response_url=body.get("response_url"), channel=click.channel_id, user=click.user_id)

    @app.action(APPROVE_ACTION_ID)
    async def on_approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()

        async def approve() -> None:
            await decided(await service.approve(_click_input(body)), body, ":ballot_box_with_check: Approved.")

        after_ack(approve(), body)

    @app.action(REJECT_ACTION_ID)
    async def on_reject(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()

        async def reject() -> None:
            await decided(await service.reject(_click_input(body)), body, ":no_entry: Rejected.")

        after_ack(reject(), body)

    @app.action(PICK_ACTION_ID)
    async def on_pick_action(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        view = body.get("view") or {}
        user_id, _ = _user(body)
        after_ack(
            service.picker_chose_action(
                user_id=user_id,
                private_metadata=str(view.get("private_metadata", "")),
                action=str((action.get("selected_option") or {}).get("value", "")),
                view_id=str(view.get("id", "")),
                view_hash=str(view.get("hash", "")),
            ),
            body,
        )

    @app.options(PICK_TARGET_ACTION_ID)
    async def on_pick_options(ack: AsyncAck, body: dict[str, Any]) -> None:
        user_id, team_id = _user(body)
        answer = await before_ack(
            service.picker_options(
                user_id=user_id,
                team_id=team_id,
                private_metadata=str((body.get("view") or {}).get("private_metadata", "")),
                block_id=str(body.get("block_id", "")),
                query=str(body.get("value", ""))[:200],
            ),
            # Like an Atlas listing that outlasts its budget: nothing to pick yet, the next keystroke asks again.
            too_late={"options": []},
        )
        await ack(**answer)

    @app.view(PICK_CALLBACK_ID)
    async def on_pick(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id, team_id = _user(body)
        picked = await before_ack(
            service.picker_submission(
                SubmissionInput(
                    user_id=user_id,
                    team_id=team_id,
                    private_metadata=str(view.get("private_metadata", "")),
                    values=_view_values(view),
                )
            ),
            too_late={
                PICK_ACTION_BLOCK: "The bot is too busy to check this within Slack's 3 seconds. Press Next again."
            },
        )
        if isinstance(picked, dict):
            await ack(response_action="errors", errors=picked)
            return
        # The picker turns into the confirmation form in place (no trigger_id needed), then fills in.
        await ack(response_action="update", view=picked.view)
        after_ack(service.fill_preview(picked, view_id=str(view.get("id", "")), view_hash=None), body)

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab") != "home":
            return
        after_ack(service.publish_home(user_id=str(event.get("user", "")), team_id=str(body.get("team_id", ""))), body)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        # A listener failing before its work was handed over (a read an ack waited for, say).
        await work.call(report(error, body))

"""What the listeners hand over once they have acked, by name, run where the service lives.

The listeners (bot.slack.listeners) run beside the HTTP server and ack; everything that waits on
the database, Slack or Atlas is one of the methods below, asked for by name with plain values (the
small input dataclasses, strings, dicts). That is what lets the work run on the same loop, on a
thread of its own or in a process of its own (bot.work_loop, bot.work_process) with the same code.

Replies to one person go through the ``response_url`` Slack gave us (it works even where the bot
is not in the channel), falling back to ``chat.postEphemeral``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import ChatOpsError, StoreUnavailable
from bot.intake import ClickInput, CommandInput, ReplyTo, SubmissionInput, error_text
from bot.service import ChatOps, Confirmation
from bot.slack.blockkit import view_dict
from bot.views import Message, plain_message

__all__ = ["PICKED_KEPT", "AfterAck"]

log = logging.getLogger(__name__)

# Confirmations built by the picker's Next wait here for the ack that shows them, then fill in
# their preview. An answer that came too late for its ack is never claimed; the oldest go first.
PICKED_KEPT = 256


def _ephemeral(message: Message) -> dict[str, Any]:
    return {
        "text": message.text,
        "blocks": message.blocks_as_dicts(),
        "response_type": "ephemeral",
        "replace_original": False,
    }


class AfterAck:
    """The work after an ack. Methods taking a :class:`ReplyTo` first are handed over and waited for
    by nobody: a failure is told to that person. The others are awaited by an ack (or /healthz)."""

    def __init__(self, service: ChatOps, *, form_opened: Callable[[int], None]) -> None:
        self.service = service
        # Called with a command's ticket once its form has opened (the ack side counts forms in line).
        self._form_opened = form_opened
        self._picked: OrderedDict[int, Confirmation] = OrderedDict()
        self._next_pick = 0

    # ------------------------------------------------------------------ replies

    async def tell(self, message: Message, *, response_url: str | None, channel: str | None, user: str) -> None:
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
                await self.service.slack.chat_postEphemeral(
                    channel=channel, user=user, text=message.text, blocks=message.blocks_as_dicts()
                )
            except (SlackApiError, SlackClientError) as exc:
                error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
                log.warning("chat.postEphemeral failed: %s", error)

    async def _tell(self, reply_to: ReplyTo, message: Message) -> None:
        await self.tell(message, response_url=reply_to.response_url, channel=reply_to.channel, user=reply_to.user)

    async def tell_text(self, reply_to: ReplyTo, text: str) -> None:
        """A failure the ack side met (its text from :func:`error_text`)."""
        await self._tell(reply_to, plain_message(text))

    async def _guarded(self, reply_to: ReplyTo, work: Any) -> None:
        try:
            await work
        except Exception as error:
            await self._tell(reply_to, plain_message(error_text(error)))

    # ------------------------------------------------------------------ handed over after an ack

    async def open_form(self, reply_to: ReplyTo, cmd: CommandInput, ticket: int) -> None:
        async def open_it() -> None:
            try:
                reply = await self.service.command(cmd, form_opened=lambda: self._form_opened(ticket))
            finally:
                self._form_opened(ticket)  # a meta command, a denial, a failure: nothing more to wait for
            if reply is not None:
                await self.tell(reply, response_url=cmd.response_url, channel=cmd.channel_id, user=cmd.user_id)

        await self._guarded(reply_to, open_it())

    async def submit(self, reply_to: ReplyTo, sub: SubmissionInput) -> None:
        """The confirmation form, checked again here (pure and cheap) so only plain values cross over."""

        async def store_it() -> None:
            checked = self.service.check_submission(sub)
            if isinstance(checked, dict):  # the ack side answered these already
                return
            try:
                reply = await self.service.submit(checked)
            except ChatOpsError as exc:
                # A view submission has no response_url of its own, so the error report could not
                # reach the requester; the form's signed metadata carries the command's.
                reply = plain_message(f":warning: {exc.user_message}")
            if reply is not None:
                await self.tell(
                    reply, response_url=checked.response_url, channel=checked.channel_id, user=checked.user_id
                )

        await self._guarded(reply_to, store_it())

    async def _decided(
        self, reply: Message | None, click: ClickInput, *, home: bool, response_url: str | None, done: str
    ) -> None:
        if home:
            # No response_url on the home tab: the refreshed tab carries the answer.
            await self.service.publish_home(
                user_id=click.user_id, team_id=click.team_id, notice=reply.text if reply else done
            )
        elif reply is not None:
            await self.tell(reply, response_url=response_url, channel=click.channel_id, user=click.user_id)

    async def approve(self, reply_to: ReplyTo, click: ClickInput, *, home: bool) -> None:
        async def approve_it() -> None:
            reply = await self.service.approve(click)
            await self._decided(
                reply, click, home=home, response_url=reply_to.response_url, done=":ballot_box_with_check: Approved."
            )

        await self._guarded(reply_to, approve_it())

    async def reject(self, reply_to: ReplyTo, click: ClickInput, *, home: bool) -> None:
        async def reject_it() -> None:
            reply = await self.service.reject(click)
            await self._decided(
                reply, click, home=home, response_url=reply_to.response_url, done=":no_entry: Rejected."
            )

        await self._guarded(reply_to, reject_it())

    async def pick_action(
        self, reply_to: ReplyTo, *, user_id: str, private_metadata: str, action: str, view_id: str, view_hash: str
    ) -> None:
        await self._guarded(
            reply_to,
            self.service.picker_chose_action(
                user_id=user_id, private_metadata=private_metadata, action=action, view_id=view_id, view_hash=view_hash
            ),
        )

    async def fill_picked(self, reply_to: ReplyTo, pick: int, view_id: str) -> None:
        """The picker has turned into the confirmation form (the ack did it): read its preview."""
        confirmation = self._picked.pop(pick, None)
        if confirmation is not None:
            await self._guarded(reply_to, self.service.fill_preview(confirmation, view_id=view_id, view_hash=None))

    async def publish_home(self, reply_to: ReplyTo, *, user_id: str, team_id: str) -> None:
        await self._guarded(reply_to, self.service.publish_home(user_id=user_id, team_id=team_id))

    # ------------------------------------------------------------------ awaited by an ack

    async def picker_options(
        self, *, user_id: str, team_id: str, private_metadata: str, block_id: str, query: str
    ) -> dict[str, Any]:
        return await self.service.picker_options(
            user_id=user_id, team_id=team_id, private_metadata=private_metadata, block_id=block_id, query=query
        )

    async def picker_next(self, sub: SubmissionInput) -> dict[str, str] | tuple[int, dict[str, Any]]:
        """Field errors, or the confirmation form to show (a number for :meth:`fill_picked`, the view)."""
        picked = await self.service.picker_submission(sub)
        if isinstance(picked, dict):
            return picked
        self._next_pick += 1
        self._picked[self._next_pick] = picked
        while len(self._picked) > PICKED_KEPT:
            self._picked.popitem(last=False)
        return self._next_pick, view_dict(picked.view)

    async def database_ok(self) -> bool:
        try:
            await self.service.store.ping()
        except StoreUnavailable:
            return False
        return True

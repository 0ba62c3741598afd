"""Bolt listeners: ack, turn the payload into an input value, call one service method, reply.

Replies to one person go through the ``response_url`` Slack gave us (it works even where the
bot is not in the channel), falling back to ``chat.postEphemeral``.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import ChatOpsError
from bot.service import ChatOps, ClickInput, CommandInput, SubmissionInput
from bot.views import (
    APPROVE_ACTION_ID,
    CONFIRM_CALLBACK_ID,
    PICK_ACTION_ID,
    PICK_CALLBACK_ID,
    PICK_TARGET_ACTION_ID,
    REJECT_ACTION_ID,
    Message,
    plain_message,
)

__all__ = ["register"]

log = logging.getLogger(__name__)


def _ephemeral(message: Message) -> dict[str, Any]:
    return {
        "text": message.text,
        "blocks": message.blocks_as_dicts(),
        "response_type": "ephemeral",
        "replace_original": False,
    }


def _click_input(body: dict[str, Any]) -> ClickInput:
    user_id, team_id = _user(body)
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    action = (body.get("actions") or [{}])[0]
    return ClickInput(user_id=user_id, team_id=team_id, channel_id=channel, request_id=str(action.get("value", "")))


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


def register(app: AsyncApp, service: ChatOps) -> None:
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

    @app.command("/atlas")
    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        early = service.parse(str(body.get("text", "")))
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
        reply = await service.command(cmd)
        if reply is not None:
            await tell(reply, response_url=cmd.response_url, channel=cmd.channel_id, user=cmd.user_id)

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
        try:
            reply = await service.submit(checked)
        except ChatOpsError as exc:
            # A view submission has no response_url of its own, so the error handler could not
            # reach the requester; the form's signed metadata carries the command's.
            reply = plain_message(f":warning: {exc.user_message}")
        if reply is not None:
            await tell(reply, response_url=checked.response_url, channel=checked.channel_id, user=checked.user_id)

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
        await decided(await service.approve(_click_input(body)), body, ":ballot_box_with_check: Approved.")

    @app.action(REJECT_ACTION_ID)
    async def on_reject(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await decided(await service.reject(_click_input(body)), body, ":no_entry: Rejected.")

    @app.action(PICK_ACTION_ID)
    async def on_pick_action(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        view = body.get("view") or {}
        user_id, _ = _user(body)
        await service.picker_chose_action(
            user_id=user_id,
            private_metadata=str(view.get("private_metadata", "")),
            action=str((action.get("selected_option") or {}).get("value", "")),
            view_id=str(view.get("id", "")),
            view_hash=str(view.get("hash", "")),
        )

    @app.options(PICK_TARGET_ACTION_ID)
    async def on_pick_options(ack: AsyncAck, body: dict[str, Any]) -> None:
        user_id, team_id = _user(body)
        answer = await service.picker_options(
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
        picked = await service.picker_submission(
            SubmissionInput(
                user_id=user_id,
                team_id=team_id,
                private_metadata=str(view.get("private_metadata", "")),
                values=_view_values(view),
            )
        )
        if isinstance(picked, dict):
            await ack(response_action="errors", errors=picked)
            return
        # The picker turns into the confirmation form in place (no trigger_id needed), then fills in.
        await ack(response_action="update", view=picked.view)
        await service.fill_preview(picked, view_id=str(view.get("id", "")), view_hash=None)

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab") != "home":
            return
        await service.publish_home(user_id=str(event.get("user", "")), team_id=str(body.get("team_id", "")))

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        # One place turns failures after the ack into a message for the person who acted.
        if isinstance(error, ChatOpsError):
            text = f":warning: {error.user_message}"
        else:
            log.error("unhandled error in a listener: %s", type(error).__name__, exc_info=error)
            text = ":warning: Something went wrong on the bot's side; nothing further was done. It was logged."
        user = str(body.get("user_id") or _user(body)[0])
        channel = body.get("channel_id") or _click_input(body).channel_id
        await tell(plain_message(text), response_url=body.get("response_url"), channel=channel, user=user)

"""Bolt listeners: ack, turn the payload into an input value, call one service method, reply.

Replies to one person go through the ``response_url`` Slack gave us (it works even where the
bot is not in the channel), falling back to ``chat.postEphemeral``.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import ChatOpsError
from bot.service import ChatOps, ClickInput, CommandInput, SubmissionInput
from bot.views import APPROVE_ACTION_ID, CONFIRM_CALLBACK_ID, REJECT_ACTION_ID, Message, plain_message

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
    user = body.get("user") or {}
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    action = (body.get("actions") or [{}])[0]
    return ClickInput(
        user_id=str(user.get("id", "")),
        # user.team_id is the clicker's own workspace; it differs from the app's in Slack Connect channels.
        team_id=str(user.get("team_id") or (body.get("team") or {}).get("id", "")),
        channel_id=channel,
        request_id=str(action.get("value", "")),
    )


def _view_values(view: dict[str, Any]) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for element in actions.values():
            if isinstance(element, dict):
                values[block_id] = element.get("value")
    return values


def register(app: AsyncApp, service: ChatOps) -> None:
    async def tell(message: Message, *, response_url: str | None, channel: str | None, user: str) -> None:
        if response_url:
            try:
                await AsyncWebhookClient(response_url).send_dict(_ephemeral(message))
                return
            except (SlackClientError, OSError) as exc:
                log.warning("response_url post failed: %s", type(exc).__name__)
        if channel:
            try:
                await service.slack.chat_postEphemeral(
                    channel=channel, user=user, text=message.text, blocks=message.blocks
                )
            except SlackApiError as exc:
                log.warning("chat.postEphemeral failed: %s", exc.response.get("error"))

    @app.command("/atlas")
    async def on_command(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
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
            await respond(**_ephemeral(reply))

    @app.view(CONFIRM_CALLBACK_ID)
    async def on_confirm(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body.get("user") or {}
        checked = service.check_submission(
            SubmissionInput(
                user_id=str(user.get("id", "")),
                team_id=str(user.get("team_id") or (body.get("team") or {}).get("id", "")),
                private_metadata=str(view.get("private_metadata", "")),
                values=_view_values(view),
            )
        )
        if isinstance(checked, dict):
            await ack(response_action="errors", errors=checked)
            return
        await ack()
        reply = await service.submit(checked)
        if reply is not None:
            await tell(reply, response_url=checked.response_url, channel=checked.channel_id, user=checked.user_id)

    @app.action(APPROVE_ACTION_ID)
    async def on_approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        reply = await service.approve(_click_input(body))
        if reply is not None:
            await respond(**_ephemeral(reply))

    @app.action(REJECT_ACTION_ID)
    async def on_reject(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        reply = await service.reject(_click_input(body))
        if reply is not None:
            await respond(**_ephemeral(reply))

    @app.error
    async def on_error(error: Exception, body: dict[str, Any], respond: AsyncRespond | None = None) -> None:
        # One place turns failures after the ack into a message for the person who acted.
        if isinstance(error, ChatOpsError):
            text = f":warning: {error.user_message}"
        else:
            log.error("unhandled error in a listener: %s", type(error).__name__, exc_info=error)
            text = ":warning: Something went wrong on the bot's side; nothing further was done. It was logged."
        if respond is not None:  # Bolt provides it only when the payload carried a response_url
            try:
                await respond(**_ephemeral(plain_message(text)))
            except (SlackClientError, OSError, ValueError):
                log.warning("could not tell the user about an error")

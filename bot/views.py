"""Pure builders: request models in, ``slack_sdk.models`` views and blocks out.

No I/O and no Slack client here. User-supplied text (reasons, names) is never trusted as
mrkdwn: it goes through :func:`quote_user_text`, which escapes Slack's control characters
and shows it verbatim in a code block, and everything is cut to Block Kit's limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.actions import META_COMMANDS, ActionSpec
from bot.preview import Preview
from bot.requests import ActionRequest, RequestState

__all__ = [
    "APPROVE_ACTION_ID",
    "CONFIRM_BLOCK",
    "CONFIRM_CALLBACK_ID",
    "DECISION_BLOCK",
    "REASON_BLOCK",
    "REASON_MAX",
    "REJECT_ACTION_ID",
    "SECRET_BLOCK",
    "VALUE_ACTION_ID",
    "Message",
    "approval_message",
    "confirm_modal",
    "escape_mrkdwn",
    "help_message",
    "pending_message",
    "plain_message",
    "preview_blocks",
    "quote_user_text",
    "truncate",
]

CONFIRM_CALLBACK_ID = "atlas_confirm"
APPROVE_ACTION_ID = "atlas_approve"
REJECT_ACTION_ID = "atlas_reject"
DECISION_BLOCK = "atlas_decision"
CONFIRM_BLOCK = "confirm"
REASON_BLOCK = "reason"
SECRET_BLOCK = "secret"
VALUE_ACTION_ID = "value"
REASON_MAX = 500

_SECTION_MAX = 3000
_HEADER_MAX = 150

_STATE_LINES: dict[RequestState, str] = {
    RequestState.PENDING: ":hourglass_flowing_sand: Waiting for approval",
    RequestState.APPROVED: ":white_check_mark: Approved, about to execute",
    RequestState.EXECUTING: ":gear: Executing in Atlas",
    RequestState.SUCCEEDED: ":white_check_mark: Done: Atlas accepted the request",
    RequestState.FAILED: ":x: Failed: Atlas refused or could not be reached",
    RequestState.UNKNOWN: ":grey_question: Outcome unknown: check Atlas before retrying",
    RequestState.REJECTED: ":no_entry: Rejected",
    RequestState.EXPIRED: ":hourglass: Expired without enough approvals",
    RequestState.CANCELLED: ":heavy_multiplication_x: Cancelled",
}


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message: the notification ``text`` (never user-supplied) and its blocks."""

    text: str
    blocks: list[Block]

    def blocks_as_dicts(self) -> list[dict[str, Any]]:
        return [b.to_dict() for b in self.blocks]


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control (``<!channel>``, ``<@U…>``, links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quote_user_text(text: str, *, limit: int = 1000) -> str:
    """User text shown verbatim: escaped, cut, and fenced so ``*bold*`` or ``<!here>`` stay inert."""
    # A backtick inside would close the fence; the modifier-letter look-alike keeps it readable.
    body = escape_mrkdwn(truncate(text.strip(), limit)).replace("`", "ˋ")
    return f"```{body or ' '}```"


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, _SECTION_MAX))


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=_md(text))


def _time(at: datetime) -> str:
    ts = int(at.timestamp())
    return f"<!date^{ts}^{{date_short_pretty}} {{time}}|{at.strftime('%Y-%m-%d %H:%M UTC')}>"


def help_message(registry: dict[str, ActionSpec[Any]]) -> Message:
    lines = ["*Atlas emergency actions* (each needs a second person to approve):"]
    lines += [f"• `{spec.usage}`: {spec.title}" for spec in registry.values()]
    lines += [f"• `/atlas {name}`: {text}" for name, text in META_COMMANDS.items()]
    return Message(text="/atlas help", blocks=[_section("\n".join(lines))])


def plain_message(text: str, *, usage: str | None = None) -> Message:
    """An ephemeral answer. ``text`` must already be safe mrkdwn (our own words, validated ids)."""
    blocks: list[Block] = [_section(text)]
    if usage:
        blocks.append(ContextBlock(elements=[_md(f"Usage: `{usage}`")]))
    return Message(text=truncate(text, 300), blocks=blocks)


def preview_blocks(preview: Preview | None) -> list[Block]:
    """The live preview: facts read from Atlas, then blockers and blast-radius warnings in red."""
    if preview is None:
        return [_section(":mag: Reading the target from Atlas…")]
    blocks: list[Block] = []
    if preview.facts:
        # Values come from Atlas (names, URIs) and are escaped like user text.
        lines = [f"*{escape_mrkdwn(f.label)}:* {escape_mrkdwn(truncate(f.value, 300))}" for f in preview.facts]
        blocks.append(_section(":mag: *Live from Atlas*\n" + "\n".join(lines)))
    for blocker in preview.blockers:
        blocks.append(_section(f":no_entry: *Atlas would refuse this:* {escape_mrkdwn(blocker)}"))
    for warning in preview.warnings:
        blocks.append(_section(f":red_circle: *Large blast radius:* {escape_mrkdwn(warning)}"))
    return blocks


def confirm_modal(
    spec: ActionSpec[Any],
    args: Any,
    *,
    private_metadata: str,
    approvals_required: int,
    approver_roles: Sequence[str],
    ttl_minutes: int,
    preview: Preview | None = None,
) -> View:
    """The confirmation form. Opened at once without a preview, then updated when Atlas answers;
    a preview with blockers replaces the form with the reason and no submit button."""
    identifier = spec.confirm_identifier(args)
    if preview is not None and preview.blockers:
        return View(
            type="modal",
            callback_id=CONFIRM_CALLBACK_ID,
            title=truncate(spec.title, 24),
            close="Close",
            private_metadata=private_metadata,
            blocks=[
                _section(f"*What you asked for*\n{spec.describe(args)}"),
                *preview_blocks(preview),
                ContextBlock(elements=[_md("Stopped before approval. Nothing was sent to Atlas.")]),
            ],
        )
    blocks: list[Block] = [
        _section(f"*What will happen*\n{spec.describe(args)}"),
        *preview_blocks(preview),
        _section(f":warning: *Impact*\n{spec.impact}"),
        ContextBlock(
            elements=[
                _md(
                    f"Needs {approvals_required} approval(s) from {', '.join(approver_roles)} "
                    f"within {ttl_minutes} minutes. Atlas role needed by the bot: {spec.atlas_role}."
                )
            ]
        ),
        DividerBlock(),
    ]
    if spec.secret_input is not None:
        blocks.append(
            InputBlock(
                block_id=SECRET_BLOCK,
                label=spec.secret_input.label,
                hint=spec.secret_input.hint,
                element=PlainTextInputElement(action_id=VALUE_ACTION_ID, max_length=3000),
            )
        )
    blocks += [
        InputBlock(
            block_id=CONFIRM_BLOCK,
            label=truncate(f"Type {identifier} to confirm", 2000),
            element=PlainTextInputElement(action_id=VALUE_ACTION_ID, placeholder=identifier, max_length=200),
        ),
        InputBlock(
            block_id=REASON_BLOCK,
            label="Reason (shown to the channel and kept in the audit trail)",
            element=PlainTextInputElement(
                action_id=VALUE_ACTION_ID, multiline=True, min_length=3, max_length=REASON_MAX
            ),
        ),
    ]
    return View(
        type="modal",
        callback_id=CONFIRM_CALLBACK_ID,
        title=truncate(spec.title, 24),
        submit="Request approval",
        close="Cancel",
        private_metadata=private_metadata,
        blocks=blocks,
    )


def _decision_buttons(request: ActionRequest, *, block_id: str = DECISION_BLOCK) -> ActionsBlock:
    return ActionsBlock(
        block_id=block_id,
        elements=[
            ButtonElement(
                text="Approve",
                action_id=APPROVE_ACTION_ID,
                value=request.id,
                style="primary",
                confirm=ConfirmObject(
                    title="Approve this Atlas action?",
                    text=truncate(f"It runs in Atlas as soon as enough approvals are in: {request.target_label}.", 300),
                    confirm="Approve",
                    deny="Back",
                ),
            ),
            ButtonElement(text="Reject", action_id=REJECT_ACTION_ID, value=request.id, style="danger"),
        ],
    )


def approval_message(request: ActionRequest, spec: ActionSpec[Any], *, approver_roles: Sequence[str] = ()) -> Message:
    """The channel message for a request, in its current state; buttons only while it is pending."""
    args = spec.validate(request.target)
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=truncate(f"Atlas: {spec.title} requested", _HEADER_MAX))),
        _section(spec.describe(args)),
        SectionBlock(
            fields=[
                _md(f"*Requested by*\n<@{request.requester_id}>"),
                _md(f"*Approvals*\n{len(request.approvers)} of {request.approvals_required}"),
                _md(f"*Request*\n`{request.short_id}`"),
                _md(f"*Expires*\n{_time(request.expires_at)}"),
            ]
        ),
        *(preview_blocks(request.preview) if request.preview is not None else []),
        _section(f":warning: *Impact*\n{spec.impact}"),
        _section(f"*Reason*\n{quote_user_text(request.reason, limit=REASON_MAX)}"),
    ]
    if request.secret_fingerprint:
        blocks.append(_section(f"*Token fingerprint* (SHA-256 prefix)\n`{request.secret_fingerprint}`"))
    status = _STATE_LINES[request.state]
    if request.approvers:
        status += "\nApproved by " + ", ".join(f"<@{u}>" for u in request.approvers)
    if request.outcome is not None and request.outcome.summary:
        status += "\n" + escape_mrkdwn(request.outcome.summary)
    blocks.append(_section(f"*Status*\n{status}"))
    if request.state is RequestState.PENDING:
        blocks.append(_decision_buttons(request))
        who = ", ".join(approver_roles) or "an approver"
        blocks.append(ContextBlock(elements=[_md(f"Needs approval from {who}. The requester cannot approve.")]))
    text = f"Atlas {spec.title} requested by <@{request.requester_id}>: {_STATE_LINES[request.state]}"
    return Message(text=text, blocks=blocks)


def pending_message(requests: Sequence[ActionRequest], registry: dict[str, ActionSpec[Any]]) -> Message:
    if not requests:
        return plain_message("No Atlas requests are waiting for approval here.")
    blocks: list[Block] = [_section(f"*{len(requests)} request(s) waiting for approval*")]
    for request in requests[:15]:  # 3 blocks each stays under the 50-block message limit
        spec = registry.get(request.action)
        title = spec.title if spec else request.action
        blocks += [
            DividerBlock(),
            _section(
                f"*{title}* on {escape_mrkdwn(request.target_label)} by <@{request.requester_id}>, "
                f"`{request.short_id}`, {len(request.approvers)} of {request.approvals_required} approvals, "
                f"expires {_time(request.expires_at)}"
            ),
            # block_id must be unique within a message.
            _decision_buttons(request, block_id=f"{DECISION_BLOCK}-{request.short_id}"),
        ]
    return Message(text=f"{len(requests)} Atlas request(s) waiting for approval", blocks=blocks)

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
    ExternalDataSelectElement,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    OptionGroup,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.actions import META_COMMANDS, ActionSpec, TargetOption
from bot.preview import Preview
from bot.requests import ActionRequest, RequestState
from bot.slack.blockkit import block_dicts

__all__ = [
    "APPROVE_ACTION_ID",
    "CONFIRM_BLOCK",
    "CONFIRM_CALLBACK_ID",
    "DECISION_BLOCK",
    "MAX_SELECT_OPTIONS",
    "PICK_ACTION_BLOCK",
    "PICK_ACTION_ID",
    "PICK_CALLBACK_ID",
    "PICK_TARGET_ACTION_ID",
    "PICK_TARGET_BLOCK_PREFIX",
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
    "home_view",
    "pending_message",
    "picker_modal",
    "plain_message",
    "preview_blocks",
    "quote_user_text",
    "target_options",
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
PICK_CALLBACK_ID = "atlas_pick"
PICK_ACTION_BLOCK = "pick_action"
PICK_ACTION_ID = "atlas_pick_action"
# One target block per action (suffixed with the action's name), so that choosing another action
# starts from an empty target instead of keeping a selection made for the previous one.
PICK_TARGET_BLOCK_PREFIX = "pick_target:"
PICK_TARGET_ACTION_ID = "atlas_pick_target"
# Slack shows at most 100 options in a select; the search box narrows longer lists.
MAX_SELECT_OPTIONS = 100
_OPTION_TEXT_MAX = 75
_OPTION_VALUE_MAX = 150
# 100 blocks per home tab: a header and notice, then 3 blocks per request.
_HOME_MAX_REQUESTS = 30
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
        return block_dicts(self.blocks)


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
    lines = [
        "*Atlas emergency actions* (each needs a second person to approve):",
        "• `/atlas`: choose the action and pick its target from Atlas in a form",
    ]
    lines += [f"• `{escape_mrkdwn(spec.usage)}`: {spec.title}" for spec in registry.values()]
    lines += [f"• `/atlas {name}`: {text}" for name, text in META_COMMANDS.items()]
    return Message(text="/atlas help", blocks=[_section("\n".join(lines))])


def plain_message(text: str, *, usage: str | None = None) -> Message:
    """An ephemeral answer. ``text`` must already be safe mrkdwn (our own words, validated ids)."""
    blocks: list[Block] = [_section(text)]
    if usage:
        # Placeholders such as <groupId> would be read as Slack control sequences unescaped.
        blocks.append(ContextBlock(elements=[_md(f"Usage: `{escape_mrkdwn(usage)}`")]))
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


def _pending_entry(request: ActionRequest, registry: dict[str, ActionSpec[Any]], *, with_channel: bool) -> list[Block]:
    spec = registry.get(request.action)
    title = spec.title if spec else request.action
    where = f" in <#{request.channel_id}>" if with_channel else ""
    return [
        DividerBlock(),
        _section(
            f"*{title}* on {escape_mrkdwn(request.target_label)} by <@{request.requester_id}>{where}, "
            f"`{request.short_id}`, {len(request.approvers)} of {request.approvals_required} approvals, "
            f"expires {_time(request.expires_at)}"
        ),
        # block_id must be unique within a message or view.
        _decision_buttons(request, block_id=f"{DECISION_BLOCK}-{request.short_id}"),
    ]


def pending_message(requests: Sequence[ActionRequest], registry: dict[str, ActionSpec[Any]]) -> Message:
    """``/atlas pending``: the requests in this channel waiting for the viewer's approval."""
    if not requests:
        return plain_message("No Atlas requests in this channel are waiting for your approval.")
    blocks: list[Block] = [_section(f"*{len(requests)} request(s) waiting for your approval*")]
    for request in requests[:15]:  # 3 blocks each stays under the 50-block message limit
        blocks += _pending_entry(request, registry, with_channel=False)
    if len(requests) > 15:
        blocks.append(ContextBlock(elements=[_md(f"… and {len(requests) - 15} more.")]))
    return Message(text=f"{len(requests)} Atlas request(s) waiting for your approval", blocks=blocks)


def home_view(
    requests: Sequence[ActionRequest], registry: dict[str, ActionSpec[Any]], *, notice: str | None = None
) -> View:
    """The App Home tab: every request waiting for the viewer's approval, with the buttons."""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="Atlas requests waiting for you"))]
    if notice:
        blocks.append(_section(notice))
    if not requests:
        blocks.append(_section("Nothing is waiting for your approval. Start a request with `/atlas` in a channel."))
    for request in requests[:_HOME_MAX_REQUESTS]:
        blocks += _pending_entry(request, registry, with_channel=True)
    if len(requests) > _HOME_MAX_REQUESTS:
        blocks.append(ContextBlock(elements=[_md(f"… and {len(requests) - _HOME_MAX_REQUESTS} more.")]))
    return View(type="home", blocks=blocks)


def picker_modal(
    registry: dict[str, ActionSpec[Any]], *, private_metadata: str, chosen: ActionSpec[Any] | None = None
) -> View:
    """``/atlas`` with no arguments: choose the action, then its target from live Atlas data."""
    options = {
        name: Option(text=spec.title, value=name, description=truncate(name, 75)) for name, spec in registry.items()
    }
    blocks: list[Block] = [
        InputBlock(
            block_id=PICK_ACTION_BLOCK,
            label="Action",
            # Choosing sends a block_actions event at once, so the target menu can follow the choice.
            dispatch_action=True,
            element=StaticSelectElement(
                action_id=PICK_ACTION_ID,
                placeholder="Choose an action",
                options=list(options.values()),
                initial_option=options[chosen.name] if chosen is not None else None,
            ),
        )
    ]
    if chosen is None:
        blocks.append(ContextBlock(elements=[_md("Then pick its target from what Atlas shows.")]))
    else:
        blocks += [
            InputBlock(
                block_id=PICK_TARGET_BLOCK_PREFIX + chosen.name,
                label=truncate(chosen.target_noun.capitalize(), 2000),
                element=ExternalDataSelectElement(
                    action_id=PICK_TARGET_ACTION_ID,
                    placeholder="Type to search Atlas",
                    min_query_length=0,
                ),
            ),
            ContextBlock(elements=[_md(f":warning: {chosen.impact}")]),
        ]
    return View(
        type="modal",
        callback_id=PICK_CALLBACK_ID,
        title="Atlas action",
        submit="Next",
        close="Cancel",
        private_metadata=private_metadata,
        blocks=blocks,
    )


def target_options(found: Sequence[TargetOption]) -> dict[str, Any]:
    """A ``block_suggestion`` answer. Labels come from Atlas: plain text, never mrkdwn.

    Slack shows at most 100 options; past that the first 100 come under a heading saying how many
    matched, so the person knows to type more.
    """
    usable = [t for t in found if len(t.value) <= _OPTION_VALUE_MAX]
    options = [Option(text=truncate(t.label, _OPTION_TEXT_MAX), value=t.value) for t in usable[:MAX_SELECT_OPTIONS]]
    if len(usable) <= MAX_SELECT_OPTIONS:
        return {"options": [o.to_dict() for o in options]}
    group = OptionGroup(label=f"First {MAX_SELECT_OPTIONS} of {len(usable)}: type to narrow", options=options)
    return {"option_groups": [group.to_dict()]}

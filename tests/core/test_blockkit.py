"""bot.slack.blockkit gives exactly what slack_sdk's own to_dict gives, for everything the bot
builds and for the slack_sdk classes it does not use yet, and refuses what slack_sdk refuses."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    OverflowMenuElement,
    PlainTextInputElement,
    PlainTextObject,
    RichTextBlock,
    RichTextSectionElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.preview import Fact, Preview, preview_unavailable
from bot.requests import Outcome, RequestState
from bot.slack.blockkit import block_dicts, view_dict
from bot.views import (
    approval_message,
    confirm_modal,
    help_message,
    home_view,
    pending_message,
    picker_modal,
    plain_message,
)
from tests.core.test_views import FED, IDP, REGISTRY, request

ARGS: dict[str, dict[str, str]] = {
    "revoke-jwks": {"federation_settings_id": FED, "identity_provider_id": IDP},
    "delete-idp": {"federation_settings_id": FED, "identity_provider_id": IDP},
    "delete-federation": {"federation_settings_id": FED},
    "revoke-employee-access": {"group_id": FED, "cluster_name": "prod-cluster-0"},
    "revoke-token": {"profile": "default"},
}
PREVIEWS: dict[str, Preview | None] = {
    "reading": None,
    "facts": Preview(
        facts=(Fact(label="Identity provider", value="Okta <prod> (65a1)"), Fact(label="Issuer", value="x" * 400)),
        warnings=("Every user of 3 organisation(s) is logged out at once.",),
        evidence={"identityProvider": {"id": IDP}},
    ),
    "blocked": Preview(blockers=("JWKS revocation applies only to OIDC identity providers.",)),
    "unavailable": preview_unavailable("AtlasServerError 503 SERVICE_UNAVAILABLE"),
    "empty": Preview(),
}


def _views() -> dict[str, View]:
    views: dict[str, View] = {}
    for name, spec in REGISTRY.items():
        args = spec.validate(ARGS[name])
        for shown, preview in PREVIEWS.items():
            views[f"confirm {name} {shown}"] = confirm_modal(
                spec,
                args,
                private_metadata="sig.meta",
                approvals_required=2,
                approver_roles=["approver", "sre"],
                ttl_minutes=30,
                preview=preview,
            )
        views[f"picker {name}"] = picker_modal(REGISTRY, private_metadata="sig.pick", chosen=spec)
    views["picker"] = picker_modal(REGISTRY, private_metadata="sig.pick")
    waiting = [request(id=f"{i:08x}" + "0" * 24, reason=f"<!here> reason {i}") for i in range(40)]
    views["home empty"] = home_view([], REGISTRY)
    views["home"] = home_view(waiting, REGISTRY, notice=":warning: Approved: `3f9c1a2b`")
    views["rich text and overflow"] = View(
        type="modal",
        title=PlainTextObject(text="Everything"),
        submit=PlainTextObject(text="Go"),
        close=PlainTextObject(text="Close"),
        blocks=_other_blocks(),
    )
    return views


def _other_blocks() -> list[Block]:
    """slack_sdk classes the bot's builders do not use: other overrides and the empty-list rule."""
    options = [Option(text=f"o{i}", value=f"v{i}") for i in range(3)]
    confirm = ConfirmObject(title="Sure?", text="It is destructive", confirm="Yes", deny="No", style="danger")
    return [
        RichTextBlock(elements=[RichTextSectionElement(elements=[])]),  # empty, and kept
        SectionBlock(
            text=MarkdownTextObject(text="*menu*", verbatim=True),
            accessory=OverflowMenuElement(action_id="overflow", options=options, confirm=confirm),
        ),
        ActionsBlock(
            block_id="acts",
            elements=[
                ButtonElement(text="A", action_id="a", value="1", style="primary", confirm=confirm),
                StaticSelectElement(action_id="s", options=options, initial_option=options[1]),
            ],
        ),
        InputBlock(
            block_id="in",
            label="Reason",
            element=PlainTextInputElement(action_id="r", multiline=True, max_length=500),
            optional=False,
            hint="why",
        ),
        ContextBlock(elements=[MarkdownTextObject(text="ctx"), PlainTextObject(text="plain", emoji=True)]),
        SectionBlock(text="fields", fields=[]),  # an empty list that is left out
    ]


def _messages() -> dict[str, list[Block]]:
    spec = REGISTRY["revoke-jwks"]
    messages: dict[str, list[Block]] = {
        "help": help_message(REGISTRY).blocks,
        "plain": plain_message("Nothing was done", usage="/atlas revoke-jwks <federationSettingsId>").blocks,
        "pending none": pending_message([], REGISTRY).blocks,
        "pending": pending_message([request(id=f"{i:08x}" + "0" * 24) for i in range(20)], REGISTRY).blocks,
        "other": _other_blocks(),
    }
    outcome = Outcome(ok=False, status=404, error_code="RESOURCE_NOT_FOUND", detail="gone", summary="HTTP 404")
    for state in RequestState:
        done = request(state=state, outcome=None if state is RequestState.PENDING else outcome, approvers=("U0BOB",))
        messages[f"approval {state.value}"] = approval_message(done, spec, approver_roles=["approver"]).blocks
    return messages


VIEWS = _views()
MESSAGES = _messages()


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_a_view_is_what_slack_sdk_makes_of_it(name: str) -> None:
    view = VIEWS[name]
    expected = view.to_dict()
    assert view_dict(view) == expected
    assert view_dict(view) == expected  # the second time, from the per-class plans


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_blocks_are_what_slack_sdk_makes_of_them(name: str) -> None:
    blocks = MESSAGES[name]
    assert block_dicts(blocks) == [b.to_dict() for b in blocks]


def test_the_same_keys_in_the_same_order() -> None:
    # Slack does not care about order, but the JSON sent (and logged by the fakes) stays identical.
    for view in VIEWS.values():
        assert _key_order(view_dict(view)) == _key_order(view.to_dict())


def _key_order(value: Any) -> Any:
    if isinstance(value, dict):
        return [(k, _key_order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_key_order(v) for v in value]
    return None


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda: View(type="modal", title="t" * 30, blocks=[]), id="modal title over 24 characters"),
        pytest.param(lambda: View(type="modal", title="t", blocks=[SectionBlock(text="x" * 3001)]), id="section text"),
        pytest.param(
            lambda: View(type="modal", title="t", blocks=[SectionBlock(text="x", block_id="b" * 256)]), id="block_id"
        ),
        pytest.param(
            lambda: View(type="home", blocks=[ActionsBlock(elements=[ButtonElement(text="b" * 80, action_id="a")])]),
            id="button text inside a block",
        ),
    ],
)
def test_what_slack_sdk_refuses_is_refused_with_its_own_error(broken: Any) -> None:
    with pytest.raises(SlackObjectFormationError) as theirs:
        broken().to_dict()
    with pytest.raises(SlackObjectFormationError) as ours:
        view_dict(broken())
    assert str(ours.value) == str(theirs.value)

"""View builders: Block Kit via slack_sdk.models, user text inert, limits respected."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.requests import ActionRequest, Outcome, RequestState
from bot.views import (
    APPROVE_ACTION_ID,
    CONFIRM_BLOCK,
    REASON_BLOCK,
    REJECT_ACTION_ID,
    SECRET_BLOCK,
    approval_message,
    confirm_modal,
    escape_mrkdwn,
    pending_message,
    quote_user_text,
)
from commands import load_registry

REGISTRY = load_registry()
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
FED, IDP = "65a1b2c3d4e5f6a7b8c9d0e1", "65a1b2c3d4e5f6a7b8c9d0e2"


def request(**overrides: object) -> ActionRequest:
    values: dict[str, object] = {
        "id": "3f9c1a2b" + "0" * 24,
        "action": "revoke-jwks",
        "target": {"federation_settings_id": FED, "identity_provider_id": IDP},
        "target_label": f"IdP {IDP}",
        "requester_id": "U0ALICE",
        "requester_team_id": "T0APP",
        "channel_id": "C0INCIDENT",
        "reason": "key leaked",
        "state": RequestState.PENDING,
        "approvals_required": 2,
        "created_at": NOW,
        "updated_at": NOW,
        "expires_at": NOW + timedelta(minutes=30),
        "message_channel": "C0INCIDENT",
        "message_ts": "1700000000.000100",
    }
    values.update(overrides)
    return ActionRequest.model_validate(values)


def _all_text(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks)


def test_escape_and_quote_make_control_sequences_inert() -> None:
    assert escape_mrkdwn("<!channel> & <@U123|x>") == "&lt;!channel&gt; &amp; &lt;@U123|x&gt;"
    quoted = quote_user_text("*bold* <!here> ```break``` <https://evil.example|click>")
    assert quoted.startswith("```") and quoted.endswith("```")
    inner = quoted[3:-3]
    assert "<" not in inner and ">" not in inner and "`" not in inner
    assert "&lt;!here&gt;" in inner


def test_quote_truncates_long_text() -> None:
    assert len(quote_user_text("x" * 5000, limit=500)) <= 500 + 6


def test_confirm_modal_has_typed_confirmation_reason_and_impact() -> None:
    spec = REGISTRY["revoke-jwks"]
    args = spec.validate({"federation_settings_id": FED, "identity_provider_id": IDP})
    view = confirm_modal(
        spec,
        args,
        private_metadata="sig.meta",
        approvals_required=2,
        approver_roles=["approver"],
        ttl_minutes=30,
    ).to_dict()
    assert view["type"] == "modal" and view["callback_id"] == "atlas_confirm"
    assert len(view["title"]["text"]) <= 24
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert inputs[CONFIRM_BLOCK]["label"]["text"] == f"Type {IDP} to confirm"
    assert inputs[REASON_BLOCK]["element"]["multiline"] is True
    assert SECRET_BLOCK not in inputs
    assert "logged out" in _all_text(view["blocks"])
    assert view["private_metadata"] == "sig.meta"


def test_revoke_token_modal_asks_for_the_token_and_profile_confirmation() -> None:
    spec = REGISTRY["revoke-token"]
    args = spec.validate({"profile": "default"})
    view = confirm_modal(
        spec, args, private_metadata="m", approvals_required=1, approver_roles=["approver"], ttl_minutes=30
    ).to_dict()
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert SECRET_BLOCK in inputs
    assert inputs[CONFIRM_BLOCK]["label"]["text"] == "Type default to confirm"


def test_pending_approval_message_has_buttons_and_inert_reason() -> None:
    spec = REGISTRY["revoke-jwks"]
    message = approval_message(request(reason="<!channel> *now*"), spec, approver_roles=["approver"])
    blocks = message.blocks_as_dicts()
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1
    buttons = actions[0]["elements"]
    assert [(b["text"]["text"], b["action_id"]) for b in buttons] == [
        ("Approve", APPROVE_ACTION_ID),
        ("Reject", REJECT_ACTION_ID),
    ]
    assert all(b["value"] == request().id for b in buttons)
    text = _all_text(blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "0 of 2" in text
    assert "<!channel>" not in message.text and "*now*" not in message.text


@pytest.mark.parametrize("state", [s for s in RequestState if s is not RequestState.PENDING])
def test_final_states_have_no_buttons(state: RequestState) -> None:
    spec = REGISTRY["revoke-jwks"]
    outcome = Outcome(ok=False, status=404, error_code="RESOURCE_NOT_FOUND", summary="HTTP 404 <b>")
    blocks = approval_message(request(state=state, outcome=outcome, approvers=("U0BOB",)), spec).blocks_as_dicts()
    assert not [b for b in blocks if b["type"] == "actions"]
    assert "<@U0BOB>" in _all_text(blocks)
    assert "<b>" not in _all_text(blocks)


def test_fingerprint_shown_never_the_token() -> None:
    spec = REGISTRY["revoke-token"]
    req = request(
        action="revoke-token",
        target={"profile": "default"},
        secret_fingerprint="abcd1234",
        sealed_secret="gAAAA-sealed",
    )
    text = _all_text(approval_message(req, spec).blocks_as_dicts())
    assert "abcd1234" in text and "gAAAA-sealed" not in text


def test_pending_list_unique_block_ids_and_block_limit() -> None:
    many = [request(id=f"{i:08x}" + "0" * 24) for i in range(40)]
    blocks = pending_message(many, REGISTRY).blocks_as_dicts()
    assert len(blocks) <= 50
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(ids) == len(set(ids))

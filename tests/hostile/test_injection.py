"""User-supplied and Atlas-supplied text is shown, never interpreted; ids are checked before any URL.

Assertions are on what the bot actually asked the fake Slack to show (messages, updates, thread
replies, ephemerals, modals) and on what the fake Atlas received.
"""

from __future__ import annotations

import json
from typing import Any

from commands import load_registry
from tests.hostile.blockkit import control_sequences, limit_violations, modal_violations
from tests.hostile.harness import ALICE, BOB, CHANNEL, HostileHarness, seed_cluster, seed_oidc_idp
from tests.hostile.tally import fault
from tests.slack_requests import plain_text_value

USAGE_PLACEHOLDERS = frozenset(f"<{a.label}>" for spec in load_registry().values() for a in spec.arguments)

# Everything Slack would act on if it reached mrkdwn unescaped.
INJECTED = (
    "<!channel> <!here> <!everyone> <@U0MALLORY> <!subteam^S0APPROVERS> <#C0OTHER> "
    "<https://evil.example/login|Click to re-authenticate> <mailto:x@evil.example|mail> "
    "*bold* _italic_ ~strike~ `code` ```fence``` > quote &amp; &lt;b&gt; \u202eevil"
)
RAW_SEQUENCES = ("<!channel>", "<!here>", "<!everyone>", "<@U0MALLORY>", "<!subteam", "<https://", "<mailto:")


def all_views(h: HostileHarness) -> list[dict[str, Any]]:
    return [c.args["view"] for c in h.fake_slack.calls if isinstance(c.args.get("view"), dict)]


def assert_inert_everywhere(h: HostileHarness, *, allowed_users: tuple[str, ...]) -> None:
    """No injected control sequence in anything sent to Slack, and every surface within its limits."""
    blocks = h.posted_blocks()
    assert control_sequences(blocks, allowed_users=allowed_users) == []
    notification_texts = [str(c.args.get("text", "")) for c in h.fake_slack.calls]
    notification_texts += [str(p.body.get("text", "")) for p in h.fake_slack.response_url_posts]
    for raw in RAW_SEQUENCES:
        assert not any(raw in t for t in notification_texts), raw
    for call in h.fake_slack.calls:
        if call.args.get("blocks"):
            assert limit_violations(list(call.args["blocks"])) == [], call.method
    for view in all_views(h):
        assert modal_violations(view) == []


async def test_a_reason_full_of_control_sequences_is_shown_verbatim(hostile: HostileHarness) -> None:
    h = hostile
    fault("injection: mrkdwn and control sequences in a reason")
    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}", reason=INJECTED)
    await h.command("pending", user=BOB)
    await h.wait_ephemeral("waiting for")
    message = h.approval_posts()[-1].args
    reason = next(b["text"]["text"] for b in message["blocks"] if "*Reason*" in json.dumps(b))
    # Escaped, fenced, the fence unbreakable: Slack shows the characters and acts on none of them.
    assert reason.startswith("*Reason*\n```") and reason.endswith("```")
    assert reason.count("```") == 2
    assert "&lt;!channel&gt;" in reason and "&lt;@U0MALLORY&gt;" in reason and "&amp;amp;" in reason
    assert INJECTED not in json.dumps(message)
    assert_inert_everywhere(h, allowed_users=(ALICE,))
    # The audit trail keeps what was typed, byte for byte.
    assert (await h.bot.store.get(requested.request_id)).reason == INJECTED


REASONS_AT_THE_LIMITS = [
    ("500 '<' (escapes to 2,000 characters)", "<" * 500, True),
    ("500 '&' (escapes to 2,500)", "&" * 500, True),
    ("500 backticks (each would close the fence)", "`" * 500, True),
    ("501 characters", "x" * 501, False),
    ("under 3 characters once trimmed", "  ab  ", False),
    ("30k characters in a forged submission", "é" * 30_000, False),
]


async def test_reasons_at_and_beyond_the_limits(hostile: HostileHarness) -> None:
    h = hostile
    fed, idp = seed_oidc_idp(h)
    for name, reason, accepted in REASONS_AT_THE_LIMITS:
        fault("injection: reason at or beyond the length limit")
        posts = len(h.approval_posts())
        view = await h.open_modal(f"revoke-jwks {fed} {idp}")
        response = await h.submit(view, reason=reason)
        await h.quiet()
        assert response.status_code == 200, name
        if not accepted:
            assert "reason" in response.json()["errors"], name
            assert len(h.approval_posts()) == posts, name
            continue
        assert not response.content, name
        await h.fake_slack.wait_for(
            "chat.postMessage", count=posts + 1, predicate=lambda c: not c.args.get("thread_ts")
        )
        blocks = h.approval_posts()[-1].args["blocks"]
        assert limit_violations(blocks) == [], name
        reason_text = next(b["text"]["text"] for b in blocks if "*Reason*" in json.dumps(b))
        assert reason_text.count("```") == 2 and "<" not in reason_text.removeprefix("*Reason*"), name
    assert (await h.row_counts())["action_requests"] == sum(1 for *_, ok in REASONS_AT_THE_LIMITS if ok)


async def test_text_from_atlas_is_escaped_and_cut_too(hostile: HostileHarness) -> None:
    h = hostile
    fault("injection: control sequences and 10k characters from Atlas")
    org = h.fake_atlas.add_org("<!channel> Org <https://evil.example|login>")["id"]
    federation = h.fake_atlas.add_federation([org])["id"]
    idp = h.fake_atlas.add_idp(federation, org_ids=[org], display_name="<!here> " + "*IdP* " * 2000)["id"]
    detail = "<!channel> Atlas says: <https://evil.example|click here> " + "y" * 10_000
    h.fake_atlas.fail("DELETE", r"/jwks$", 400, "INVALID_ATTRIBUTE", detail=detail)
    requested = await h.request(f"revoke-jwks {federation} {idp}")
    await h.click(requested, user=BOB)
    thread = await h.wait_thread(requested, "INVALID_ATTRIBUTE")
    await h.quiet()
    assert "&lt;!channel&gt; Atlas says" in thread and "<!channel>" not in thread
    assert_inert_everywhere(h, allowed_users=(ALICE, BOB))
    update = h.final_update(requested)
    assert len(json.dumps(update["blocks"])) < 20_000  # cut, not 10k of Atlas's text per block


HOSTILE_COMMANDS = [
    ("revoke-employee-access {group} ../../admin", "clusterName"),
    ("revoke-employee-access {group} Cluster0/../../orgs", "clusterName"),
    ("revoke-employee-access {group} payments-0:revokeMongoDBEmployeeAccess", "clusterName"),
    ("revoke-employee-access {group} payments-0%3ArevokeMongoDBEmployeeAccess", "clusterName"),
    ("revoke-employee-access {group} %2e%2e%2fadmin", "clusterName"),
    ("revoke-employee-access {group} payments-0?pretty=true", "clusterName"),
    ("revoke-employee-access {group} payments-0#frag", "clusterName"),
    ("revoke-employee-access {group} -payments", "clusterName"),
    ("revoke-employee-access {group} " + "p" * 65, "clusterName"),
    ("revoke-employee-access {group} \u0420ayments-0", "clusterName"),  # Cyrillic look-alike
    ("revoke-employee-access {group} payments-0\u200b", "clusterName"),  # zero-width space
    ("revoke-employee-access {group} <!channel>", "clusterName"),
    ("revoke-employee-access {group} `payments`<@U0BOB>", "clusterName"),
    ("revoke-employee-access ../{group} payments-0", "groupId"),
    ("revoke-employee-access {upper} payments-0", "groupId"),
    ("revoke-employee-access {group}0 payments-0", "groupId"),
    ("revoke-jwks {group}:x {group}", "federationSettingsId"),
    ("delete-idp {group} {group}/..", "identityProviderId"),
    ("delete-federation %2F{group}", "federationSettingsId"),
    ("revoke-token ../default", "profile"),
    ("revoke-token DEFAULT", "profile"),
    ("revoke-token <!here>", "profile"),
]


async def test_hostile_ids_never_reach_a_url(hostile: HostileHarness) -> None:
    h = hostile
    group = seed_cluster(h, "payments-0")
    for template, argument in HOSTILE_COMMANDS:
        fault("injection: path trick in an id")
        response = await h.command(template.format(group=group, upper=group.upper()))
        assert response.status_code == 200, template
        body = response.json()
        assert body["response_type"] == "ephemeral", template
        assert f"`{argument}`" in body["text"], (template, body["text"])
        # The answer may quote the input, but only as inert text (the usage line's <placeholders> are ours).
        assert control_sequences(body["blocks"], allowed=USAGE_PLACEHOLDERS) == [], template
        assert all("`" not in part for part in _quoted_inputs(body["text"])), template
    await h.quiet()
    assert h.fake_atlas.requests == []
    assert h.fake_slack.calls_to("views.open") == []
    assert (await h.row_counts())["action_requests"] == 0


def _quoted_inputs(text: str) -> list[str]:
    """The input as quoted in '`<input>` does not match ...' (empty when not quoted)."""
    head, sep, _ = text.partition("` does not match")
    return [head.split(": `", 1)[-1]] if sep else []


async def test_a_submission_cannot_smuggle_an_id_past_the_modal(hostile: HostileHarness) -> None:
    """The target lives in signed private_metadata; the typed confirmation must equal it exactly."""
    h = hostile
    fault("injection: confirmation text that differs from the target")
    group = seed_cluster(h, "payments-0")
    view = await h.open_modal(f"revoke-employee-access {group} payments-0")
    for typed in ("payments-0/../x", "payments-0 ", "PAYMENTS-0", "payments-0\u200b", "<!channel>"):
        values = {
            "confirm": {"value": plain_text_value(typed)},
            "reason": {"value": plain_text_value("valid reason")},
        }
        response = await h.slack.submit(
            user_id=ALICE, callback_id=view["callback_id"], private_metadata=view["private_metadata"], values=values
        )
        errors = response.json().get("errors", {}) if response.content else {}
        if typed.strip() == "payments-0":
            assert errors == {}  # surrounding whitespace is trimmed, as Slack users expect
            continue
        assert "confirm" in errors, typed
        assert "<!channel>" not in json.dumps(errors)
    await h.quiet()
    assert h.atlas_writes() == []
    assert [c.args["channel"] for c in h.approval_posts()] == [CHANNEL]

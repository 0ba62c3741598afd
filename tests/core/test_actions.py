"""Parsing /atlas command text into actions: every bad input names the argument and pattern."""

from __future__ import annotations

import pytest

from bot.actions import looks_like_secret, parse_command
from bot.errors import InvalidCommand
from commands import load_registry

REGISTRY = load_registry()
FED = "65a1b2c3d4e5f6a7b8c9d0e1"
IDP = "65a1b2c3d4e5f6a7b8c9d0e2"


def test_registry_discovers_the_five_actions() -> None:
    assert sorted(REGISTRY) == [
        "delete-federation",
        "delete-idp",
        "revoke-employee-access",
        "revoke-jwks",
        "revoke-token",
    ]


@pytest.mark.parametrize(
    ("text", "action", "target"),
    [
        (
            f"revoke-jwks {FED} {IDP}",
            "revoke-jwks",
            {"federation_settings_id": FED, "identity_provider_id": IDP},
        ),
        (
            f"delete-idp {FED} {IDP}",
            "delete-idp",
            {"federation_settings_id": FED, "identity_provider_id": IDP},
        ),
        (f"delete-federation {FED}", "delete-federation", {"federation_settings_id": FED}),
        (
            f"revoke-employee-access {FED} Cluster0",
            "revoke-employee-access",
            {"group_id": FED, "cluster_name": "Cluster0"},
        ),
        ("revoke-token", "revoke-token", {"profile": "default"}),
        ("REVOKE-TOKEN ops", "revoke-token", {"profile": "ops"}),
    ],
)
def test_valid_commands_parse_into_their_targets(text: str, action: str, target: dict[str, str]) -> None:
    parsed = parse_command(text, REGISTRY)
    assert parsed.name == action
    assert parsed.spec is not None and parsed.args is not None
    assert parsed.spec.target_of(parsed.args) == target


@pytest.mark.parametrize("text", ["", "   "])
def test_no_arguments_opens_the_picker(text: str) -> None:
    parsed = parse_command(text, REGISTRY)
    assert (parsed.name, parsed.spec) == ("pick", None)


@pytest.mark.parametrize("text", ["help", "pending", "whoami"])
def test_meta_commands_have_no_spec(text: str) -> None:
    parsed = parse_command(text, REGISTRY)
    assert parsed.name == text
    assert parsed.spec is None


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        (f"revoke-jwks {FED}", "identityProviderId", "Missing argument `identityProviderId`"),
        (f"revoke-jwks {FED.upper()} {IDP}", "federationSettingsId", "^([a-f0-9]{24})$"),
        (f"revoke-jwks {FED[:-1]} {IDP}", "federationSettingsId", "does not match"),
        (f"revoke-employee-access {FED} ../admin", "clusterName", "^[a-zA-Z0-9][a-zA-Z0-9-]*$"),
        (f"revoke-employee-access {FED} a:b", "clusterName", "does not match"),
        (f"revoke-employee-access {FED} a/b", "clusterName", "does not match"),
        (f"revoke-employee-access {FED} -lead", "clusterName", "does not match"),
        (f"revoke-employee-access {FED} {'c' * 65}", "clusterName", "at most 64"),
        ("revoke-token Not_A_Profile!", "profile", "^[a-z0-9][a-z0-9_-]{0,31}$"),
    ],
)
def test_bad_arguments_name_the_field_and_pattern(text: str, field: str, fragment: str) -> None:
    with pytest.raises(InvalidCommand) as info:
        parse_command(text, REGISTRY)
    assert info.value.field == field
    assert fragment in str(info.value)
    assert info.value.usage is not None and info.value.usage.startswith("/atlas ")


def test_too_many_arguments() -> None:
    with pytest.raises(InvalidCommand, match="Too many arguments"):
        parse_command(f"delete-federation {FED} {IDP}", REGISTRY)


def test_unknown_subcommand_lists_known_ones() -> None:
    with pytest.raises(InvalidCommand) as info:
        parse_command("nuke-everything", REGISTRY)
    assert "Unknown subcommand `nuke-everything`" in str(info.value)
    assert "revoke-jwks" in str(info.value)


def test_unknown_subcommand_with_markup_is_not_echoed() -> None:
    with pytest.raises(InvalidCommand) as info:
        parse_command("<!channel>", REGISTRY)
    assert "<!channel>" not in str(info.value)


@pytest.mark.parametrize(
    "secret",
    [
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtZGJfc2EifQ.c2lnbmF0dXJl",
        "xoxb-1234-5678-abcdef",
        "mdb_sa_sk_0123456789abcdef",
        "Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXhmb29i",
    ],
)
def test_token_like_text_is_refused_without_echo(secret: str) -> None:
    assert looks_like_secret(secret)
    with pytest.raises(InvalidCommand) as info:
        parse_command(f"revoke-token default {secret}", REGISTRY)
    assert secret not in str(info.value)
    assert secret[:12] not in str(info.value)
    assert "modal" in str(info.value) or "form" in str(info.value)


def test_ids_are_not_mistaken_for_secrets() -> None:
    assert not looks_like_secret(f"revoke-jwks {FED} {IDP}")
    assert not looks_like_secret("revoke-employee-access 65a1b2c3d4e5f6a7b8c9d0e1 prod-cluster-eu-west-1")

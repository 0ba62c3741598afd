"""Hypothesis strategies for hostile input: command texts, user text, and payload mutations."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "ACTIONS",
    "HOSTILE_FRAGMENTS",
    "JsonValue",
    "command_texts",
    "hostile_word",
    "json_values",
    "mutated",
    "paths_of",
    "user_texts",
]

JsonValue = Any

ACTIONS = ("revoke-jwks", "delete-idp", "delete-federation", "revoke-employee-access", "revoke-token")
META = ("help", "pending", "whoami")
# Things people (or attackers) put in ids and text: path tricks, Slack control sequences, mrkdwn,
# encodings, look-alikes, shell and template syntax, and credential shapes.
HOSTILE_FRAGMENTS = (
    "../", "..%2F", "%2e%2e%2f", "/", "\\", ":", "%3A", ":revokeMongoDBEmployeeAccess", "?", "#", "&", "%00",
    "<!channel>", "<!here>", "<!everyone>", "<@U0BOB>", "<#C0OTHER>", "<!subteam^S0APPROVERS>",
    "<https://evil.example/login|Atlas>", "*bold*", "_it_", "~x~", "`", "```", "> quote", "&lt;", "&gt;", "&amp;",
    "\u202e", "\u200b", "\ufeff", "ｆｅｄ", "é", "İ", "\x00", "\x7f", "\r", "$(id)", "';--", "{{7*7}}",
    "${jndi:ldap://x/a}", "eyJhbGciOiJIUzI1NiJ9", "xoxb-1-2-abc", "mdb_sa_sk_0000", "%s%s%n",
)  # fmt: skip

_HEX = "0123456789abcdef"
hex24 = st.text(alphabet=_HEX, min_size=24, max_size=24)
_ID_CHARS = st.characters(codec="utf-8", exclude_categories=("Zs", "Zl", "Zp", "Cc", "Cs"))


def hostile_word() -> st.SearchStrategy[str]:
    """One word (no whitespace) that can never match an id pattern: it holds a forbidden character."""
    fragment = st.sampled_from([f for f in HOSTILE_FRAGMENTS if f and not any(c.isspace() for c in f)])
    prefix = st.one_of(st.just(""), hex24, st.text(alphabet="abcXYZ019-", max_size=10))
    return st.builds(lambda p, f, s: p + f + s, prefix, fragment, st.text(alphabet=_ID_CHARS, max_size=8)).filter(
        lambda w: not any(c.isspace() for c in w) and any(not (c.isascii() and (c.isalnum() or c == "-")) for c in w)
    )


def command_texts(*, hostile_args_only: bool = False) -> st.SearchStrategy[str]:
    """``/atlas`` texts: arbitrary Unicode, or a subcommand with plausible and hostile arguments.

    With ``hostile_args_only`` every action gets at least one argument that no pattern accepts, so
    the command can never reach Atlas, whoever sends it.
    """
    subcommand = st.one_of(
        st.sampled_from(ACTIONS + META),
        st.sampled_from(["REVOKE-JWKS", "revoke_jwks", "revoke-jwks;", "", "pick", "-h", "--help"]),
        st.text(alphabet=_ID_CHARS, min_size=1, max_size=20),
    )
    plausible = st.one_of(hex24, st.sampled_from(["default", "Cluster0", "a", "x" * 64, "x" * 65]))
    any_word = st.one_of(plausible, hostile_word(), st.text(alphabet=_ID_CHARS, min_size=1, max_size=80))

    @st.composite
    def structured(draw: st.DrawFn) -> str:
        name = draw(subcommand)
        words = draw(st.lists(any_word, max_size=4))
        if hostile_args_only and name.lower() in ACTIONS:
            words.insert(draw(st.integers(0, len(words))), draw(hostile_word()))
        separator = draw(st.sampled_from([" ", "  ", "\t", " \u00a0 ", "\n"]))
        return separator.join([name, *words])

    if hostile_args_only:
        return structured()
    return st.one_of(structured(), st.text(max_size=300), st.text(alphabet=_ID_CHARS, max_size=3000))


def user_texts(*, min_size: int = 0, max_size: int = 600) -> st.SearchStrategy[str]:
    """Free text (reasons) full of Slack control sequences and mrkdwn."""
    fragment = st.one_of(st.sampled_from(HOSTILE_FRAGMENTS), st.text(max_size=20))
    return st.lists(fragment, max_size=30).map("".join).filter(lambda t: min_size <= len(t) <= max_size)


def json_values() -> st.SearchStrategy[JsonValue]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=40),
        st.sampled_from(HOSTILE_FRAGMENTS),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
        max_leaves=6,
    )


Path = tuple[str | int, ...]


def paths_of(tree: JsonValue, prefix: Path = ()) -> list[Path]:
    """Every path to a value inside ``tree`` (the root excluded)."""
    paths: list[Path] = []
    items: list[tuple[str | int, JsonValue]] = []
    if isinstance(tree, dict):
        items = list(tree.items())
    elif isinstance(tree, list):
        items = list(enumerate(tree))
    for key, value in items:
        paths.append((*prefix, key))
        paths += paths_of(value, (*prefix, key))
    return paths


def _parent(tree: JsonValue, path: Path) -> Any:
    node = tree
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def mutated(
    draw: st.DrawFn,
    base: JsonValue,
    *,
    strings: Callable[[Path, str], st.SearchStrategy[str]] | None = None,
    max_mutations: int = 3,
) -> tuple[JsonValue, list[str]]:
    """``base`` (a JSON tree) after 1..``max_mutations`` edits: a value replaced by any JSON, a key
    deleted, a string replaced (``strings`` may offer field-specific values) or one character of it
    flipped. Returns the tree and a description of the edits (for failure reports)."""
    tree = json.loads(json.dumps(base))
    notes: list[str] = []
    for _ in range(draw(st.integers(1, max_mutations))):
        paths = paths_of(tree)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(tree, path), path[-1]
        current = parent[key]
        ops = ["replace", "delete"]
        if isinstance(current, str):
            ops += ["string", "string", "flip"]
        op = draw(st.sampled_from(ops))
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(json_values())
        elif op == "string":
            offered = strings(path, current) if strings is not None else st.nothing()
            parent[key] = draw(st.one_of(offered, st.text(max_size=60), hostile_word()))
        else:
            if current:
                i = draw(st.integers(0, len(current) - 1))
                parent[key] = current[:i] + draw(st.characters(codec="utf-8")) + current[i + 1 :]
            else:
                parent[key] = draw(st.characters(codec="utf-8"))
        notes.append(f"{op} {'.'.join(map(str, path))}")
    return tree, notes

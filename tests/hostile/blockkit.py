"""Checks on what the bot asked Slack to show: Block Kit's length limits, and Slack control
sequences (``<!channel>``, ``<@U…>``, links) that only the bot itself may write."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

__all__ = ["control_sequences", "limit_violations", "modal_violations", "texts"]

# (block or element type, key) -> maximum characters, from Slack's Block Kit reference.
_TEXT_LIMITS: Final[dict[tuple[str, str], int]] = {
    ("section", "text"): 3000,
    ("section", "fields"): 2000,
    ("header", "text"): 150,
    ("context", "elements"): 3000,
    ("button", "text"): 75,
    ("input", "label"): 2000,
    ("input", "hint"): 2000,
    ("plain_text_input", "placeholder"): 150,
    ("confirm", "title"): 100,
    ("confirm", "text"): 300,
    ("confirm", "confirm"): 30,
    ("confirm", "deny"): 30,
    ("option", "text"): 75,
}
_VALUE_LIMITS: Final[dict[str, int]] = {"value": 2000, "action_id": 255, "block_id": 255}
_CONTROL: Final = re.compile(r"<[^<>]+>")


def _text_of(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else str(obj)


def limit_violations(blocks: list[dict[str, Any]], *, surface: str = "message") -> list[str]:
    """Where ``blocks`` break Block Kit's limits (a ``modal`` may hold 100 blocks, a message 50)."""
    problems: list[str] = []
    most = 100 if surface == "modal" else 50
    if len(blocks) > most:
        problems.append(f"{len(blocks)} blocks in a {surface} (limit {most})")
    for block in blocks:
        kind = str(block.get("type"))
        for key in ("text", "label", "hint"):
            limit = _TEXT_LIMITS.get((kind, key))
            if limit is not None and key in block and len(_text_of(block[key])) > limit:
                problems.append(f"{kind}.{key} has {len(_text_of(block[key]))} characters (limit {limit})")
        for field in block.get("fields") or []:
            if len(_text_of(field)) > 2000:
                problems.append(f"section field has {len(_text_of(field))} characters (limit 2000)")
        if len(block.get("fields") or []) > 10:
            problems.append("more than 10 section fields")
        for element in block.get("elements") or []:
            if kind == "context" and len(_text_of(element)) > 3000:
                problems.append(f"context element has {len(_text_of(element))} characters")
            problems += _element_violations(element)
        if isinstance(block.get("element"), dict):
            problems += _element_violations(block["element"])
        if isinstance(block.get("accessory"), dict):
            problems += _element_violations(block["accessory"])
        for key, limit in _VALUE_LIMITS.items():
            if key == "block_id" and len(str(block.get(key, ""))) > limit:
                problems.append(f"block_id has {len(str(block[key]))} characters")
    return problems


def _element_violations(element: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    kind = str(element.get("type"))
    if kind == "button" and len(_text_of(element.get("text"))) > 75:
        problems.append(f"button text has {len(_text_of(element.get('text')))} characters (limit 75)")
    for key, limit in _VALUE_LIMITS.items():
        if key in element and len(str(element[key])) > limit:
            problems.append(f"{kind}.{key} has {len(str(element[key]))} characters (limit {limit})")
    if kind == "plain_text_input" and len(_text_of(element.get("placeholder", ""))) > 150:
        problems.append("placeholder over 150 characters")
    confirm = element.get("confirm")
    if isinstance(confirm, dict):
        for key in ("title", "text", "confirm", "deny"):
            limit = _TEXT_LIMITS[("confirm", key)]
            if len(_text_of(confirm.get(key, ""))) > limit:
                problems.append(f"confirm.{key} over {limit} characters")
    for option in element.get("options") or []:
        if len(_text_of(option.get("text"))) > 75 or len(str(option.get("value", ""))) > 150:
            problems.append("option over its limits")
    return problems


def modal_violations(view: dict[str, Any]) -> list[str]:
    problems = limit_violations(list(view.get("blocks") or []), surface="modal")
    for key in ("title", "submit", "close"):
        if key in view and len(_text_of(view[key])) > 24:
            problems.append(f"modal {key} over 24 characters")
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("private_metadata over 3000 characters")
    return problems


def texts(blocks: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Every string inside ``blocks`` (texts, fields, labels, values)."""
    stack: list[Any] = list(blocks)
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item


def control_sequences(
    blocks: Iterable[dict[str, Any]], *, allowed_users: Iterable[str] = (), allowed: Iterable[str] = ()
) -> list[str]:
    """Slack control sequences in ``blocks`` that the bot did not mean to write: anything but
    mentions of ``allowed_users``, channel links, ``<!date^…>`` timestamps and ``allowed``."""
    allowed = {f"<@{u}>" for u in allowed_users} | set(allowed)
    found = []
    for text in texts(blocks):
        for sequence in _CONTROL.findall(text):
            if sequence in allowed or sequence.startswith(("<#C", "<!date^")):
                continue
            found.append(sequence)
    return found

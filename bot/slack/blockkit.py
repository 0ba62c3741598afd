"""Block Kit objects (``slack_sdk.models``) as the dicts the Web API takes: what their own
``to_dict`` returns, with the same validation, at about a third of its CPU.

Why: slack_sdk works out, for every object on every call, which of its attributes to send (a chain
of set unions up the class hierarchy, then a sort) and which of its methods are validators (a union
with the instance's own attributes, a sort and a getattr of each), and walks every converted child
list a second time. The confirmation modal is about 20 objects and is sent twice per command
(views.open, then views.update with the preview): in ``bench/`` its serialisation was about a
seventh of the work process's CPU per command (py-spy, ack phase). Here both lists are worked out
once per class, and each object is walked once.

What stays the same: the views are still built with ``slack_sdk.models``, every validator of every
object still runs, in slack_sdk's order, and raises slack_sdk's own ``SlackObjectFormationError``.
A class that serialises itself differently (one that overrides ``to_dict`` or the methods it calls,
e.g. ``Option`` or ``ConfirmObject``) is asked for its own ``to_dict``. tests/core/test_blockkit.py
checks the result equals ``to_dict`` for every view and message the bot builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models import basic_objects
from slack_sdk.models.basic_objects import JsonObject
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

__all__ = ["block_dicts", "view_dict"]

# (property, type) pairs whose empty list is still sent (rich text elements), as slack_sdk lists them.
_EMPTY_ALLOWED = frozenset(
    (entry["type"], entry["property"]) for entry in getattr(basic_objects, "EMPTY_ALLOWED_TYPE_AND_PROPERTY_LIST", ())
)
_DEFAULTS = ("to_dict", "validate_json", "get_non_null_attributes", "get_object_attribute")


def _is_validator(member: Any) -> bool:
    return callable(member) and hasattr(member, "validator")  # what slack_sdk's JsonValidator marks


class _Plan:
    """How one class serialises: its validators and its attributes, each in slack_sdk's order."""

    __slots__ = ("attributes", "validators")

    def __init__(self, obj: JsonObject) -> None:
        cls = type(obj)
        self.validators = tuple(
            name for name in sorted(dir(cls)) if not name.startswith("__") and _is_validator(getattr(cls, name, None))
        )
        # A property of the class (each one a union with its parents'), the same for every instance.
        self.attributes = tuple(sorted(obj.attributes))


# None: the class serialises itself its own way; use its to_dict.
_plans: dict[type, _Plan | None] = {}


def _plan(obj: JsonObject) -> _Plan | None:
    cls = type(obj)
    try:
        return _plans[cls]
    except KeyError:
        pass
    own_way = any(getattr(cls, name) is not getattr(JsonObject, name) for name in _DEFAULTS)
    plan = _plans[cls] = None if own_way else _Plan(obj)
    return plan


def _object_dict(obj: JsonObject) -> dict[str, Any]:
    """``obj.to_dict()``: its validators run, then its non-empty attributes, converted, by name."""
    plan = _plan(obj)
    if plan is None:
        return obj.to_dict()
    for name in plan.validators:
        getattr(obj, name)()
    kind = getattr(obj, "type", None)
    converted: dict[str, Any] = {}
    for key in plan.attributes:
        value = getattr(obj, key, None)
        if value is None:
            continue
        if not ((kind, key) in _EMPTY_ALLOWED or not hasattr(value, "__len__") or len(value) > 0):
            continue
        converted[key] = _compatible(value)
    return converted


def _compatible(value: Any) -> Any:
    """slack_sdk's ``to_dict_compatible``: lists and tuples become lists, objects their dicts."""
    if isinstance(value, (list, tuple)):
        return [_compatible(item) for item in value]
    if isinstance(value, JsonObject) and _plan(value) is not None:
        # Already converted all the way down: walking it again, as slack_sdk does, changes nothing.
        return _object_dict(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        # A class with its own to_dict, as slack_sdk treats a child: its dict's lists walked once more.
        return {k: _compatible(v) for k, v in to_dict().items()}
    return value


def view_dict(view: View) -> dict[str, Any]:
    """``view.to_dict()``, for views.open, views.update, views.publish and an ack's response."""
    return _object_dict(view)


def block_dicts(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    """``[b.to_dict() for b in blocks]``, for chat.postMessage, chat.update and responses."""
    return [_object_dict(block) for block in blocks]

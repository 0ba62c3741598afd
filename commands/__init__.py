"""One module per Atlas action. Each defines ``ACTION``, an :class:`bot.actions.ActionSpec`.

Adding an action means adding a module here (and its tests): the registry discovers it.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from bot.actions import ActionSpec

__all__ = ["load_registry"]


def load_registry() -> dict[str, ActionSpec[Any]]:
    """Every ``commands.<module>.ACTION``, keyed by its subcommand name, in a stable order."""
    registry: dict[str, ActionSpec[Any]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "ACTION", None)
        if isinstance(spec, ActionSpec):
            if spec.name in registry:
                raise RuntimeError(f"two command modules define the action {spec.name!r}")
            registry[spec.name] = spec
    return registry

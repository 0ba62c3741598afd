"""What will be destroyed, read from Atlas before anyone approves.

Each command reads its target into a :class:`Preview`: the facts shown to the requester and
approvers, pre-flight ``blockers`` (Atlas would refuse: stop before approval), ``warnings``
(a large blast radius, shown in red), and ``evidence``, the target's configuration exactly as
Atlas returned it, kept in the audit trail so it can be recreated by hand.

The approval is bound to what the approver saw: :attr:`Preview.digest` covers the facts and
blockers (not volatile evidence such as timestamps), is stored with the request, and the
preview is read again just before execution; a different digest stops the execution.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Fact", "Preview", "preview_unavailable"]


class Fact(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    value: str


class Preview(BaseModel):
    model_config = ConfigDict(frozen=True)

    facts: tuple[Fact, ...] = ()
    blockers: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    evidence: dict[str, Any] = Field(default_factory=dict)
    # False when Atlas could not be read: the preview then says so and carries no digest.
    available: bool = True

    @property
    def digest(self) -> str | None:
        if not self.available:
            return None
        canonical = json.dumps(
            {"facts": [(f.label, f.value) for f in self.facts], "blockers": list(self.blockers)},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def changes_from(self, other: Preview) -> list[str]:
        """Human-readable differences between two previews' facts (for the 'target changed' stop)."""
        before = {f.label: f.value for f in other.facts}
        after = {f.label: f.value for f in self.facts}
        changes = [
            f"{label}: {before.get(label, '(none)')} → {after.get(label, '(none)')}"
            for label in sorted(before.keys() | after.keys())
            if before.get(label) != after.get(label)
        ]
        changes += [f"now refused: {b}" for b in self.blockers if b not in other.blockers]
        return changes


def preview_unavailable(reason: str) -> Preview:
    return Preview(available=False, warnings=(f"Atlas could not be read for a preview: {reason}",))

"""Counts of what the hostile tests threw at the bot, printed in pytest's terminal summary.

``fault(kind)`` is called by every helper that injects a failure (at the fake Atlas, the fake
Slack, or on the wire); ``fuzzed(kind)`` by the property-based tests for every request they send.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

__all__ = ["FAULTS", "FUZZED", "fault", "fuzzed", "summary_lines"]

FAULTS: Final[Counter[str]] = Counter()
FUZZED: Final[Counter[str]] = Counter()


def fault(kind: str, times: int = 1) -> None:
    FAULTS[kind] += times


def fuzzed(kind: str) -> None:
    FUZZED[kind] += 1


def summary_lines(*, verbose: bool = False) -> list[str]:
    """Kinds are named ``category: detail``; the summary counts kinds and injections per category."""
    lines: list[str] = []
    if FUZZED:
        parts = ", ".join(f"{kind} {n}" for kind, n in sorted(FUZZED.items()))
        lines.append(f"hostile: {sum(FUZZED.values())} fuzzed requests sent to POST /slack/events ({parts})")
    if FAULTS:
        categories: dict[str, list[str]] = {}
        for kind in FAULTS:
            categories.setdefault(kind.split(": ", 1)[0], []).append(kind)
        parts = ", ".join(
            f"{category} {len(kinds)} kinds/{sum(FAULTS[k] for k in kinds)}x"
            for category, kinds in sorted(categories.items())
        )
        lines.append(
            f"hostile: {len(FAULTS)} fault kinds injected {sum(FAULTS.values())} times ({parts})"
            + ("" if verbose else "; -v lists them")
        )
        if verbose:
            lines += [f"hostile:   {kind} x{n}" for kind, n in sorted(FAULTS.items())]
    return lines

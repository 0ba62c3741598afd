"""Order statistics for the report: p50 / p99 / max over every measured sample, nothing sampled away."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Summary", "percentile"]


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list: the smallest value with at least ``q`` of the
    samples at or below it (no interpolation, so every figure printed is a measured one)."""
    if not ordered:
        raise ValueError("no samples")
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Summary:
    """Seconds in, milliseconds out."""

    n: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary | None:
        ordered = sorted(values)
        if not ordered:
            return None
        return cls(n=len(ordered), p50=percentile(ordered, 0.50), p99=percentile(ordered, 0.99), max=ordered[-1])

    def ms(self) -> str:
        return f"{self.p50 * 1000:7.1f} /{self.p99 * 1000:8.1f} /{self.max * 1000:8.1f}"


def ms(summary: Summary | None) -> str:
    """``p50 / p99 / max`` in ms, or a dash when nothing was measured."""
    return summary.ms() if summary is not None else f"{'-':>7} /{'-':>8} /{'-':>8}"


def ratio(a: Summary | None, b: Summary | None) -> str:
    if a is None or b is None:
        return "-"
    return f"{a.p50 / b.p50:4.2f} / {a.p99 / b.p99:4.2f} / {a.max / b.max:4.2f}"

"""Descriptive statistics: pure functions on sequences of floats, no I/O.

Percentiles use linear interpolation between closest ranks (Hyndman & Fan
type 7, numpy's default ``method="linear"``), so results can be checked
against numpy. Standard deviation is the sample one (``ddof=1``); it is 0.0
for a single sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = ["Summary", "percentile", "summarize"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 <= q <= 100) of non-empty ``values``."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Summary:
    """Statistics of one series; values in the series' unit (seconds here)."""

    n: int
    min: float
    p50: float
    p90: float
    p99: float
    max: float
    mean: float
    stdev: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(values: Sequence[float]) -> Summary:
    """Summary of non-empty ``values``."""
    if not values:
        raise ValueError("summary of an empty sequence")
    n = len(values)
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return Summary(
        n=n,
        min=min(values),
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        max=max(values),
        mean=mean,
        stdev=math.sqrt(var),
    )

"""Medians and intervals of the benchmark's figures (pure; seeded bootstraps)."""

from __future__ import annotations

import random
import statistics


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median: order statistics (binomial, n >= 6).

    The widest symmetric pair (k-th smallest, k-th largest) whose coverage
    ``1 - 2 P(Bin(n, 1/2) < k)`` still reaches ``confidence``.
    """
    from math import comb

    ordered = sorted(values)
    n = len(ordered)
    k, below = 1, 0.0
    while True:
        below += comb(n, k - 1) / 2**n  # P(Bin < k)
        nxt = below + comb(n, k) / 2**n
        if 1 - 2 * nxt < confidence or k >= n // 2:
            break
        k += 1
    return ordered[k - 1], ordered[n - k]


def paired_ratio_interval(
    on: list[float], off: list[float], confidence: float = 0.95, resamples: int = 4000
) -> tuple[float, float, float]:
    """sum(on) / sum(off) over paired runs, with a paired bootstrap percentile interval.

    Pairs (``on[i]``, ``off[i]``) were measured next to each other, so they are
    resampled together: the machine's load, which moves both, cancels within a
    pair. The ratio of sums weighs every image alike and lets a run that
    happened to hold a periodic cost (an OTLP export batch) count once, as it
    does in reality, instead of deciding a median. Seeded: the same data give
    the same interval.
    """
    if len(on) != len(off) or len(on) < 2:
        raise ValueError("need at least two on/off pairs of equal count")
    rng = random.Random(0)
    n = len(on)
    ratios = []
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        ratios.append(sum(on[i] for i in picks) / sum(off[i] for i in picks))
    ratios.sort()
    tail = (1 - confidence) / 2
    low = ratios[int(tail * resamples)]
    high = ratios[min(resamples - 1, int((1 - tail) * resamples))]
    return sum(on) / sum(off), low, high


def paired_median_interval(
    ratios: list[float], confidence: float = 0.95, resamples: int = 4000
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of per-pair ratios (seeded)."""
    rng = random.Random(0)
    n = len(ratios)
    meds = sorted(
        statistics.median(ratios[rng.randrange(n)] for _ in range(n)) for _ in range(resamples)
    )
    tail = (1 - confidence) / 2
    return meds[int(tail * resamples)], meds[min(resamples - 1, int((1 - tail) * resamples))]

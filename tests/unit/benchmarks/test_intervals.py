"""The benchmark's paired intervals: right centre, paired resampling, honest width."""

from __future__ import annotations

import random

import pytest

from benchmarks.intervals import paired_median_interval, paired_ratio_interval


def test_paired_ratio_is_the_ratio_of_sums_and_its_interval_holds_it() -> None:
    on = [1.1, 2.2, 3.3, 4.4]
    off = [1.0, 2.0, 3.0, 4.0]
    total, low, high = paired_ratio_interval(on, off)
    assert total == pytest.approx(1.1)
    # Every pair has ratio 1.1: any resample gives 1.1, so the interval is a point.
    assert low == pytest.approx(1.1) and high == pytest.approx(1.1)


def test_pairing_cancels_load_that_moves_both_sides() -> None:
    rng = random.Random(1)
    load = [rng.uniform(0.5, 2.0) for _ in range(40)]  # the machine's load, shared by a pair
    on = [x * 1.08 * rng.uniform(0.99, 1.01) for x in load]
    off = [x * rng.uniform(0.99, 1.01) for x in load]
    total, low, high = paired_ratio_interval(on, off)
    assert low < 1.08 < high and low <= total <= high
    assert high - low < 0.02  # the 4x load swing does not widen it
    # Unpaired (shuffled), the same numbers give a far wider interval.
    shuffled = off[:]
    random.Random(2).shuffle(shuffled)
    _, ulow, uhigh = paired_ratio_interval(on, shuffled)
    assert uhigh - ulow > 5 * (high - low)


def test_paired_ratio_refuses_unequal_or_tiny_samples() -> None:
    with pytest.raises(ValueError, match="at least two"):
        paired_ratio_interval([1.0], [1.0])
    with pytest.raises(ValueError, match="at least two"):
        paired_ratio_interval([1.0, 2.0], [1.0])


def test_median_interval_of_pair_ratios_brackets_the_median() -> None:
    ratios = [0.9 + 0.01 * i for i in range(21)]  # median 1.0
    low, high = paired_median_interval(ratios)
    assert low < 1.0 < high
    assert low >= 0.9 and high <= 1.1
    assert paired_median_interval(ratios) == (low, high)  # seeded

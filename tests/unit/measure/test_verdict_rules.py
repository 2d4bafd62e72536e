"""The numbers behind the verdict rules (imgbench.measure.stats), re-checked."""

from __future__ import annotations

import math
import random

import pytest

from imgbench.measure.stats import (
    MIN_SAMPLES_PER_GROUP,
    bootstrap_ratio_ci,
    cluster_bootstrap_ratio_ci,
)


def _draw(rng: random.Random) -> float:
    # Timing-like: lognormal body and 15 % of 8x outliers.
    x = rng.lognormvariate(0.0, 0.3)
    return x * 8 if rng.random() < 0.15 else x


def test_interval_at_the_minimum_n_covers_the_true_ratio() -> None:
    # Both groups from one distribution: the true ratio of medians is 1. At the
    # minimum n the 95 % interval must cover it about 95 % of the time (binomial
    # sd over 300 trials is 1.3 points: 0.90 is a 4-sigma floor).
    rng = random.Random(7)
    n, trials = MIN_SAMPLES_PER_GROUP, 300
    hits = 0
    for t in range(trials):
        a = [_draw(rng) for _ in range(n)]
        b = [_draw(rng) for _ in range(n)]
        ci = bootstrap_ratio_ci(a, b, resamples=1000, seed=t)
        hits += ci.low <= 1.0 <= ci.high
    assert hits / trials >= 0.90


def test_below_six_no_distribution_free_interval_reaches_95_percent() -> None:
    # [min, max] is the widest order-statistic interval for a median.
    assert 1 - 2 * 0.5**5 < 0.95 <= 1 - 2 * 0.5**6
    assert MIN_SAMPLES_PER_GROUP >= 6


def test_cluster_bootstrap_is_deterministic_and_centred() -> None:
    a = [[1.0, 1.1, 0.9], [1.2, 1.3, 1.1], [0.8, 0.9, 1.0], [1.0, 1.0, 1.0]]
    b = [[2.0, 2.1, 1.9], [2.2, 2.3, 2.1], [1.8, 1.9, 2.0], [2.0, 2.0, 2.0]]
    one = cluster_bootstrap_ratio_ci(a, b, resamples=500, seed=1)
    assert one == cluster_bootstrap_ratio_ci(a, b, resamples=500, seed=1)
    assert math.isclose(one.ratio, 0.5, rel_tol=0.05)
    assert one.low <= one.ratio <= one.high < 1.0


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        ([[1.0]], [[1.0]], "repetitions"),
        ([[1.0], [1.0]], [[1.0]], "repetitions"),
        ([[1.0], []], [[1.0], [1.0]], "no samples"),
        ([[1.0], [1.0]], [[0.0], [0.0]], "positive"),
    ],
)
def test_cluster_bootstrap_refuses_bad_input(
    a: list[list[float]], b: list[list[float]], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        cluster_bootstrap_ratio_ci(a, b, resamples=10)

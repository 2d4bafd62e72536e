"""imgbench.measure.stats against independent references: numpy, statistics, enumeration.

Property tests on generated data live in ``test_stats_properties.py`` (they
need hypothesis); the seeded loops here cover the same ground without it.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections import Counter

import numpy as np
import pytest

from imgbench.measure.stats import (
    RatioCI,
    _resampled_medians,
    bootstrap_ratio_ci,
    percentile,
    summarize,
    verdict,
)

FIXED = [0.0123, 0.0045, 0.0300, 0.0045, 0.0210, 0.0011, 0.0099, 0.0500, 0.0072, 0.0188]
QS = [0, 1, 5, 10, 25, 33.3, 50, 66.7, 75, 90, 95, 99, 99.9, 100]


# --------------------------------------------------------------------------
# percentile / summarize
# --------------------------------------------------------------------------


@pytest.mark.parametrize("q", QS)
def test_percentile_matches_numpy_linear_on_fixed_data(q: float) -> None:
    expected = float(np.percentile(np.array(FIXED), q, method="linear"))
    assert percentile(FIXED, q) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_percentile_matches_statistics_inclusive_quantiles() -> None:
    # statistics.quantiles(method="inclusive") is also Hyndman & Fan type 7.
    cuts = statistics.quantiles(FIXED, n=100, method="inclusive")
    for i, cut in enumerate(cuts, start=1):
        assert percentile(FIXED, i) == pytest.approx(cut, rel=1e-12, abs=1e-15)


def test_percentile_edges_and_errors() -> None:
    assert percentile([3.5], 0) == 3.5
    assert percentile([3.5], 100) == 3.5
    assert percentile(FIXED, 0) == min(FIXED)
    assert percentile(FIXED, 100) == max(FIXED)
    assert percentile([1.0, 2.0], 50) == 1.5
    with pytest.raises(ValueError, match=r"^percentile of an empty sequence$"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"^percentile must be within 0\.\.100, got -0\.1$"):
        percentile(FIXED, -0.1)
    with pytest.raises(ValueError, match=r"^percentile must be within 0\.\.100, got 100\.1$"):
        percentile(FIXED, 100.1)


def _reference_summary(values: list[float]) -> dict[str, float]:
    arr = np.array(values, dtype=float)
    return {
        "n": len(values),
        "min": float(arr.min()),
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def _assert_summary_matches(values: list[float]) -> None:
    got = summarize(values).as_dict()
    want = _reference_summary(values)
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    if len(values) > 1:
        assert got["stdev"] == pytest.approx(float(np.std(values, ddof=1)), rel=1e-9, abs=1e-12)
        assert got["p50"] == pytest.approx(statistics.median(values), rel=1e-12, abs=1e-15)


def test_summarize_matches_numpy_and_statistics_on_fixed_data() -> None:
    _assert_summary_matches(FIXED)


def test_summarize_single_value_and_empty() -> None:
    s = summarize([0.25])
    assert (s.n, s.min, s.p50, s.max, s.mean, s.stdev) == (1, 0.25, 0.25, 0.25, 0.25, 0)
    with pytest.raises(ValueError, match=r"^summary of an empty sequence$"):
        summarize([])


@pytest.mark.parametrize("seed", range(25))
def test_summarize_and_percentile_on_seeded_random_data(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 300)
    scale = 10 ** rng.uniform(-6, 2)
    values = [rng.lognormvariate(0, 1) * scale for _ in range(n)]
    if seed % 5 == 0:  # ties
        values = [round(v, 1 if scale > 1 else 7) for v in values]
    _assert_summary_matches(values)
    q = rng.uniform(0, 100)
    assert percentile(values, q) == pytest.approx(
        float(np.percentile(values, q)), rel=1e-12, abs=1e-15
    )


# --------------------------------------------------------------------------
# bootstrap of the median: the fast path against exhaustive enumeration
# --------------------------------------------------------------------------


def _exact_bootstrap_median_distribution(values: list[float]) -> dict[float, float]:
    """P(median of a resample == m), by enumerating all n**n resamples."""
    n = len(values)
    counts: Counter[float] = Counter(
        statistics.median(values[i] for i in idx) for idx in itertools.product(range(n), repeat=n)
    )
    total = n**n
    return {m: c / total for m, c in counts.items()}


@pytest.mark.parametrize("values", [[1.0, 2.0, 4.0, 8.0, 16.0], [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]])
def test_resampled_medians_follow_the_exact_bootstrap_distribution(values: list[float]) -> None:
    exact = _exact_bootstrap_median_distribution(values)
    draws = 60_000
    got = Counter(_resampled_medians(sorted(values), draws, random.Random(7)))
    assert set(got) <= set(exact)  # never a value a real resample cannot have
    for m, p in exact.items():
        # binomial standard error is at most 0.002 here: 0.008 is 4 sigma
        assert got[m] / draws == pytest.approx(p, abs=0.008), m


def test_resampled_medians_single_value() -> None:
    assert _resampled_medians([4.0], 10, random.Random(0)) == [4.0] * 10


# --------------------------------------------------------------------------
# bootstrap_ratio_ci
# --------------------------------------------------------------------------


def _numpy_bootstrap_ci(
    a: list[float], b: list[float], resamples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """An independent percentile bootstrap of the ratio of medians, in numpy."""
    rng = np.random.default_rng(seed)
    arr_a, arr_b = np.array(a), np.array(b)
    med_a = np.median(rng.choice(arr_a, size=(resamples, len(a)), replace=True), axis=1)
    med_b = np.median(rng.choice(arr_b, size=(resamples, len(b)), replace=True), axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(med_a / med_b, [tail, 100 - tail])
    return float(low), float(high)


def _lognormal(rng: random.Random, median: float, n: int, sigma: float = 0.4) -> list[float]:
    return [rng.lognormvariate(math.log(median), sigma) for _ in range(n)]


@pytest.mark.parametrize(("na", "nb"), [(301, 301), (300, 250)])
def test_bootstrap_interval_agrees_with_numpy_reference(na: int, nb: int) -> None:
    rng = random.Random(3)
    a, b = _lognormal(rng, 1.3, na), _lognormal(rng, 1.0, nb)
    ci = bootstrap_ratio_ci(a, b, resamples=20_000, seed=11)
    low, high = _numpy_bootstrap_ci(a, b, 20_000, 0.95, seed=5)
    assert ci.ratio == pytest.approx(float(np.median(a) / np.median(b)), rel=1e-12)
    # Two Monte Carlo estimates of the same interval: close, not identical.
    assert ci.low == pytest.approx(low, rel=0.01)
    assert ci.high == pytest.approx(high, rel=0.01)


def test_fast_median_path_agrees_with_generic_resampling() -> None:
    rng = random.Random(4)
    a, b = _lognormal(rng, 2.0, 200), _lognormal(rng, 1.0, 151)
    fast = bootstrap_ratio_ci(a, b, resamples=8_000, seed=1)
    generic = bootstrap_ratio_ci(a, b, stat=lambda v: statistics.median(v), resamples=8_000, seed=2)
    assert fast.ratio == generic.ratio
    assert fast.low == pytest.approx(generic.low, rel=0.01)
    assert fast.high == pytest.approx(generic.high, rel=0.01)


def test_bootstrap_contains_true_ratio_for_well_separated_samples() -> None:
    rng = random.Random(5)
    a, b = _lognormal(rng, 0.0132, 1000), _lognormal(rng, 0.0100, 1000)
    ci = bootstrap_ratio_ci(a, b)
    assert ci.low <= 1.32 <= ci.high
    assert ci.low > 1.0 and ci.significant
    assert ci.low <= ci.ratio <= ci.high
    assert (ci.confidence, ci.resamples) == (0.95, 10_000)


def test_bootstrap_coverage_is_close_to_nominal() -> None:
    # 95% intervals from 200 independent experiments should cover the true
    # ratio of population medians (1.5) about 95% of the time (binomial
    # standard deviation of the rate: 1.5 points).
    rng = random.Random(6)
    covered = 0
    experiments = 200
    for i in range(experiments):
        a, b = _lognormal(rng, 1.5, 150), _lognormal(rng, 1.0, 150)
        ci = bootstrap_ratio_ci(a, b, resamples=1_000, seed=i)
        covered += ci.low <= 1.5 <= ci.high
    assert 0.90 <= covered / experiments <= 0.99


def test_bootstrap_includes_one_for_identical_distributions() -> None:
    rng = random.Random(8)
    same = _lognormal(rng, 0.01, 500)
    ci = bootstrap_ratio_ci(same, list(same))
    assert ci.ratio == 1.0 and ci.low < 1.0 < ci.high and not ci.significant
    # Independent draws from one distribution: rarely "significant".
    false_alarms = 0
    for seed in range(100):
        a, b = _lognormal(rng, 0.01, 200), _lognormal(rng, 0.01, 200)
        false_alarms += bootstrap_ratio_ci(a, b, resamples=1_000, seed=seed).significant
    assert false_alarms <= 12


def test_bootstrap_is_deterministic_per_seed() -> None:
    rng = random.Random(9)
    a, b = _lognormal(rng, 2.0, 50), _lognormal(rng, 1.0, 60)
    assert bootstrap_ratio_ci(a, b, seed=3) == bootstrap_ratio_ci(a, b, seed=3)
    assert bootstrap_ratio_ci(a, b, seed=3) != bootstrap_ratio_ci(a, b, seed=4)


def test_bootstrap_confidence_widens_interval() -> None:
    rng = random.Random(10)
    a, b = _lognormal(rng, 2.0, 100), _lognormal(rng, 1.0, 100)
    narrow = bootstrap_ratio_ci(a, b, confidence=0.5)
    wide = bootstrap_ratio_ci(a, b, confidence=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_bootstrap_generic_stat() -> None:
    rng = random.Random(12)
    a, b = _lognormal(rng, 3.0, 100), _lognormal(rng, 1.0, 100)
    ci = bootstrap_ratio_ci(a, b, stat=statistics.fmean, resamples=500)
    assert ci.ratio == pytest.approx(statistics.fmean(a) / statistics.fmean(b))
    assert ci.low < ci.ratio < ci.high


def test_bootstrap_errors() -> None:
    with pytest.raises(ValueError, match=r"^bootstrap of an empty sequence$"):
        bootstrap_ratio_ci([], [1.0])
    with pytest.raises(ValueError, match=r"^bootstrap of an empty sequence$"):
        bootstrap_ratio_ci([1.0], [])
    with pytest.raises(ValueError, match=r"^resamples must be at least 1, got 0$"):
        bootstrap_ratio_ci([1.0], [1.0], resamples=0)
    assert bootstrap_ratio_ci([1.0], [1.0], resamples=1).resamples == 1
    for confidence in (0.0, 1.0, 1.5, -0.5):
        why = rf"^confidence must be within \(0, 1\), got {confidence}$"
        with pytest.raises(ValueError, match=why):
            bootstrap_ratio_ci([1.0], [1.0], confidence=confidence)
    with pytest.raises(ValueError, match="positive"):
        bootstrap_ratio_ci([1.0, 2.0], [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="resample"):
        # median of b is positive, but many resamples of b have median 0
        bootstrap_ratio_ci([1.0, 2.0], [0.0, 0.0, 1.0, 1.0, 1.0])


# --------------------------------------------------------------------------
# verdict
# --------------------------------------------------------------------------


def test_verdict_slower() -> None:
    ci = RatioCI(ratio=1.32, low=1.2, high=1.45, confidence=0.95, resamples=10_000)
    assert verdict("grpc/unary", "websocket/binary", ci) == (
        "grpc/unary is 1.32x slower than websocket/binary (95% CI 1.20-1.45)"
    )


def test_verdict_faster_reports_the_reciprocal() -> None:
    ci = RatioCI(ratio=0.8, low=0.7, high=0.9, confidence=0.95, resamples=10_000)
    # 1/0.8 = 1.25, and the interval flips: 1/0.9 = 1.11, 1/0.7 = 1.43
    assert verdict("websocket/binary", "grpc/unary", ci) == (
        "websocket/binary is 1.25x faster than grpc/unary (95% CI 1.11-1.43)"
    )


def test_verdict_no_difference_when_interval_contains_one() -> None:
    ci = RatioCI(ratio=1.03, low=0.97, high=1.1, confidence=0.95, resamples=10_000)
    text = verdict("grpc/stream", "websocket/json", ci)
    assert text == (
        "no significant difference between grpc/stream and websocket/json "
        "(ratio of grpc/stream to websocket/json 1.03, 95% CI 0.97-1.10)"
    )
    boundary = RatioCI(ratio=1.2, low=1.0, high=1.4, confidence=0.9, resamples=100)
    assert verdict("a", "b", boundary).startswith("no significant difference")
    assert "90% CI" in verdict("a", "b", boundary)


def test_verdict_uses_three_decimals_near_one() -> None:
    ci = RatioCI(ratio=1.004, low=1.001, high=1.008, confidence=0.95, resamples=10_000)
    assert verdict("a", "b", ci) == "a is 1.004x slower than b (95% CI 1.001-1.008)"


def test_verdict_on_a_real_interval_names_the_faster_side() -> None:
    rng = random.Random(13)
    fast, slow = _lognormal(rng, 1.0, 300), _lognormal(rng, 2.0, 300)
    assert " faster than " in verdict("fast", "slow", bootstrap_ratio_ci(fast, slow))
    assert " slower than " in verdict("slow", "fast", bootstrap_ratio_ci(slow, fast))


# --------------------------------------------------------------------------
# Exact values: the interval is the documented percentiles of the documented
# resamples (a 95 % interval that became 96.7 % would pass a 1 % tolerance)
# --------------------------------------------------------------------------


def _type7(values: list[float], q: float) -> float:
    """Percentile by numpy (method="linear" is Hyndman & Fan type 7)."""
    return float(np.percentile(np.array(values), q, method="linear"))


@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.5])
def test_generic_bootstrap_is_exactly_the_documented_procedure(confidence: float) -> None:
    rng = random.Random(21)
    a, b = _lognormal(rng, 2.0, 31), _lognormal(rng, 1.0, 20)
    seed, resamples = 5, 400
    ci = bootstrap_ratio_ci(a, b, stat=statistics.fmean, resamples=resamples,
                            confidence=confidence, seed=seed)  # fmt: skip
    # The same resamples, drawn here: len(a) from a, then len(b) from b, per resample.
    draw = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        num = statistics.fmean(draw.choices(a, k=len(a)))
        ratios.append(num / statistics.fmean(draw.choices(b, k=len(b))))
    tail = (1 - confidence) / 2 * 100
    assert ci.low == pytest.approx(_type7(ratios, tail), rel=1e-12)
    assert ci.high == pytest.approx(_type7(ratios, 100 - tail), rel=1e-12)
    assert ci.ratio == pytest.approx(statistics.fmean(a) / statistics.fmean(b), rel=1e-12)
    assert (ci.confidence, ci.resamples) == (confidence, resamples)


@pytest.mark.parametrize(("na", "nb"), [(31, 20), (8, 9)])
def test_median_bootstrap_draws_a_then_b_from_one_generator(na: int, nb: int) -> None:
    rng = random.Random(22)
    a, b = _lognormal(rng, 2.0, na), _lognormal(rng, 1.0, nb)
    ci = bootstrap_ratio_ci(a, b, resamples=500, seed=9)
    draw = random.Random(9)
    ratios = []
    for _ in range(500):
        (num,) = _resampled_medians(sorted(a), 1, draw)
        (den,) = _resampled_medians(sorted(b), 1, draw)
        ratios.append(num / den)
    assert ci.low == pytest.approx(_type7(ratios, 2.5), rel=1e-12)
    assert ci.high == pytest.approx(_type7(ratios, 97.5), rel=1e-12)
    assert ci.ratio == pytest.approx(statistics.median(a) / statistics.median(b), rel=1e-12)


@pytest.mark.parametrize("values", [[1.0, 2.0, 4.0], [1.0, 2.0, 4.0, 8.0], [3.0, 3.0, 5.0]])
def test_resampled_medians_of_small_samples_follow_the_exact_distribution(
    values: list[float],
) -> None:
    exact = _exact_bootstrap_median_distribution(values)
    draws = 60_000
    got = Counter(_resampled_medians(sorted(values), draws, random.Random(17)))
    assert set(got) <= set(exact)
    for m, p in exact.items():
        assert got[m] / draws == pytest.approx(p, abs=0.008), m


def test_median_bootstrap_of_unsorted_input_is_the_bootstrap_of_the_sorted_input() -> None:
    a, b = [5.0, 1.0, 9.0, 2.0, 7.0], [3.0, 1.0, 2.0]
    assert bootstrap_ratio_ci(a, b, resamples=300, seed=2) == bootstrap_ratio_ci(
        sorted(a), sorted(b), resamples=300, seed=2
    )


def test_denominator_must_be_positive_before_any_resample() -> None:
    with pytest.raises(ValueError, match=r"^statistic of b must be positive, got 0\.0$"):
        bootstrap_ratio_ci([1.0, 2.0], [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"^statistic of b must be positive, got -1\.0$"):
        bootstrap_ratio_ci([1.0], [-1.0])
    with pytest.raises(ValueError, match=r"^statistic of a resample of b is not positive \(0\.0\)"):
        bootstrap_ratio_ci([1.0, 2.0], [0.0, 0.0, 1.0, 1.0, 1.0], resamples=2_000)


def test_summarize_two_values_has_the_sample_stdev() -> None:
    s = summarize([1.0, 3.0])
    assert (s.n, s.min, s.max, s.mean, s.p50) == (2, 1.0, 3.0, 2.0, 2.0)
    assert s.stdev == pytest.approx(math.sqrt(2.0), rel=1e-15)
    assert s.p90 == pytest.approx(2.8, rel=1e-12) and s.p99 == pytest.approx(2.98, rel=1e-12)


def test_percentile_interpolates_between_closest_ranks() -> None:
    # rank = (n - 1) * q / 100: between the 2nd and 3rd of four values at q = 50
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert percentile([40.0, 10.0, 30.0, 20.0], 25) == 17.5
    assert percentile([10.0, 20.0, 30.0, 40.0], 100) == 40.0
    assert percentile([10.0, 20.0], 99) == pytest.approx(19.9, rel=1e-12)


def test_significance_excludes_both_ends_of_the_interval() -> None:
    def ci(low: float, high: float) -> RatioCI:
        return RatioCI(ratio=(low + high) / 2, low=low, high=high, confidence=0.95, resamples=1)

    assert not ci(1.0, 1.2).significant and not ci(0.8, 1.0).significant
    assert not ci(1.0, 1.0).significant
    assert ci(1.000001, 1.2).significant and ci(0.8, 0.999999).significant
    assert verdict("a", "b", ci(0.8, 1.0)).startswith("no significant difference")

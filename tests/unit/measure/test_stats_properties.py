"""Property tests of imgbench.measure.stats on hypothesis-generated data (numpy as reference)."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from imgbench.measure.stats import bootstrap_ratio_ci, percentile, summarize  # noqa: E402

# Durations in seconds: from sub-microsecond to minutes, no NaN or infinity.
durations = st.floats(min_value=0.0, max_value=300.0, allow_nan=False, allow_infinity=False)
series = st.lists(durations, min_size=1, max_size=200)
positive_series = st.lists(
    st.floats(min_value=1e-6, max_value=300.0, allow_nan=False), min_size=1, max_size=60
)


@given(values=series, q=st.floats(min_value=0.0, max_value=100.0))
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    expected = float(np.percentile(np.array(values), q, method="linear"))
    assert percentile(values, q) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert min(values) <= percentile(values, q) <= max(values)


@given(values=series)
def test_summarize_matches_numpy_and_statistics(values: list[float]) -> None:
    s = summarize(values)
    arr = np.array(values)
    assert s.n == len(values)
    assert (s.min, s.max) == (min(values), max(values))
    assert s.p50 == pytest.approx(statistics.median(values), rel=1e-9, abs=1e-12)
    for got, q in ((s.p90, 90), (s.p99, 99)):
        assert got == pytest.approx(float(np.percentile(arr, q)), rel=1e-9, abs=1e-12)
    assert s.mean == pytest.approx(statistics.fmean(values), rel=1e-9, abs=1e-12)
    want_sd = statistics.stdev(values) if len(values) > 1 else 0.0
    assert s.stdev == pytest.approx(want_sd, rel=1e-7, abs=1e-9)
    assert s.min <= s.p50 <= s.p90 <= s.p99 <= s.max


@settings(max_examples=50, deadline=None)
@given(a=positive_series, b=positive_series, seed=st.integers(0, 2**32))
def test_bootstrap_interval_is_ordered_and_within_resample_bounds(
    a: list[float], b: list[float], seed: int
) -> None:
    ci = bootstrap_ratio_ci(a, b, resamples=200, seed=seed)
    assert ci.ratio == pytest.approx(statistics.median(a) / statistics.median(b))
    assert ci.low <= ci.high
    # Every resampled median lies within the sample's range.
    assert min(a) / max(b) * (1 - 1e-12) <= ci.low
    assert ci.high <= max(a) / min(b) * (1 + 1e-12)
    assert ci.significant == (not ci.low <= 1.0 <= ci.high)

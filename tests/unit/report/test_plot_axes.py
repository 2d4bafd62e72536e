"""Log axes carry enough tick labels; sweep intervals come from a real bootstrap."""

from __future__ import annotations

import statistics

import pytest

from imgbench.measure.stats import bootstrap_median_ci
from imgbench.report.plots import _canvas, _log

pytest.importorskip("matplotlib")


@pytest.mark.parametrize(
    ("low", "high", "at_least"), [(3.0, 8.0, 3), (0.9, 40.0, 4), (0.01, 900, 5)]
)
def test_log_axis_labels_at_least_three_ticks(low: float, high: float, at_least: int) -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    canvas = _canvas()
    assert canvas is not None
    canvas(fig)
    ax = fig.subplots()
    ax.plot([low, high], [low, high])
    _log(ax, "y")
    ax.set_ylim(low, high)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.yaxis.get_majorticklabels() + ax.yaxis.get_minorticklabels()
              if t.get_text() and low <= float(t.get_text()) <= high]  # fmt: skip
    assert len(set(labels)) >= at_least, labels


def test_median_interval_brackets_the_median_and_narrows_with_n() -> None:
    small = [1.0, 1.2, 0.9, 1.1, 1.3, 0.8, 1.0, 1.05, 0.95, 1.15]
    low, high = bootstrap_median_ci(small, resamples=2000, seed=1)
    assert low <= statistics.median(small) <= high
    big = small * 10
    blow, bhigh = bootstrap_median_ci(big, resamples=2000, seed=1)
    assert bhigh - blow < high - low
    assert bootstrap_median_ci(small, seed=3) == bootstrap_median_ci(small, seed=3)
    with pytest.raises(ValueError):
        bootstrap_median_ci([])

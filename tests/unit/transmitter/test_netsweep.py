"""The network sweep's pure parts: its grid, the clamp to the ceiling, the CI."""

from __future__ import annotations

import pytest

from imgbench.errors import ConfigError
from imgbench.report.netsweep import median_ci
from transmitter.netsweep import CEILING_SHARE, clamp_rate, parse_grid


def test_grid_parses_units_and_refuses_duplicates_and_bad_values() -> None:
    grid = parse_grid("0,10ms,0.1s", "100mbit,1gbit", [262144], "0,1")
    assert grid.rtts == (0.0, 0.01, 0.1)
    assert grid.rates == (100e6, 1e9)
    assert grid.delays == (0.0, 1.0)
    with pytest.raises(ConfigError, match="--rtts"):
        parse_grid("10ms,10ms", "100mbit", [1], "0")
    with pytest.raises(ConfigError, match=r"link\.rate"):
        parse_grid("0", "100mbps", [1], "0")
    with pytest.raises(ConfigError, match="--delays"):
        parse_grid("0", "100mbit", [1], "-1")


def test_a_rate_above_the_ceiling_is_clamped_below_it_never_above() -> None:
    assert clamp_rate(100e6, 400e6) == 100e6
    clamped = clamp_rate(1e9, 412e6)
    assert clamped == 320e6 and clamped <= CEILING_SHARE * 412e6
    assert clamp_rate(1e9, 5e6) == 10e6  # a floor, so a cell still runs


def test_median_ci_brackets_the_median_and_narrows_with_agreement() -> None:
    median, low, high = median_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert median == 3.0 and low <= median <= high
    tight = median_ci([3.0] * 5)
    assert tight == (3.0, 3.0, 3.0)

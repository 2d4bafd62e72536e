"""Evaluate ``--threshold`` expressions (:mod:`imgbench.config.thresholds`) on a result.

A threshold names a label by protocol or protocol/mode; it must match exactly
one measured label of the comparison, otherwise it fails with the reason (a
check that cannot be made is not a pass). ``ratio`` needs exactly one other
measured label. Figures are the report's: transmission-time statistics of the
pooled samples, total transfer and cumulative transmission time as the mean
per repetition, throughput on the median basis. The output mimics k6's
summary block: one line per threshold with a mark and the measured figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imgbench.config.thresholds import TIME_METRICS, Threshold
from imgbench.measure.results import Comparison
from imgbench.report.model import _label_figures, _LabelFigures


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """One threshold after the run: the figure (SI units) and whether it holds."""

    threshold: Threshold
    label: str | None
    value: float | None
    ok: bool
    reason: str | None = None

    @property
    def shown(self) -> str:
        """The measured figure with its unit, e.g. ``p90=4.21ms``."""
        t = self.threshold
        if self.value is None:
            return f"{t.metric}=n/a ({self.reason})"
        if t.metric in TIME_METRICS:
            return f"{t.metric}={_time(self.value)}"
        if t.metric == "throughput":
            return f"throughput={self.value:.2f}MB/s"
        return f"ratio={self.value:.3f}"

    def line(self) -> str:
        mark = "✓ pass" if self.ok else "✗ FAIL"
        where = f" [{self.label}]" if self.label and self.label != self.threshold.selector else ""
        return f"{mark}  {self.threshold.expression}  {self.shown}{where}"

    def as_dict(self) -> dict[str, Any]:
        t = self.threshold
        return {
            "expression": t.expression,
            "label": self.label,
            "metric": t.metric,
            "op": t.op,
            "limit": t.limit,
            "value": self.value,
            "ok": self.ok,
            "reason": self.reason,
        }


def _time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.4g}{unit}"
    return f"{seconds / 1e-9:.4g}ns"


def _figure(t: Threshold, g: _LabelFigures, groups: Sequence[_LabelFigures]) -> float:
    f = g.pooled
    assert f is not None
    if t.metric in ("p50", "median"):
        return f.transmission.p50
    if t.metric in ("p90", "p99", "min", "max", "mean"):
        return float(getattr(f.transmission, t.metric))
    if t.metric == "total":
        return statistics.fmean(r.total_transfer_s for r in g.per_run)
    if t.metric == "cumulative":
        return statistics.fmean(r.cumulative_transmission_s for r in g.per_run)
    if t.metric == "throughput":
        return g.robust_throughput_mb_s
    (other,) = [o for o in groups if o.label != g.label]
    assert other.pooled is not None
    return f.transmission.p50 / other.pooled.transmission.p50


def evaluate(comparison: Comparison, thresholds: Sequence[Threshold]) -> list[ThresholdResult]:
    """Every threshold against ``comparison``, in the given order."""
    groups = [g for g in _label_figures(comparison) if g.pooled is not None]
    out = []
    for t in thresholds:
        matches = [
            g for g in groups if g.protocol == t.protocol and (t.mode is None or g.mode == t.mode)
        ]
        if len(matches) != 1:
            why = "no measured label matches" if not matches else "several labels match"
            out.append(ThresholdResult(t, None, None, False, why))
            continue
        (g,) = matches
        if t.metric == "ratio" and len(groups) != 2:
            out.append(ThresholdResult(t, g.label, None, False, "ratio needs exactly two labels"))
            continue
        try:
            value = _figure(t, g, groups)
        except (ZeroDivisionError, statistics.StatisticsError) as exc:
            out.append(ThresholdResult(t, g.label, None, False, str(exc)))
            continue
        out.append(ThresholdResult(t, g.label, value, t.holds(value)))
    return out

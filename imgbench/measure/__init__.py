"""Measurements and the figures computed from them, with no I/O.

:mod:`imgbench.measure.results` holds one :class:`Sample` per image, the
figures defined in the README (:func:`compute_figures`) and the saved
``results.json`` model; :mod:`imgbench.measure.stats` the order statistics,
bootstrap intervals and verdicts they use; :mod:`imgbench.measure.clock`
estimates the offset between two hosts' clocks.
"""

from __future__ import annotations

from imgbench.measure.results import NS, Comparison, Figures, ProtocolRun, Sample, compute_figures
from imgbench.measure.stats import RatioCI, Summary, bootstrap_ratio_ci, summarize, verdict

__all__ = [
    "NS",
    "Comparison",
    "Figures",
    "ProtocolRun",
    "RatioCI",
    "Sample",
    "Summary",
    "bootstrap_ratio_ci",
    "compute_figures",
    "summarize",
    "verdict",
]

"""Outputs of a comparison: ``results.json``, ``samples.csv``, ``summary.md``,
``report.html`` and PNG plots; size-sweep outputs; a comparison of two saved runs.

One model (:mod:`~imgbench.report.model`: rows, verdicts, the string table)
rendered by :mod:`~imgbench.report.terminal` (rich), :mod:`~imgbench.report.markdown`,
:mod:`~imgbench.report.samples_csv`, :mod:`~imgbench.report.plots` (matplotlib,
optional) and :mod:`~imgbench.report.html`; :mod:`~imgbench.report.outputs`
writes one comparison's files, :mod:`~imgbench.report.sweep` a size sweep and
:mod:`~imgbench.report.runs` regenerates saved runs or compares two of them.
"""

from __future__ import annotations

from imgbench.report.markdown import summary_markdown
from imgbench.report.model import Outputs, Table, clock_lines, summary_table, verdict_lines
from imgbench.report.outputs import write_outputs
from imgbench.report.plots import (
    MODE_HATCHES,
    MODE_LINESTYLES,
    PROTOCOL_COLORS,
    PlotsUnavailableWarning,
    plots_available,
)
from imgbench.report.runs import compare_results, regenerate
from imgbench.report.samples_csv import CSV_COLUMNS, CsvSample, load_samples_csv
from imgbench.report.sweep import write_sweep_outputs
from imgbench.report.terminal import comparison_table, settings_line

__all__ = [
    "CSV_COLUMNS",
    "MODE_HATCHES",
    "MODE_LINESTYLES",
    "PROTOCOL_COLORS",
    "CsvSample",
    "Outputs",
    "PlotsUnavailableWarning",
    "Table",
    "clock_lines",
    "compare_results",
    "comparison_table",
    "load_samples_csv",
    "plots_available",
    "regenerate",
    "settings_line",
    "summary_markdown",
    "summary_table",
    "verdict_lines",
    "write_outputs",
    "write_sweep_outputs",
]

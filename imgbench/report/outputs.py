"""Write every output of one comparison into a directory."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imgbench.measure.results import Comparison
from imgbench.report.html import _report_html
from imgbench.report.markdown import summary_markdown
from imgbench.report.model import (
    REPORT_HTML,
    RESULTS_JSON,
    SAMPLES_CSV,
    SUMMARY_MD,
    Outputs,
    _label_figures,
)
from imgbench.report.plots import _draw, _plots
from imgbench.report.samples_csv import write_samples_csv
from imgbench.report.verdicts import Verdict, verdicts


def write_outputs(comparison: Comparison, out_dir: Path, *, save_json: bool = True) -> Outputs:
    """Write every output of ``comparison`` into ``out_dir`` (created if needed).

    ``results.json`` (unless ``save_json`` is false), ``samples.csv``,
    ``summary.md``, the PNG plots and ``report.html`` (plots embedded, so the
    file stands alone). Other files in ``out_dir`` are left alone. Returns the
    paths written; without matplotlib the PNGs are missing and
    ``Outputs.notes`` says so. ``results.json`` is the comparison
    (:meth:`Comparison.to_dict`) plus its ``verdicts``
    (:meth:`~imgbench.report.verdicts.Verdict.as_dict`), which loading ignores
    and regeneration recomputes.
    """
    return _write_outputs(comparison, out_dir, save_json, verdicts(comparison))


def results_document(
    comparison: Comparison, found: Sequence[Verdict] | None = None
) -> dict[str, Any]:
    """``results.json``'s content: the comparison and its verdicts."""
    found = verdicts(comparison) if found is None else found
    return {**comparison.to_dict(), "verdicts": [v.as_dict() for v in found]}


def _write_outputs(
    comparison: Comparison, out_dir: Path, save_json: bool, found: Sequence[Verdict]
) -> Outputs:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = Outputs()
    written.verdicts.extend(found)
    if save_json:
        (out_dir / RESULTS_JSON).write_text(
            json.dumps(results_document(comparison, found), indent=2) + "\n", encoding="utf-8"
        )
        written.append(out_dir / RESULTS_JSON)
    write_samples_csv(comparison, out_dir / SAMPLES_CSV)
    written.append(out_dir / SAMPLES_CSV)
    (out_dir / SUMMARY_MD).write_text(summary_markdown(comparison, found), encoding="utf-8")
    written.append(out_dir / SUMMARY_MD)
    pngs, notes = _draw(_plots, _label_figures(comparison), out_dir)
    written.extend(pngs)
    written.notes.extend(notes)
    (out_dir / REPORT_HTML).write_text(
        _report_html(comparison, found, pngs, notes), encoding="utf-8"
    )
    written.append(out_dir / REPORT_HTML)
    return written


def _relative(path: Path, start: Path) -> str:
    try:
        return path.relative_to(start).as_posix()
    except ValueError:
        return path.resolve().as_uri()

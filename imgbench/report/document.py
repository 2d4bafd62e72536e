"""The JSON document of ``--format json``: one object on stdout, nothing else.

Its shape is ``schemas/compare.schema.json`` (JSON Schema Draft 2020-12; a
test validates real output against it). Units are in the key names: ``_s``
seconds, ``_mb_s`` MB/s (10^6 B/s), ``_bytes`` bytes. A compare run gives one
``imgbench.compare/1`` document; a sweep gives ``imgbench.sweep/1`` whose
``sizes`` are compare documents without ``files``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from imgbench.measure.results import Comparison
from imgbench.report.model import _aggregate_cost, _cost_keys, _label_figures
from imgbench.report.thresholds import ThresholdResult
from imgbench.report.verdicts import verdicts

COMPARE_SCHEMA: Final = "imgbench.compare/1"
SWEEP_SCHEMA: Final = "imgbench.sweep/1"


def _finite(value: float) -> float | None:
    """JSON has no inf or nan: those become null."""
    return value if value == value and abs(value) != float("inf") else None


def figures(comparison: Comparison) -> dict[str, Any]:
    """Per label: n, repetitions, the mission figures, throughput on both bases, costs."""
    out: dict[str, Any] = {}
    for g in _label_figures(comparison):
        if g.pooled is None:
            out[g.label] = {"images": 0, "repetitions": len(g.runs)}
            continue
        f = g.pooled
        out[g.label] = {
            "images": f.images,
            "repetitions": len(g.runs),
            "transmission_s": f.transmission.as_dict(),
            "total_transfer_s": statistics.fmean(r.total_transfer_s for r in g.per_run),
            "cumulative_transmission_s": statistics.fmean(
                r.cumulative_transmission_s for r in g.per_run
            ),
            "throughput_mb_s": {
                "median_basis": _finite(g.robust_throughput_mb_s),
                "cumulative_basis": _finite(f.throughput_mb_s),
            },
            "costs": {
                key: value
                for key in _cost_keys(g.runs)
                if (value := _aggregate_cost(key, g.runs)) is not None
            },
        }
    return out


def comparison_document(
    comparison: Comparison,
    *,
    thresholds: Sequence[ThresholdResult] = (),
    files: Sequence[Path] | None = None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``imgbench.compare/1`` document of one comparison."""
    doc: dict[str, Any] = {
        "schema": COMPARE_SCHEMA,
        "run_id": comparison.run_id,
        "created_at": comparison.created_at,
        "settings": comparison.settings,
        "image": comparison.image,
        "versions": comparison.versions,
        "figures": figures(comparison),
        "verdicts": [v.as_dict() for v in verdicts(comparison)],
        "thresholds": [t.as_dict() for t in thresholds],
        "notes": list(notes),
    }
    if files is not None:
        doc["files"] = [str(p) for p in files]
    return doc


def sweep_document(
    comparisons: Sequence[Comparison],
    *,
    thresholds: Sequence[Sequence[ThresholdResult]],
    files: Sequence[Path],
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``imgbench.sweep/1`` document: one compare document per size."""
    return {
        "schema": SWEEP_SCHEMA,
        "sizes": [
            comparison_document(c, thresholds=t)
            for c, t in zip(comparisons, thresholds, strict=True)
        ],
        "files": [str(p) for p in files],
        "notes": list(notes),
    }

"""Saved runs: regenerate their outputs, compare two runs.

Two runs compared also give one JSON document, ``imgbench.runs/1``
(``imgbench report A B --format json``; its shape is in
``schemas/compare.schema.json`` under ``$defs/runs``, and its per-label figures
and verdicts are those of ``imgbench.compare/1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from imgbench.errors import ResultsError
from imgbench.measure.results import Comparison, compute_figures
from imgbench.report.document import comparison_document, figures, sweep_document
from imgbench.report.html import _figures_html
from imgbench.report.model import (
    BOOTSTRAP_CONFIDENCE,
    COMPARE_HTML,
    COMPARE_MD,
    COMPARE_PNG,
    RESULTS_JSON,
    Outputs,
    Table,
    _bootstrap_note,
    _flatten_pairs,
    _ms,
)
from imgbench.report.outputs import write_outputs
from imgbench.report.plots import _draw, _plot_compare
from imgbench.report.sweep import _write_sweep
from imgbench.report.templates import Markup, list_items, render_page
from imgbench.report.verdicts import Verdict, compare_groups


def _sweep_dirs(result_dir: Path) -> list[Path]:
    return sorted(p.parent for p in result_dir.glob(f"*/{RESULTS_JSON}"))


def regenerate(result_dir: Path) -> Outputs:
    """Rebuild every output from saved results (``imgbench report RESULT_DIR``).

    ``Outputs.document`` is the run's ``imgbench.compare/1`` (or ``imgbench.sweep/1``)
    document, as ``compare --format json`` printed it, without thresholds.

    ``result_dir`` holds either a ``results.json`` (one comparison: its
    outputs are rewritten next to it, the JSON itself is left untouched) or
    subdirectories that each hold one (a sweep: each is regenerated, then the
    sweep outputs). Raises :class:`ResultsError` when there is neither, or when a
    ``results.json`` is corrupt or not imgbench's.
    """
    _require_dir(result_dir)
    single = result_dir / RESULTS_JSON
    if single.is_file():
        comparison = Comparison.load(single)
        written = write_outputs(comparison, result_dir, save_json=False)
        written.document = comparison_document(comparison, files=written, notes=written.notes)
        return written
    subdirs = _sweep_dirs(result_dir)
    if not subdirs:
        raise ResultsError(f"no {RESULTS_JSON} in {result_dir} or its subdirectories")
    parts = [(Comparison.load(sub / RESULTS_JSON), sub) for sub in subdirs]
    written = _write_sweep(parts, result_dir, save_json=False)
    written.document = sweep_document(
        [c for c, _ in parts], thresholds=[[] for _ in parts], files=written, notes=written.notes
    )
    return written


def _require_dir(path: Path) -> None:
    if not path.exists():
        raise ResultsError(f"{path} does not exist")
    if not path.is_dir():
        raise ResultsError(f"{path} is not a results directory")


def _load_dir(path: Path) -> Comparison:
    file = path / RESULTS_JSON if path.is_dir() else path
    return Comparison.load(file)


#: Settings that say where a run listened or wrote, not what it measured
#: (ports are often ephemeral): left out of "What differs".
_NOT_A_DIFFERENCE: Final = frozenset(
    {
        "ws_port",
        "grpc_port",
        "http_port",
        "api_port",
        "output",
        "bind",
        "serve",
        "run_interval",
        # Where the TLS files were (compare --tls makes new ones per run); `tls` itself is a
        # difference.
        "tls_cert",
        "tls_key",
        "tls_ca",
        "token_file",
    }
)


RUNS_SCHEMA: Final = "imgbench.runs/1"


def _differences(a: Comparison, b: Comparison) -> Table:
    """Versions, host, image and workload settings that differ (not ports or paths)."""
    rows = []
    for section in ("versions", "host", "image", "settings"):
        fa = dict(_flatten_pairs(getattr(a, section)))
        fb = dict(_flatten_pairs(getattr(b, section)))
        for key in sorted(set(fa) | set(fb)):
            if section == "settings" and key.split(".")[0] in _NOT_A_DIFFERENCE:
                continue
            if fa.get(key) != fb.get(key):
                rows.append([f"{section}.{key}", fa.get(key, "—"), fb.get(key, "—")])
    return Table(headers=["differs", "A", "B"], rows=rows, numeric=False)


def run_verdicts(a: Comparison, b: Comparison) -> tuple[list[str], list[Verdict], list[str]]:
    """Labels in both runs, B-against-A verdicts for them, and labels in one only.

    Each verdict compares ``B <label>`` with ``A <label>`` (ratio of medians
    B / A, :func:`imgbench.report.verdicts.compare_groups`: same minimum n,
    interval and repetition rules as within a run).
    """
    labels_b = set(b.labels())
    common = [label for label in a.labels() if label in labels_b and a.samples_for(label)
              and b.samples_for(label)]  # fmt: skip
    only = [f"{label} (only in A)" for label in a.labels() if label not in common] + [
        f"{label} (only in B)" for label in b.labels() if label not in common
    ]
    found = []
    for label in common:
        v = compare_groups(
            f"B {label}",
            f"A {label}",
            [r for r in b.runs if r.label == label],
            [r for r in a.runs if r.label == label],
        )
        if v is not None:
            found.append(v)
    return common, found, only


def regressions(found: Sequence[Verdict]) -> list[Verdict]:
    """Verdicts where B is significantly slower than A (the interval excludes 1)."""
    return [v for v in found if v.outcome == "slower"]


def compare_results(dir_a: Path, dir_b: Path, out_dir: Path, *, overwrite: bool = False) -> Outputs:
    """Compare two saved runs (``imgbench report A B``).

    ``dir_a``/``dir_b`` are result directories (or ``results.json`` files).
    For every label present in both: median and p99 transmission time and
    throughput (robust basis) of A and B, and the verdict of B against A
    (:func:`run_verdicts`). Labels present in only one run are listed. Also
    lists every version, host, image and workload setting that differs (not
    ports or paths). Writes ``compare.md``, ``compare_cdf.png`` and
    ``compare.html`` into ``out_dir``; the verdicts are in ``Outputs.verdicts``.

    Raises ``FileExistsError`` when ``out_dir`` already holds a comparison and
    ``overwrite`` is false: an earlier comparison is never replaced silently.
    """
    a, b = _load_dir(dir_a), _load_dir(dir_b)
    if not overwrite and (out_dir / COMPARE_MD).exists():
        raise FileExistsError(f"{out_dir} already holds a comparison ({COMPARE_MD})")
    out_dir.mkdir(parents=True, exist_ok=True)
    common, found, only = run_verdicts(a, b)
    lines = [v.text for v in found]
    by_label = dict(zip(common, found, strict=False))
    rows = []
    for label in common:
        fa, fb = compute_figures(a.samples_for(label)), compute_figures(b.samples_for(label))
        v = by_label.get(label)
        ratio = (
            f"{v.ci.ratio:.3f} ({v.ci.low:.3f}-{v.ci.high:.3f})"
            if v is not None and v.ci is not None
            else "n/a"
        )
        rows.append(
            [
                label,
                _ms(fa.transmission.p50),
                _ms(fb.transmission.p50),
                ratio,
                _ms(fa.transmission.p99),
                _ms(fb.transmission.p99),
                f"{fa.images} / {fb.images}",
            ]
        )
    table = Table(
        headers=[
            "label",
            "A p50 (ms)",
            "B p50 (ms)",
            f"B/A median ({BOOTSTRAP_CONFIDENCE * 100:g}% CI)",
            "A p99 (ms)",
            "B p99 (ms)",
            "images A / B",
        ],
        rows=rows,
    )
    diff = _differences(a, b)
    intro = (
        f"A: `{a.run_id}` ({a.created_at}) from {dir_a}. "
        f"B: `{b.run_id}` ({b.created_at}) from {dir_b}."
    )
    methods = [f"{v.a} vs {v.b}: {v.method}" for v in found]
    md = [
        "# imgbench: two runs compared",
        intro,
        "## Verdicts (B against A)",
        "\n".join(f"- {line}" for line in lines) or "- (no label in common)",
        "\n".join(f"- {m}" for m in methods),
        _bootstrap_note(),
        "## Transmission time",
        table.markdown(),
    ]
    if only:
        md += ["## Not compared", "\n".join(f"- {o}" for o in only)]
    md += ["## What differs between the runs", diff.markdown() if diff.rows else "Nothing."]
    written = Outputs()
    written.verdicts.extend(found)
    (out_dir / COMPARE_MD).write_text("\n\n".join(md) + "\n", encoding="utf-8")
    written.append(out_dir / COMPARE_MD)
    pngs: list[Path] = []
    if common:
        pngs, notes = _draw(_plot_compare, a, b, common, out_dir / COMPARE_PNG)
        written.extend(pngs)
        written.notes.extend(notes)
    (out_dir / COMPARE_HTML).write_text(
        render_page(
            "compare.html",
            title="imgbench: two runs compared",
            intro=intro,
            verdicts=list_items(lines) or list_items(["(no label in common)"]),
            methods=list_items(methods),
            note=_bootstrap_note(),
            table=Markup(table.html()),
            plots=Markup(_figures_html(pngs, written.notes)),
            only=list_items(only) if only else list_items(["(none)"]),
            differs=Markup(diff.html()) if diff.rows else "Nothing.",
        ),
        encoding="utf-8",
    )
    written.append(out_dir / COMPARE_HTML)
    written.document = {
        "schema": RUNS_SCHEMA,
        "a": _run_ref(a, dir_a),
        "b": _run_ref(b, dir_b),
        "compared": common,
        "not_compared": only,
        "verdicts": [v.as_dict() for v in found],
        "regressions": [v.a.removeprefix("B ") for v in regressions(found)],
        "differences": [{"key": k, "a": va, "b": vb} for k, va, vb in diff.rows],
        "files": [str(p) for p in written],
        "notes": list(written.notes),
    }
    return written


def _run_ref(run: Comparison, where: Path) -> dict[str, Any]:
    """One side of ``imgbench.runs/1``: which run, and its per-label figures."""
    return {
        "path": str(where),
        "run_id": run.run_id,
        "created_at": run.created_at,
        "figures": figures(run),
    }

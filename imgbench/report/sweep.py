"""Outputs of a size sweep: one comparison per image size, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from imgbench.measure.results import Comparison
from imgbench.report.html import _figures_html, verdict_items
from imgbench.report.model import (
    REPORT_HTML,
    SWEEP_MD,
    SWEEP_PNG,
    Outputs,
    Table,
    _bootstrap_note,
    _image_bytes,
    _label_figures,
    _ms,
    _num,
    _size,
    compact_table,
)
from imgbench.report.outputs import _relative, _write_outputs
from imgbench.report.plots import _draw, _plot_sweep
from imgbench.report.templates import Markup, escape, render_page
from imgbench.report.verdicts import Verdict, verdicts


def _sweep_tables(comparisons: Sequence[Comparison]) -> tuple[Table, Table, list[str]]:
    labels = list(dict.fromkeys(label for c in comparisons for label in c.labels()))
    median_rows, throughput_rows = [], []
    for c in comparisons:
        size = _image_bytes(c)
        name = f"{_size(size)} ({c.image.get('name', '?')})"
        by_label = {g.label: g for g in _label_figures(c)}
        med, thr = [name], [name]
        for label in labels:
            g = by_label.get(label)
            f = g.pooled if g else None
            med.append(_ms(f.transmission.p50) if f else "n/a")
            thr.append(_num(g.robust_throughput_mb_s, 2) if g and f else "n/a")
        median_rows.append(med)
        throughput_rows.append(thr)
    headers = ["image size (image)", *labels]
    return Table(headers, median_rows), Table(headers, throughput_rows), labels


def _short(v: Verdict) -> str:
    ci = v.ci
    if v.outcome in ("faster", "slower") and ci is not None:
        factor, low, high = (
            (1 / ci.ratio, 1 / ci.high, 1 / ci.low)
            if v.outcome == "faster"
            else (ci.ratio, ci.low, ci.high)
        )
        return f"{v.a.split('/')[0]} {factor:.2f}x {v.outcome} ({low:.2f}-{high:.2f})"
    if v.outcome == "no significant difference" and ci is not None:
        return f"no sig. difference ({ci.low:.2f}-{ci.high:.2f})"
    if v.outcome == "too few samples":
        return f"too few samples (n={min(v.n_a, v.n_b)})"
    return v.outcome


def sweep_summary_table(comparisons: Sequence[Comparison]) -> Table:
    """One row per size: median transmission time per label and the verdict.

    The verdict cell is the first pair's, shortened: "websocket 1.32x faster
    (1.20-1.45)" (factor and 95 % interval, as in the full sentence).
    """
    ordered = sorted(comparisons, key=_image_bytes)
    labels = list(dict.fromkeys(label for c in ordered for label in c.labels()))
    rows = []
    for c in ordered:
        by_label = {g.label: g.pooled for g in _label_figures(c)}
        found = verdicts(c)
        cells = [
            _ms(f.transmission.p50) if (f := by_label.get(label)) else "n/a" for label in labels
        ]
        rows.append([_size(_image_bytes(c)), *cells, _short(found[0]) if found else "-"])
    return Table(["size", *(f"{label} p50 (ms)" for label in labels), "verdict"], rows)


def _size_dir(size: int) -> str:
    return f"size-{_size(size)}"


def write_sweep_outputs(
    comparisons: Sequence[Comparison], out_dir: Path, *, per_size_dirs: bool = True
) -> Outputs:
    """Outputs of a size sweep: one :class:`Comparison` per image size.

    Each comparison's ``image["bytes"]`` is its size; sizes must be distinct.
    Writes ``sweep.md`` (median transmission time and throughput per size and
    label, plus the pairwise verdicts per size), ``sweep.png`` (both against
    size, log-scaled) and ``report.html`` (both, plus each size's table). With
    ``per_size_dirs`` every comparison also gets its full outputs
    (:func:`write_outputs`) in ``out_dir/size-<size>/``, e.g. ``size-16KiB``,
    which :func:`regenerate` recognises later.
    """
    dirs = [out_dir / _size_dir(_image_bytes(c)) if per_size_dirs else None for c in comparisons]
    return _write_sweep(list(zip(comparisons, dirs, strict=True)), out_dir, save_json=True)


def _write_sweep(
    parts: Sequence[tuple[Comparison, Path | None]], out_dir: Path, *, save_json: bool
) -> Outputs:
    """Sweep outputs; each comparison's own outputs go to its path unless None."""
    if not parts:
        raise ValueError("a sweep needs at least one comparison")
    parts = sorted(parts, key=lambda part: _image_bytes(part[0]))
    ordered = [c for c, _ in parts]
    sizes = [_image_bytes(c) for c in ordered]
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"duplicate image sizes in the sweep: {sizes}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = Outputs()
    per_size = [(c, verdicts(c)) for c in ordered]
    for (c, sub_dir), (_, found) in zip(parts, per_size, strict=True):
        if sub_dir is not None:
            sub = _write_outputs(c, sub_dir, save_json, found)
            written.extend(sub)
            written.notes.extend(n for n in sub.notes if n not in written.notes)

    median_table, throughput_table, labels = _sweep_tables(ordered)
    summary = sweep_summary_table(ordered)
    md = [
        "# imgbench size sweep",
        f"{len(ordered)} sizes: {', '.join(_size(s) for s in sizes)}. "
        "Definitions as in each size's summary.md.",
        "## Summary",
        summary.markdown(),
        "## Median transmission time (ms)",
        median_table.markdown(),
        "## Throughput, image bytes / median time (MB/s)",
        throughput_table.markdown(),
        "## Verdicts per size",
    ]
    for c, found in per_size:
        md.append(f"### {_size(_image_bytes(c))} (run {c.run_id})")
        md.append(
            "\n".join(f"- {v.text}\n  method: {v.method}" for v in found) or "- (one label only)"
        )
    md.append(_bootstrap_note())
    (out_dir / SWEEP_MD).write_text("\n\n".join(md) + "\n", encoding="utf-8")
    written.append(out_dir / SWEEP_MD)

    pngs, notes = _draw(_plot_sweep, ordered, labels, out_dir / SWEEP_PNG)
    written.extend(pngs)
    written.notes.extend(n for n in notes if n not in written.notes)
    sections = []
    for (c, sub_dir), (_, found) in zip(parts, per_size, strict=True):
        size = _image_bytes(c)
        link = ""
        if sub_dir is not None:
            href = escape(f"{_relative(sub_dir, out_dir)}/{REPORT_HTML}")
            link = f' (<a href="{href}">full report</a>)'
        sections += [
            f"<h3>{escape(_size(size))}: run {escape(c.run_id)}{link}</h3>",
            f"<ul>{verdict_items(found, with_medians=False)}</ul>",
            compact_table(c).html(),
        ]
    (out_dir / REPORT_HTML).write_text(
        render_page(
            "sweep.html",
            title="imgbench size sweep",
            intro=f"{len(ordered)} sizes: {', '.join(_size(s) for s in sizes)}.",
            verdicts=Markup(summary.html()),
            plots=_figures_html(pngs, notes),
            median=Markup(median_table.html()),
            throughput=Markup(throughput_table.html()),
            per_size=Markup("\n".join(sections)),
            note=_bootstrap_note(),
        ),
        encoding="utf-8",
    )
    written.append(out_dir / REPORT_HTML)
    return written

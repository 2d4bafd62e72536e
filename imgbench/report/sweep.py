"""Outputs of a size sweep: one comparison per image size, side by side."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from imgbench.measure.results import Comparison
from imgbench.report.html import _figures_html, _page
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
    summary_table,
    verdict_lines,
)
from imgbench.report.outputs import _relative, _write_outputs
from imgbench.report.plots import _draw, _plot_sweep


def _sweep_tables(comparisons: Sequence[Comparison]) -> tuple[Table, Table, list[str]]:
    labels = list(dict.fromkeys(label for c in comparisons for label in c.labels()))
    median_rows, throughput_rows = [], []
    for c in comparisons:
        size = _image_bytes(c)
        name = f"{_size(size)} ({c.image.get('name', '?')})"
        by_label = {g.label: g.pooled for g in _label_figures(c)}
        med, thr = [name], [name]
        for label in labels:
            f = by_label.get(label)
            med.append(_ms(f.transmission.p50) if f else "n/a")
            thr.append(_num(f.throughput_mb_s, 2) if f else "n/a")
        median_rows.append(med)
        throughput_rows.append(thr)
    headers = ["image size (image)", *labels]
    return Table(headers, median_rows), Table(headers, throughput_rows), labels


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
    verdicts = [(c, verdict_lines(c)) for c in ordered]
    for (c, sub_dir), (_, lines) in zip(parts, verdicts, strict=True):
        if sub_dir is not None:
            sub = _write_outputs(c, sub_dir, save_json, lines)
            written.extend(sub)
            written.notes.extend(n for n in sub.notes if n not in written.notes)

    median_table, throughput_table, labels = _sweep_tables(ordered)
    md = [
        "# imgbench size sweep",
        f"{len(ordered)} sizes: {', '.join(_size(s) for s in sizes)}. "
        "Repetitions pooled per size; definitions as in each size's summary.md.",
        "## Median transmission time (ms)",
        median_table.markdown(),
        "## Throughput (MB/s)",
        throughput_table.markdown(),
        "## Ratio of median transmission times per size",
    ]
    for c, lines in verdicts:
        md.append(f"### {_size(_image_bytes(c))} (run {c.run_id})")
        md.append("\n".join(f"- {line}" for line in lines) or "- (one label only)")
    md.append(_bootstrap_note())
    (out_dir / SWEEP_MD).write_text("\n\n".join(md) + "\n", encoding="utf-8")
    written.append(out_dir / SWEEP_MD)

    pngs, notes = _draw(_plot_sweep, ordered, labels, out_dir / SWEEP_PNG)
    written.extend(pngs)
    written.notes.extend(n for n in notes if n not in written.notes)
    body = [
        "<h1>imgbench size sweep</h1>",
        *_figures_html(pngs, notes),
        "<h2>Median transmission time (ms)</h2>",
        median_table.html(),
        "<h2>Throughput (MB/s)</h2>",
        throughput_table.html(),
        "<h2>Per size</h2>",
    ]
    for (c, sub_dir), (_, lines) in zip(parts, verdicts, strict=True):
        size = _image_bytes(c)
        link = ""
        if sub_dir is not None:
            href = html.escape(f"{_relative(sub_dir, out_dir)}/{REPORT_HTML}")
            link = f' (<a href="{href}">full report</a>)'

        body += [
            f"<h3>{html.escape(_size(size))}: run {html.escape(c.run_id)}{link}</h3>",
            "<ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in lines) + "</ul>",
            summary_table(c).html(),
        ]
    body.append(f'<p class="note">{html.escape(_bootstrap_note())}</p>')
    (out_dir / REPORT_HTML).write_text(_page("imgbench size sweep", body), encoding="utf-8")
    written.append(out_dir / REPORT_HTML)
    return written

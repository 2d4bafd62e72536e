"""Saved runs: regenerate their outputs, compare two runs."""

from __future__ import annotations

import html
from pathlib import Path

from imgbench.measure.results import Comparison, compute_figures
from imgbench.measure.stats import verdict
from imgbench.report.html import _figures_html, _page
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
    _num,
    _ratio,
)
from imgbench.report.outputs import write_outputs
from imgbench.report.plots import _draw, _plot_compare
from imgbench.report.sweep import _write_sweep


def _sweep_dirs(result_dir: Path) -> list[Path]:
    return sorted(p.parent for p in result_dir.glob(f"*/{RESULTS_JSON}"))


def regenerate(result_dir: Path) -> Outputs:
    """Rebuild every output from saved results (``imgbench report RESULT_DIR``).

    ``result_dir`` holds either a ``results.json`` (one comparison: its
    outputs are rewritten next to it, the JSON itself is left untouched) or
    subdirectories that each hold one (a sweep: each is regenerated, then the
    sweep outputs). Raises ``FileNotFoundError`` when there is neither.
    """
    single = result_dir / RESULTS_JSON
    if single.is_file():
        return write_outputs(Comparison.load(single), result_dir, save_json=False)
    subdirs = _sweep_dirs(result_dir)
    if not subdirs:
        raise FileNotFoundError(f"no {RESULTS_JSON} in {result_dir} or its subdirectories")
    parts = [(Comparison.load(sub / RESULTS_JSON), sub) for sub in subdirs]
    return _write_sweep(parts, result_dir, save_json=False)


def _load_dir(path: Path) -> Comparison:
    file = path / RESULTS_JSON if path.is_dir() else path
    return Comparison.load(file)


def _differences(a: Comparison, b: Comparison) -> Table:
    rows = []
    for section in ("settings", "image", "versions", "host"):
        fa = dict(_flatten_pairs(getattr(a, section)))
        fb = dict(_flatten_pairs(getattr(b, section)))
        for key in sorted(set(fa) | set(fb)):
            if fa.get(key) != fb.get(key):
                rows.append([f"{section}.{key}", fa.get(key, "—"), fb.get(key, "—")])
    return Table(headers=["differs", "A", "B"], rows=rows)


def compare_results(dir_a: Path, dir_b: Path, out_dir: Path) -> Outputs:
    """Compare two saved runs (``imgbench report A B``).

    ``dir_a``/``dir_b`` are result directories (or ``results.json`` files).
    For every label present in both: median and p99 transmission time and
    throughput of A and B, and the ratio of medians B / A with its bootstrap
    interval (a verdict line "B's label is 1.2x slower than A's label ...").
    Labels present in only one run are listed. Also lists every setting,
    image, version and host field that differs. Writes ``compare.md``,
    ``compare_cdf.png`` and ``compare.html`` into ``out_dir``.
    """
    a, b = _load_dir(dir_a), _load_dir(dir_b)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels_b = set(b.labels())
    common = [label for label in a.labels() if label in labels_b and a.samples_for(label)
              and b.samples_for(label)]  # fmt: skip
    only = [f"{label} (only in A)" for label in a.labels() if label not in common] + [
        f"{label} (only in B)" for label in b.labels() if label not in common
    ]
    rows, lines = [], []
    for label in common:
        ta = [s.transmission_s for s in a.samples_for(label)]
        tb = [s.transmission_s for s in b.samples_for(label)]
        fa, fb = compute_figures(a.samples_for(label)), compute_figures(b.samples_for(label))
        try:
            ci = _ratio(tb, ta)
            ratio = f"{ci.ratio:.3f} ({ci.low:.3f}-{ci.high:.3f})"
            lines.append(verdict(f"B's {label}", f"A's {label}", ci))
        except ValueError as exc:
            ratio = "n/a"
            lines.append(f"{label}: no ratio ({exc})")
        rows.append(
            [
                label,
                _ms(fa.transmission.p50),
                _ms(fb.transmission.p50),
                ratio,
                _ms(fa.transmission.p99),
                _ms(fb.transmission.p99),
                _num(fa.throughput_mb_s, 2),
                _num(fb.throughput_mb_s, 2),
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
            "A MB/s",
            "B MB/s",
            "images A / B",
        ],
        rows=rows,
    )
    diff = _differences(a, b)
    intro = (
        f"A: `{a.run_id}` ({a.created_at}) from {dir_a}. "
        f"B: `{b.run_id}` ({b.created_at}) from {dir_b}."
    )
    md = [
        "# imgbench: two runs compared",
        intro,
        "## Transmission time and throughput",
        table.markdown(),
        "## Verdicts (B against A)",
        "\n".join(f"- {line}" for line in lines) or "- (no label in common)",
        _bootstrap_note(),
    ]
    if only:
        md += ["## Not compared", "\n".join(f"- {o}" for o in only)]
    md += ["## What differs between the runs", diff.markdown() if diff.rows else "Nothing."]
    written = Outputs()
    (out_dir / COMPARE_MD).write_text("\n\n".join(md) + "\n", encoding="utf-8")
    written.append(out_dir / COMPARE_MD)
    pngs: list[Path] = []
    if common:
        pngs, notes = _draw(_plot_compare, a, b, common, out_dir / COMPARE_PNG)
        written.extend(pngs)
        written.notes.extend(notes)
    body = [
        "<h1>imgbench: two runs compared</h1>",
        f"<p>{html.escape(intro)}</p>",
        table.html(),
        "<h2>Verdicts (B against A)</h2>",
        "<ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in lines) + "</ul>",
        f'<p class="note">{html.escape(_bootstrap_note())}</p>',
        *_figures_html(pngs, written.notes),
    ]
    if only:
        body += [
            "<h2>Not compared</h2>",
            "<ul>" + "".join(f"<li>{html.escape(o)}</li>" for o in only) + "</ul>",
        ]
    body += [
        "<h2>What differs between the runs</h2>",
        diff.html() if diff.rows else "<p>Nothing.</p>",
    ]
    (out_dir / COMPARE_HTML).write_text(
        _page("imgbench: two runs compared", body), encoding="utf-8"
    )
    written.append(out_dir / COMPARE_HTML)
    return written

"""``report.html``: one standalone page (plots embedded as data URIs).

Layout, the answer first: the headline (verdicts in plain words with their
method), the compact table, the plots, then the details (full table,
definitions, repetitions, settings, image, versions, host). The markup lives in
``imgbench/report/templates/`` (``string.Template`` files); every value is
escaped there unless it is :class:`~imgbench.report.templates.Markup`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from imgbench.measure.results import Comparison
from imgbench.report.markdown import _CLOCK_NOTE, _DEFINITIONS, _headline
from imgbench.report.model import (
    CDF_PNG,
    COMPARE_PNG,
    CPU_PNG,
    SWEEP_PNG,
    THROUGHPUT_PNG,
    TRANSMISSION_PNG,
    _bootstrap_note,
    _kv_table,
    _repetitions_table,
    clock_lines,
    compact_table,
    summary_table,
)
from imgbench.report.templates import Markup, escape, list_items, render_page
from imgbench.report.verdicts import Verdict, headline, verdicts


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


_CAPTIONS: Final = {
    TRANSMISSION_PNG: "Transmission time of every image, by sequence number",
    CDF_PNG: "Latency distributions (empirical CDFs), all protocols and modes overlaid",
    THROUGHPUT_PNG: "Throughput per protocol and mode",
    CPU_PNG: "CPU cost of the transmitter and the receiver",
    SWEEP_PNG: "Median transmission time (with 95% bootstrap interval) and throughput"
    " versus image size",
    COMPARE_PNG: "Transmission-time CDFs of the two runs, per protocol and mode",
}


def _figures_html(pngs: Sequence[Path], notes: Sequence[str]) -> Markup:
    body = [f'<p class="note warn">{escape(n)}</p>' for n in notes]
    body += [_img(p, _CAPTIONS.get(p.name, p.name)) for p in pngs]
    return Markup("\n".join(body))


def verdict_items(found: Sequence[Verdict], *, with_medians: bool = True) -> Markup:
    """``<li>`` per verdict: the sentence, then its method in small print."""
    if not found:
        return Markup("<li>one label only: nothing to compare</li>")
    return Markup(
        "".join(
            f"<li>{escape(headline(v) if with_medians else v.text)}"
            f'<br><span class="method">method: {escape(v.method)}</span></li>'
            for v in found
        )
    )


def _report_html(
    comparison: Comparison, found: Sequence[Verdict], pngs: Sequence[Path], notes: Sequence[str]
) -> str:
    return render_page(
        "report.html",
        title=f"imgbench {comparison.run_id}",
        subject=f"{comparison.image.get('name', '?')}, run {comparison.run_id}",
        headline=verdict_items(found),
        note=_bootstrap_note(),
        compact=Markup(compact_table(comparison).html()),
        plots=_figures_html(pngs, notes),
        context=_headline(comparison).replace("`", ""),
        summary=Markup(summary_table(comparison).html()),
        definitions=_DEFINITIONS,
        clocks=list_items(clock_lines(comparison)),
        clock_note=_CLOCK_NOTE,
        repetitions=Markup(_repetitions_table(comparison).html()),
        settings=Markup(_kv_table(comparison.settings).html()),
        image=Markup(_kv_table(comparison.image).html()),
        versions=Markup(_kv_table(comparison.versions).html()),
        host=Markup(_kv_table(comparison.host).html()),
    )


def report_html(
    comparison: Comparison, pngs: Sequence[Path] = (), notes: Sequence[str] = ()
) -> str:
    """``report.html`` of ``comparison`` with the given plot files embedded."""
    return _report_html(comparison, verdicts(comparison), pngs, notes)

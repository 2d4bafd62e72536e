"""``report.html``: one standalone page (plots embedded as data URIs).

Every string that reaches the page goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
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
    summary_table,
)

_CSS: Final = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;vertical-align:top}
thead th{background:#f3f3f3}
th[scope=row]{text-align:left;font-weight:normal;background:#fafafa}
figure{margin:1.5rem 0}img{max-width:100%;border:1px solid #eee}
td.text{text-align:left}.note{color:#555;font-size:.9rem}.warn{color:#a00}
code{background:#f3f3f3;padding:0 .2rem}
"""


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _page(title: str, body: Iterable[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


_CAPTIONS: Final = {
    TRANSMISSION_PNG: "Transmission time of every image, by sequence number",
    CDF_PNG: "Latency distributions (empirical CDFs), all protocols and modes overlaid",
    THROUGHPUT_PNG: "Throughput per protocol and mode",
    CPU_PNG: "CPU cost of the transmitter and the receiver",
    SWEEP_PNG: "Median transmission time and throughput versus image size",
    COMPARE_PNG: "Transmission-time CDFs of the two runs, per protocol and mode",
}


def _figures_html(pngs: Sequence[Path], notes: Sequence[str]) -> list[str]:
    body = [f'<p class="note warn">{html.escape(n)}</p>' for n in notes]
    body += [_img(p, _CAPTIONS.get(p.name, p.name)) for p in pngs]
    return body


def _report_html(
    comparison: Comparison, verdicts: Sequence[str], pngs: Sequence[Path], notes: Sequence[str]
) -> str:
    items = "".join(f"<li>{html.escape(v)}</li>" for v in verdicts)
    body = [
        f"<h1>imgbench comparison {html.escape(comparison.run_id)}</h1>",
        f"<p>{html.escape(_headline(comparison).replace('`', ''))}</p>",
        "<h2>Side by side</h2>",
        summary_table(comparison).html(),
        f'<p class="note">{html.escape(_DEFINITIONS)}</p>',
        "<h2>Clocks</h2>",
        "<ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in clock_lines(comparison)) + "</ul>",
        f'<p class="note">{html.escape(_CLOCK_NOTE)}</p>',
        "<h2>Ratio of median transmission times</h2>",
        f"<ul>{items or '<li>(one label only)</li>'}</ul>",
        f'<p class="note">{html.escape(_bootstrap_note())}</p>',
        "<h2>Plots</h2>",
        *_figures_html(pngs, notes),
        "<h2>Repetitions</h2>",
        _repetitions_table(comparison).html(),
        "<h2>Settings</h2>",
        _kv_table(comparison.settings).html(),
        "<h2>Image</h2>",
        _kv_table(comparison.image).html(),
        "<h2>Versions</h2>",
        _kv_table(comparison.versions).html(),
        "<h2>Host</h2>",
        _kv_table(comparison.host).html(),
    ]
    return _page(f"imgbench {comparison.run_id}", body)

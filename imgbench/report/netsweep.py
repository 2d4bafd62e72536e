"""Outputs of a network sweep: transmission time against link RTT, per rate and size.

A cell is one (link, delay, image size, protocol label): its median transmission
time with a 95 % percentile-bootstrap interval of the median (2000 resamples,
seeded), its throughput (image bytes / median transmission time) and the link
as measured. Writes ``netsweep.json`` (every cell), ``netsweep.md`` (the
summary table) and ``netsweep.png`` (one panel per rate and size: median and
interval against RTT, one line per protocol and delay).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from imgbench.measure.results import Comparison
from imgbench.measure.stats import percentile
from imgbench.report.model import Table, _size
from imgbench.report.plots import _canvas, _color, _figure, _save

NETSWEEP_JSON = "netsweep.json"
NETSWEEP_MD = "netsweep.md"
NETSWEEP_PNG = "netsweep.png"
RESAMPLES = 2000


@dataclass(frozen=True)
class Cell:
    """One protocol label at one link, delay and image size (seconds, bytes, bit/s)."""

    rtt_s: float
    rate_bit_s: float | None  # the rate the link ran at (None = unshaped)
    rate_requested_bit_s: float | None  # the sweep's rate before any clamp to the ceiling
    delay_s: float
    image_bytes: int
    label: str
    images: int
    median_s: float
    ci_low_s: float
    ci_high_s: float
    throughput_mb_s: float
    link_rtt_median_s: float
    bound_s: float  # largest clock bound of the samples (0: shared clock, exact)
    run_id: str


def median_ci(values: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """(median, 2.5th, 97.5th percentile of bootstrap medians) of ``values``."""
    rng = random.Random(seed)
    n = len(values)
    medians = sorted(percentile(sorted(rng.choices(values, k=n)), 50) for _ in range(RESAMPLES))
    return percentile(sorted(values), 50), percentile(medians, 2.5), percentile(medians, 97.5)


def cells_of(
    comparison: Comparison, *, delay_s: float, rate_requested_bit_s: float | None
) -> list[Cell]:
    """The cells of one comparison that ran over a link (``comparison.link`` set)."""
    link = comparison.link or {}
    settings = link.get("settings", {})
    out = []
    for label in comparison.labels():
        samples = comparison.samples_for(label)
        if not samples:
            continue
        times = [s.transmission_s for s in samples]
        median, low, high = median_ci(times)
        size = samples[0].image_bytes
        out.append(
            Cell(
                rtt_s=float(settings.get("rtt_s", 0.0)),
                rate_bit_s=settings.get("rate_bit_s"),
                rate_requested_bit_s=rate_requested_bit_s,
                delay_s=delay_s,
                image_bytes=size,
                label=label,
                images=len(samples),
                median_s=median,
                ci_low_s=low,
                ci_high_s=high,
                throughput_mb_s=size / median / 1e6 if median > 0 else 0.0,
                link_rtt_median_s=float(link.get("measured", {}).get("rtt_median_s", 0.0)),
                bound_s=max(s.bound_ns for s in samples) / 1e9,
                run_id=comparison.run_id,
            )
        )
    return out


def _rate(bit_s: float | None) -> str:
    return "unshaped" if bit_s is None else f"{bit_s / 1e6:g} Mbit/s"


def summary(cells: Sequence[Cell]) -> Table:
    """One row per link, delay and size; per label the median [95 % CI] and MB/s."""
    labels = list(dict.fromkeys(c.label for c in cells))
    keys = sorted({(c.rate_bit_s or 0.0, c.image_bytes, c.delay_s, c.rtt_s) for c in cells})
    rows = []
    for rate, size, delay, rtt in keys:
        group = {
            c.label: c
            for c in cells
            if (c.rate_bit_s or 0.0, c.image_bytes, c.delay_s, c.rtt_s) == (rate, size, delay, rtt)
        }
        any_cell = next(iter(group.values()))
        row = [
            _rate(any_cell.rate_bit_s),
            _size(size),
            f"{delay:g} s",
            f"{rtt * 1e3:g} ms ({any_cell.link_rtt_median_s * 1e3:.1f})",
        ]
        for label in labels:
            c = group.get(label)
            row.append(
                "n/a"
                if c is None
                else f"{c.median_s * 1e3:.1f} [{c.ci_low_s * 1e3:.1f}-{c.ci_high_s * 1e3:.1f}]"
                f" {c.throughput_mb_s:.1f} MB/s"
            )
        rows.append(row)
    headers = ["rate", "size", "delay", "RTT set (measured) ", *labels]
    return Table(headers, rows)


def plot(cells: Sequence[Cell], path: Path) -> Path | None:
    """Median and 95 % CI against RTT; one panel per (rate, size). None without matplotlib."""
    if _canvas() is None:
        return None
    rates = sorted({c.rate_bit_s or 0.0 for c in cells})
    sizes = sorted({c.image_bytes for c in cells})
    # Rows are image sizes, columns are rates.
    panels = [(rate, size) for size in sizes for rate in rates]
    fig, axes_list = _figure(3.0 * len(sizes), len(sizes), len(rates))
    delays = sorted({c.delay_s for c in cells})
    styles = ["-", "--", ":", "-."]
    for ax, (rate, size) in zip(axes_list, panels, strict=True):
        for label in dict.fromkeys(c.label for c in cells):
            for i, delay in enumerate(delays):
                line = sorted(
                    (c for c in cells
                     if (c.rate_bit_s or 0.0, c.image_bytes) == (rate, size)
                     and c.label == label and c.delay_s == delay),
                    key=lambda c: c.rtt_s,
                )  # fmt: skip
                if not line:
                    continue
                x = [c.rtt_s * 1e3 for c in line]
                y = [c.median_s * 1e3 for c in line]
                err = [
                    [c.median_s * 1e3 - c.ci_low_s * 1e3 for c in line],
                    [c.ci_high_s * 1e3 - c.median_s * 1e3 for c in line],
                ]
                ax.errorbar(
                    x, y, yerr=err, capsize=3, marker="o", markersize=3,
                    color=_color(label.split("/")[0]), linestyle=styles[i % len(styles)],
                    label=f"{label}, delay {delay:g} s",
                )  # fmt: skip
        ax.set_title(f"{_rate(rate or None)}, {_size(size)} image")
        ax.set_xlabel("link RTT (ms)")
        ax.set_ylabel("median transmission (ms)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    return _save(fig, path)


def write_netsweep(cells: Sequence[Cell], meta: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write netsweep.json, netsweep.md and (with matplotlib) netsweep.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "cells": [asdict(c) for c in cells]}
    (out_dir / NETSWEEP_JSON).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    table = summary(cells)
    md = [
        "# imgbench network sweep",
        "Median transmission time (ms) [95 % bootstrap CI of the median] and throughput"
        " (image bytes / median) per link, pause between images and image size.",
        "```\n" + json.dumps(meta, indent=1) + "\n```",
        table.markdown(),
    ]
    (out_dir / NETSWEEP_MD).write_text("\n\n".join(md) + "\n", encoding="utf-8")
    written = [out_dir / NETSWEEP_JSON, out_dir / NETSWEEP_MD]
    png = plot(cells, out_dir / NETSWEEP_PNG)
    if png is not None:
        written.append(png)
    return written

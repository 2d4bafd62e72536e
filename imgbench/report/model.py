"""The report's model: output file names, the string :class:`Table`, number
formatting, figures per ``protocol/mode`` label, the summary rows and verdicts.

Every figure comes from :mod:`imgbench.measure.results` (definitions there) and
:mod:`imgbench.measure.stats`; this module only arranges them. Conventions:

* Times in the tables are in milliseconds, except total transfer and
  cumulative transmission time (seconds). Throughput is in MB/s (10^6 B/s).
* Repetitions of one ``protocol/mode`` label are **pooled** for the time
  summaries, the throughput and the bootstrap intervals. Total transfer and
  cumulative transmission time are computed per repetition (each run has its
  own message clock) and averaged. Costs are averaged over repetitions,
  except peaks (``*peak*`` keys), whose maximum is shown.
* Verdicts (ratio of medians, interval, method, minimum n) come from
  :mod:`imgbench.report.verdicts`; seed 0, so a regenerated report is
  byte-identical.
* Throughput is shown on two bases: mean image bytes / median transmission
  time (robust, the basis of the verdict and of the compact table) and image
  bytes / cumulative transmission time (the mean basis: one slow image
  dominates it; kept and labelled "outlier-sensitive").

No I/O here: the other report modules render this model.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from imgbench.measure.results import Comparison, Figures, ProtocolRun, compute_figures
from imgbench.measure.stats import MIN_REPETITIONS_TO_RESAMPLE, MIN_SAMPLES_PER_GROUP
from imgbench.report.verdicts import (
    BOOTSTRAP_CONFIDENCE,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    Verdict,
    verdicts,
)

RESULTS_JSON: Final = "results.json"


SAMPLES_CSV: Final = "samples.csv"


SUMMARY_MD: Final = "summary.md"


REPORT_HTML: Final = "report.html"


TRANSMISSION_PNG: Final = "transmission.png"


CDF_PNG: Final = "latency_cdf.png"


THROUGHPUT_PNG: Final = "throughput.png"


CPU_PNG: Final = "cpu.png"


SWEEP_MD: Final = "sweep.md"


SWEEP_PNG: Final = "sweep.png"


COMPARE_MD: Final = "compare.md"


COMPARE_HTML: Final = "compare.html"


COMPARE_PNG: Final = "compare_cdf.png"


__all__ = [
    "BOOTSTRAP_CONFIDENCE",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
]


class Outputs(list[Path]):
    """The files written, in order; ``notes`` says what was left out and why."""

    def __init__(self, paths: Iterable[Path] = (), notes: Iterable[str] = ()) -> None:
        super().__init__(paths)
        self.notes: list[str] = list(notes)
        #: The verdicts behind the files (of a comparison or of two runs).
        self.verdicts: list[Verdict] = []
        #: The JSON document of what was written (``--format json``): ``imgbench.runs/1``
        #: for two runs compared, ``imgbench.compare/1`` or ``.sweep/1`` for one run.
        self.document: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """A table of strings; the first column is a row header."""

    headers: list[str]
    rows: list[list[str]]
    #: Right-align the value columns (numbers); False left-aligns everything.
    numeric: bool = True

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        align = ["---"] + ["---:" if self.numeric else "---"] * (len(self.headers) - 1)
        return "\n".join([line(self.headers), line(align), *(line(r) for r in self.rows)])

    def html(self) -> str:
        cls = "" if self.numeric else ' class="text"'
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join(
            "<tr>"
            + f'<th scope="row">{html.escape(r[0])}</th>'
            + "".join(f"<td{cls}>{html.escape(c)}</td>" for c in r[1:])
            + "</tr>"
            for r in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _ms(seconds: float) -> str:
    """Milliseconds with at least 3 decimals and at least 3 significant digits."""
    if not math.isfinite(seconds):
        return str(seconds * 1e3)
    ms = seconds * 1e3
    decimals = 3 if ms == 0 else max(3, 2 - math.floor(math.log10(abs(ms))))
    return f"{ms:.{decimals}f}"


def _num(value: float, digits: int = 3) -> str:
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def _size(nbytes: float) -> str:
    """``16KiB``, ``1MiB``, ``1.5MiB``, ``700B``: binary units, exact when possible."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.3g}{unit}"
    return f"{nbytes:.0f}B"


def _cost(key: str, value: float) -> str:
    if key.endswith("_bytes") or key == "bytes_sent":
        return f"{value / 2**20:.2f} MiB"
    if key.endswith("_cpu_s"):
        return f"{value * 1e3:.1f} ms"
    if key.endswith("_ms_per_mb"):
        return f"{value:.2f} ms/MB"
    if key.endswith("_s"):
        return f"{value:.3f} s"
    return f"{value:.4g}"


@dataclass(frozen=True, slots=True)
class _LabelFigures:
    label: str
    protocol: str
    mode: str
    runs: list[ProtocolRun]
    pooled: Figures | None  # None when no run of the label has a measured sample
    per_run: list[Figures]

    @property
    def transmission_times(self) -> list[float]:
        return [s.transmission_s for r in self.runs for s in r.samples]

    @property
    def robust_throughput_mb_s(self) -> float:
        """Mean image bytes / median transmission time, in MB/s (10^6 B/s).

        The robust basis, like the verdict: one slow image moves it little,
        unlike ``Figures.throughput_mb_s`` (bytes / cumulative time).
        """
        samples = [s for r in self.runs for s in r.samples]
        if self.pooled is None or not samples:
            return math.nan
        median = self.pooled.transmission.p50
        mean_bytes = statistics.fmean(s.image_bytes for s in samples)
        return mean_bytes / median / 1e6 if median > 0 else math.inf


def _label_figures(comparison: Comparison) -> list[_LabelFigures]:
    out = []
    for label in comparison.labels():
        runs = [r for r in comparison.runs if r.label == label]
        samples = comparison.samples_for(label)
        out.append(
            _LabelFigures(
                label=label,
                protocol=runs[0].protocol,
                mode=runs[0].mode,
                runs=runs,
                pooled=compute_figures(samples) if samples else None,
                per_run=[compute_figures(r.samples) for r in runs if r.samples],
            )
        )
    return out


def _compression(runs: Sequence[ProtocolRun]) -> str:
    values = {r.compression for r in runs}
    return "mixed" if len(values) > 1 else ("on" if values.pop() else "off")


def _schedule(runs: Sequence[ProtocolRun]) -> str:
    kinds = {
        (r.delay_s, r.in_flight) for r in runs
    }  # normally one per comparison, shown per label anyway
    parts = [f"delay {d * 1e3:g} ms, in flight {k}" for d, k in sorted(kinds)]
    return "; ".join(parts)


def _aggregate_cost(key: str, runs: Sequence[ProtocolRun]) -> float | None:
    values = [r.costs[key] for r in runs if key in r.costs]
    if not values:
        return None
    return max(values) if "peak" in key else statistics.fmean(values)


#: Names of the cost keys the transmitter records; unknown keys show as they are.
COST_NAMES: Final[dict[str, str]] = {
    "transmitter_cpu_s": "transmitter CPU time",
    "receiver_cpu_s": "receiver CPU time",
    "transmitter_cpu_ms_per_mb": "transmitter CPU per MB sent",
    "receiver_cpu_ms_per_mb": "receiver CPU per MB sent",
    "transmitter_peak_rss_bytes": "transmitter peak RSS",
    "receiver_peak_rss_bytes": "receiver peak RSS",
    "bytes_sent": "bytes sent",
    "size_overhead": "size overhead (message / image bytes)",
}


def _cost_keys(runs: Iterable[ProtocolRun]) -> list[str]:
    """Known keys in :data:`COST_NAMES` order, then any others sorted."""
    present = {k for r in runs for k in r.costs}
    return [k for k in COST_NAMES if k in present] + sorted(present - COST_NAMES.keys())


def summary_table(comparison: Comparison) -> Table:
    """The side-by-side table: one column per ``protocol/mode``, one row per figure."""
    groups = _label_figures(comparison)
    rows: list[list[str]] = []

    def row(name: str, cells: Iterable[str]) -> None:
        rows.append([name, *cells])

    def fig_row(name: str, get: Any) -> None:
        row(name, (get(g.pooled) if g.pooled is not None else "n/a" for g in groups))

    row("protocol", (g.protocol for g in groups))
    row("mode", (g.mode for g in groups))
    row("compression", (_compression(g.runs) for g in groups))
    row("schedule", (_schedule(g.runs) for g in groups))
    row("repetitions", (str(len(g.runs)) for g in groups))
    fig_row("images measured (pooled)", lambda f: str(f.images))
    row(
        "warm-up images (excluded)",
        (str(sum(len(r.warmup_samples) for r in g.runs)) for g in groups),
    )
    for stat in ("min", "p50", "p90", "p99", "max", "mean", "stdev"):
        fig_row(f"transmission {stat} (ms)", lambda f, s=stat: _ms(getattr(f.transmission, s)))
    rows.extend(_clock_rows(groups))
    for stat in ("p50", "p90", "p99", "max"):
        fig_row(f"queue {stat} (ms)", lambda f, s=stat: _ms(getattr(f.queue, s)))
    for stat in ("min", "p50", "p90", "p99", "max", "mean"):
        fig_row(f"round trip {stat} (ms)", lambda f, s=stat: _ms(getattr(f.round_trip, s)))
    row(
        "total transfer, mean per repetition (s)",
        (
            _num(statistics.fmean(f.total_transfer_s for f in g.per_run)) if g.per_run else "n/a"
            for g in groups
        ),
    )
    row(
        "cumulative transmission, mean per repetition (ms)",
        (
            _ms(statistics.fmean(f.cumulative_transmission_s for f in g.per_run))
            if g.per_run
            else "n/a"
            for g in groups
        ),
    )
    row(
        "throughput, image bytes / median time (MB/s)",
        (_num(g.robust_throughput_mb_s, 2) if g.pooled else "n/a" for g in groups),
    )
    fig_row(
        "throughput, bytes / cumulative time (MB/s, outlier-sensitive)",
        lambda f: _num(f.throughput_mb_s, 2),
    )
    row(
        "image bytes (mean per image)",
        (
            _num(statistics.fmean(s.image_bytes for r in g.runs for s in r.samples), 0)
            if g.pooled
            else "n/a"
            for g in groups
        ),
    )
    row(
        "message bytes / image bytes",
        (_num(_overhead(g.runs), 4) if g.pooled else "n/a" for g in groups),
    )
    for key in _cost_keys(r for g in groups for r in g.runs):
        how = "max" if "peak" in key else "mean"
        cells = []
        for g in groups:
            value = _aggregate_cost(key, g.runs)
            cells.append("n/a" if value is None else _cost(key, value))
        row(f"{COST_NAMES.get(key, key)} ({how} per repetition)", cells)
    return Table(headers=["figure", *(g.label for g in groups)], rows=rows)


#: A clock bound above this share of the median transmission time gets a warning.
CLOCK_BOUND_WARN_SHARE: Final = 0.10


def _clock_status(runs: Sequence[ProtocolRun]) -> str:
    """``shared``, ``corrected``, ``uncorrected`` (also results before probes) or ``mixed``."""
    statuses = {r.clock.get("status", "uncorrected") for r in runs}
    return statuses.pop() if len(statuses) == 1 else "mixed"


def _clock_cells(runs: Sequence[ProtocolRun], key: str, scale: float, digits: int) -> str:
    """One value per repetition whose clock was corrected, "/"-separated; "-" when none."""
    values = [
        f"{r.clock[key] * scale:.{digits}f}"
        for r in runs
        if r.clock.get("status") == "corrected" and isinstance(r.clock.get(key), int | float)
    ]
    return " / ".join(values) or "-"


def _clock_rows(groups: Sequence[_LabelFigures]) -> list[list[str]]:
    """Rows: how the clocks relate, and per repetition the offset, its bound, the drift."""
    return [
        ["clock", *(_clock_status(g.runs) for g in groups)],
        ["clock offset (ms)", *(_clock_cells(g.runs, "offset_ns", 1e-6, 3) for g in groups)],
        ["clock bound (ms)", *(_clock_cells(g.runs, "bound_ns", 1e-6, 3) for g in groups)],
        ["clock drift (ppm)", *(_clock_cells(g.runs, "drift_ppm", 1.0, 2) for g in groups)],
        [
            "transmission bound, max (ms)",
            *(_ms(g.pooled.transmission_bound_s) if g.pooled else "n/a" for g in groups),
        ],
    ]


def clock_lines(comparison: Comparison) -> list[str]:
    """What the clocks mean for the figures, per ``protocol/mode``, warnings included.

    Shared: the figures are exact (one clock, not corrected). Corrected: offset,
    bound and drift of each repetition, and a warning when the largest bound of a
    transmission time exceeds 10 % of the median transmission time. Uncorrected:
    why, and that the figures only hold on one clock.
    """
    lines = []
    for g in _label_figures(comparison):
        status = _clock_status(g.runs)
        if status == "shared":
            lines.append(
                f"{g.label}: clocks shared (same kernel boot id, offset within its bound of"
                " zero): exact figures, not corrected"
            )
            continue
        if status != "corrected":
            whys = sorted(
                {str(r.clock.get("why", "no clock probes (older result)")) for r in g.runs}
            )
            lines.append(
                f"{g.label}: {status}: transmission times are raw receive minus send stamps,"
                f" meaningful only on one clock ({'; '.join(whys)})"
            )
            continue
        for r in g.runs:
            c = r.clock
            drift = c.get("drift_ppm")
            drift_text = (
                "drift not measured"
                if drift is None
                else f"drift {drift:.2f} ± {c.get('drift_bound_ppm') or 0:.2f} ppm"
            )
            lines.append(
                f"{g.label} (repetition {r.repetition}): clock offset"
                f" {c['offset_ns'] / 1e6:.3f} ms ± {c['bound_ns'] / 1e6:.3f} ms, {drift_text},"
                f" {c.get('n_probes', 0)} probes: transmission times corrected"
            )
        if g.pooled is not None and g.pooled.transmission.p50 > 0:
            share = g.pooled.transmission_bound_s / g.pooled.transmission.p50
            if share > CLOCK_BOUND_WARN_SHARE:
                lines.append(
                    f"WARNING {g.label}: the clock bound ({_ms(g.pooled.transmission_bound_s)} ms)"
                    f" is {share:.0%} of the median transmission time"
                    f" ({_ms(g.pooled.transmission.p50)} ms), above"
                    f" {CLOCK_BOUND_WARN_SHARE:.0%}: compare transmission times with care"
                    " (round-trip times are exact)"
                )
    return lines


def _overhead(runs: Sequence[ProtocolRun]) -> float:
    samples = [s for r in runs for s in r.samples]
    return sum(s.message_bytes for s in samples) / max(1, sum(s.image_bytes for s in samples))


def verdict_lines(comparison: Comparison) -> list[str]:
    """One sentence per pair of labels (see :mod:`imgbench.report.verdicts`)."""
    return [v.text for v in verdicts(comparison)]


def compact_table(comparison: Comparison) -> Table:
    """The figures that matter, one column per label: the answer's table.

    The three mission figures (each image's transmission time as median, p90
    and max; total transfer time; cumulative transmission time), throughput on
    the robust basis, CPU per MB and peak RSS. Row names stay short so two
    labels fit in 80 columns.
    """
    groups = _label_figures(comparison)
    rows: list[list[str]] = []

    def fig_row(name: str, get: Any) -> None:
        rows.append([name, *(get(g) if g.pooled is not None else "n/a" for g in groups)])

    fig_row("images measured", lambda g: f"{g.pooled.images} ({len(g.runs)} rep.)")
    for stat, name in (("p50", "median"), ("p90", "p90"), ("max", "max")):
        fig_row(
            f"transmission {name} (ms)",
            lambda g, s=stat: _ms(getattr(g.pooled.transmission, s)),
        )
    fig_row(
        "total transfer (s)",
        lambda g: _num(statistics.fmean(f.total_transfer_s for f in g.per_run)),
    )
    fig_row(
        "cumulative transmission (ms)",
        lambda g: _ms(statistics.fmean(f.cumulative_transmission_s for f in g.per_run)),
    )
    fig_row("throughput, median (MB/s)", lambda g: _num(g.robust_throughput_mb_s, 2))
    for key, name in (
        ("transmitter_cpu_ms_per_mb", "sender CPU (ms/MB)"),
        ("receiver_cpu_ms_per_mb", "receiver CPU (ms/MB)"),
        ("transmitter_peak_rss_bytes", "sender peak RSS (MiB)"),
        ("receiver_peak_rss_bytes", "receiver peak RSS (MiB)"),
    ):
        values = [_aggregate_cost(key, g.runs) for g in groups]
        if all(v is None for v in values):
            continue
        scale = 2**20 if key.endswith("_bytes") else 1.0
        rows.append(
            [
                name,
                *("n/a" if v is None else _num(v / scale, 1 if scale > 1 else 2) for v in values),
            ]
        )
    return Table(headers=["figure", *(g.label for g in groups)], rows=rows)


def _repetitions_table(comparison: Comparison) -> Table:
    rows = []
    for r in comparison.runs:
        f = r.figures() if r.samples else None
        rows.append(
            [
                r.label,
                str(r.repetition),
                str(r.position),
                "on" if r.compression else "off",
                str(len(r.samples)),
                _ms(f.transmission.p50) if f else "n/a",
                _ms(f.transmission.p99) if f else "n/a",
                _num(f.throughput_mb_s, 2) if f else "n/a",
                _num(f.total_transfer_s) if f else "n/a",
                r.started_at,
            ]
        )
    headers = [
        "label",
        "repetition",
        "position",
        "compression",
        "images",
        "transmission p50 (ms)",
        "transmission p99 (ms)",
        "throughput (MB/s)",
        "total transfer (s)",
        "started at",
    ]
    return Table(headers=headers, rows=rows)


def _flatten(data: Any, prefix: str = "") -> list[list[str]]:
    if isinstance(data, dict):
        rows: list[list[str]] = []
        for key, value in data.items():
            rows.extend(_flatten(value, f"{prefix}{key}."))
        return rows
    value = data if isinstance(data, str) else json.dumps(data)
    return [[prefix.rstrip("."), value]]


def _kv_table(data: dict[str, Any]) -> Table:
    return Table(headers=["key", "value"], rows=_flatten(data), numeric=False)


def _bootstrap_note() -> str:
    return (
        "The factor is the ratio of median transmission times; "
        f"{BOOTSTRAP_CONFIDENCE * 100:g}% two-sided percentile bootstrap interval, "
        f"seed {BOOTSTRAP_SEED}. No interval below n={MIN_SAMPLES_PER_GROUP} per group; "
        f"with {MIN_REPETITIONS_TO_RESAMPLE} or more repetitions whole repetitions are "
        "resampled, with fewer the samples are pooled and the per-repetition ratios shown. "
        "Each verdict states its method."
    )


def _image_bytes(comparison: Comparison) -> int:
    size = comparison.image.get("bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ValueError(f"comparison {comparison.run_id}: image['bytes'] is not a size: {size!r}")
    return size


def _flatten_pairs(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in _flatten(data)]

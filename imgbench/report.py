"""Outputs of a comparison: ``results.json``, ``samples.csv``, ``summary.md``,
``report.html`` and PNG plots; size-sweep outputs; a comparison of two saved runs.

Every figure comes from :mod:`imgbench.results` (definitions there) and
:mod:`imgbench.stats`; this module only arranges and draws them. Conventions:

* Times in the tables are in milliseconds, except total transfer and
  cumulative transmission time (seconds). Throughput is in MB/s (10^6 B/s).
* Repetitions of one ``protocol/mode`` label are **pooled** for the time
  summaries, the throughput and the bootstrap intervals. Total transfer and
  cumulative transmission time are computed per repetition (each run has its
  own message clock) and averaged. Costs are averaged over repetitions,
  except peaks (``*peak*`` keys), whose maximum is shown.
* The ratio of medians uses :func:`imgbench.stats.bootstrap_ratio_ci` with
  seed 0, so a regenerated report is byte-identical.
* One fixed colour per protocol everywhere (:data:`PROTOCOL_COLORS`); modes
  are told apart by line style (:data:`MODE_LINESTYLES`) and bar hatch
  (:data:`MODE_HATCHES`).

matplotlib is optional (``imgbench[report]``): it is imported lazily, with
the Agg canvas and no pyplot state. Without it, everything but the PNGs is
still written, ``report.html`` says why it has no plots, the returned
:class:`Outputs` carries a note, and a :class:`PlotsUnavailableWarning` is
issued.
"""

from __future__ import annotations

import base64
import csv
import html
import itertools
import json
import math
import statistics
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from imgbench.results import Comparison, Figures, ProtocolRun, Sample, compute_figures
from imgbench.stats import RatioCI, bootstrap_ratio_ci, verdict

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

__all__ = [
    "CSV_COLUMNS",
    "MODE_HATCHES",
    "MODE_LINESTYLES",
    "PROTOCOL_COLORS",
    "CsvSample",
    "Outputs",
    "PlotsUnavailableWarning",
    "Table",
    "compare_results",
    "load_samples_csv",
    "plots_available",
    "regenerate",
    "summary_markdown",
    "summary_table",
    "verdict_lines",
    "write_outputs",
    "write_sweep_outputs",
]

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

PROTOCOL_COLORS: Final[dict[str, str]] = {"websocket": "#1f77b4", "grpc": "#ff7f0e"}
OTHER_COLOR: Final = "#7f7f7f"
MODE_LINESTYLES: Final[dict[str, str]] = {
    "binary": "-",
    "unary": "-",
    "json": "--",
    "stream": "--",
}
MODE_HATCHES: Final[dict[str, str]] = {"binary": "", "unary": "", "json": "//", "stream": "//"}
#: Width of every PNG in pixels is ``PLOT_WIDTH_IN * PLOT_DPI``.
PLOT_WIDTH_IN: Final = 9.0
PLOT_DPI: Final = 100
#: Bootstrap settings of every verdict in the outputs.
BOOTSTRAP_RESAMPLES: Final = 10_000
BOOTSTRAP_CONFIDENCE: Final = 0.95
BOOTSTRAP_SEED: Final = 0

CSV_COLUMNS: Final = (
    "run_index",
    "label",
    "protocol",
    "mode",
    "compression",
    "repetition",
    "position",
    "warmup",
    "sequence",
    "scheduled_ns",
    "send_ns",
    "receive_ns",
    "ack_ns",
    "transmission_s",
    "queue_s",
    "round_trip_s",
    "image_bytes",
    "message_bytes",
    "checksum_ok",
)

NO_MATPLOTLIB: Final = "plots skipped: matplotlib is not installed (pip install 'imgbench[report]')"


class PlotsUnavailableWarning(UserWarning):
    """matplotlib is missing: outputs were written without plots."""


class Outputs(list[Path]):
    """The files written, in order; ``notes`` says what was left out and why."""

    def __init__(self, paths: Iterable[Path] = (), notes: Iterable[str] = ()) -> None:
        super().__init__(paths)
        self.notes: list[str] = list(notes)


def plots_available() -> bool:
    """Whether matplotlib can be imported (PNG plots will be drawn)."""
    return _canvas() is not None


# --------------------------------------------------------------------------
# Tables (one model, rendered as Markdown and HTML)
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Figures per label
# --------------------------------------------------------------------------


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
    fig_row("throughput (MB/s)", lambda f: _num(f.throughput_mb_s, 2))
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


def _overhead(runs: Sequence[ProtocolRun]) -> float:
    samples = [s for r in runs for s in r.samples]
    return sum(s.message_bytes for s in samples) / max(1, sum(s.image_bytes for s in samples))


def _ratio(a: Sequence[float], b: Sequence[float]) -> RatioCI:
    return bootstrap_ratio_ci(
        a,
        b,
        resamples=BOOTSTRAP_RESAMPLES,
        confidence=BOOTSTRAP_CONFIDENCE,
        seed=BOOTSTRAP_SEED,
    )


def verdict_lines(comparison: Comparison) -> list[str]:
    """One verdict per pair of labels on their median transmission time (pooled)."""
    groups = [g for g in _label_figures(comparison) if g.pooled is not None]
    lines = []
    for a, b in itertools.combinations(groups, 2):
        try:
            ci = _ratio(a.transmission_times, b.transmission_times)
        except ValueError as exc:  # e.g. zero times on a coarse clock
            lines.append(f"{a.label} vs {b.label}: no ratio ({exc})")
            continue
        lines.append(verdict(a.label, b.label, ci))
    return lines


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
        f"Percentile bootstrap, {BOOTSTRAP_RESAMPLES} resamples, "
        f"{BOOTSTRAP_CONFIDENCE * 100:g}% two-sided, seed {BOOTSTRAP_SEED}; "
        "repetitions pooled. The factor is the ratio of median transmission times."
    )


def _headline(comparison: Comparison) -> str:
    image = comparison.image
    size = image.get("bytes")
    size_text = f"{_size(size)} ({size} bytes)" if isinstance(size, int | float) else "?"
    return (
        f"Run `{comparison.run_id}`, created {comparison.created_at}. "
        f"Image: {image.get('name', '?')}, {size_text}."
    )


_DEFINITIONS: Final = (
    "Transmission time: receive-complete on the receiver minus the scheduled send start. "
    "Queue time: send start minus scheduled send start. Round trip: acknowledgement received "
    "minus send start, on the transmitter. Throughput: image bytes / cumulative transmission "
    "time. Warm-up images are excluded. Times in ms unless stated; repetitions pooled, "
    "except total transfer and cumulative transmission (mean per repetition)."
)


def summary_markdown(comparison: Comparison, verdicts: Sequence[str] | None = None) -> str:
    """``summary.md``: the side-by-side table, verdicts, repetitions, settings.

    ``verdicts`` defaults to :func:`verdict_lines` of ``comparison``.
    """
    if verdicts is None:
        verdicts = verdict_lines(comparison)
    parts = [
        f"# imgbench comparison {comparison.run_id}",
        _headline(comparison),
        "## Side by side",
        summary_table(comparison).markdown(),
        _DEFINITIONS,
        "## Ratio of median transmission times",
        "\n".join(f"- {line}" for line in verdicts) or "- (one label only)",
        _bootstrap_note(),
        "## Repetitions",
        _repetitions_table(comparison).markdown(),
        "## Settings",
        _kv_table(comparison.settings).markdown(),
        "## Image",
        _kv_table(comparison.image).markdown(),
        "## Versions",
        _kv_table(comparison.versions).markdown(),
        "## Host",
        _kv_table(comparison.host).markdown(),
    ]
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsvSample:
    """One row of ``samples.csv``: which run, and the raw sample."""

    run_index: int
    label: str
    protocol: str
    mode: str
    compression: bool
    repetition: int
    position: int
    warmup: bool
    sample: Sample


def _bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"not a boolean: {text!r}")
    return text == "true"


def write_samples_csv(comparison: Comparison, path: Path) -> None:
    """Every warm-up and measured sample, one per row (:data:`CSV_COLUMNS`).

    Times derived from the ns timestamps are written with ``repr`` so they
    read back as the same floats.
    """
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for index, run in enumerate(comparison.runs):
            tagged = [(True, s) for s in run.warmup_samples] + [(False, s) for s in run.samples]
            for warmup, s in tagged:
                writer.writerow(
                    [
                        index,
                        run.label,
                        run.protocol,
                        run.mode,
                        "true" if run.compression else "false",
                        run.repetition,
                        run.position,
                        "true" if warmup else "false",
                        s.sequence,
                        s.scheduled_ns,
                        s.send_ns,
                        s.receive_ns,
                        s.ack_ns,
                        repr(s.transmission_s),
                        repr(s.queue_s),
                        repr(s.round_trip_s),
                        s.image_bytes,
                        s.message_bytes,
                        "true" if s.checksum_ok else "false",
                    ]
                )


def load_samples_csv(path: Path) -> list[CsvSample]:
    """Read ``samples.csv`` back, in file order (derived time columns ignored)."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise ValueError(f"{path}: unexpected columns {reader.fieldnames}")
        return [
            CsvSample(
                run_index=int(row["run_index"]),
                label=row["label"],
                protocol=row["protocol"],
                mode=row["mode"],
                compression=_bool(row["compression"]),
                repetition=int(row["repetition"]),
                position=int(row["position"]),
                warmup=_bool(row["warmup"]),
                sample=Sample(
                    sequence=int(row["sequence"]),
                    scheduled_ns=int(row["scheduled_ns"]),
                    send_ns=int(row["send_ns"]),
                    receive_ns=int(row["receive_ns"]),
                    ack_ns=int(row["ack_ns"]),
                    image_bytes=int(row["image_bytes"]),
                    message_bytes=int(row["message_bytes"]),
                    checksum_ok=_bool(row["checksum_ok"]),
                ),
            )
            for row in reader
        ]


# --------------------------------------------------------------------------
# Plots (matplotlib, lazily; Agg canvas, no pyplot)
# --------------------------------------------------------------------------


def _canvas() -> Any | None:
    """The Agg canvas class, or None without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        return None
    return FigureCanvasAgg


def _figure(
    height_in: float, nrows: int = 1, ncols: int = 1, *, share: bool = False
) -> tuple[Figure, list[Axes]]:
    """A figure ``PLOT_WIDTH_IN`` wide on an Agg canvas, and its axes in row order."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(PLOT_WIDTH_IN, height_in), dpi=PLOT_DPI, layout="constrained")
    canvas = _canvas()
    assert canvas is not None
    canvas(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=share, sharey=share)
    return fig, [ax for line in axes for ax in line]


def _log(ax: Axes, which: str) -> None:
    """Log scale on ``which`` ("x"/"y") labelled 0.1, 0.2, 0.5, 1, 2, 5, ... in plain numbers."""
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _pos: int | None) -> str:
        if value <= 0:
            return ""
        mantissa = round(value / 10 ** math.floor(math.log10(value) + 1e-9), 6)
        return f"{value:g}" if mantissa in (1.0, 2.0, 5.0) else ""

    if which == "x":
        ax.set_xscale("log")
        axis: Axis = ax.xaxis
    else:
        ax.set_yscale("log")
        axis = ax.yaxis
    axis.set_major_formatter(FuncFormatter(label))
    axis.set_minor_formatter(FuncFormatter(label))


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=PLOT_DPI, metadata={"Software": "imgbench"})
    return path


def _color(protocol: str) -> str:
    return PROTOCOL_COLORS.get(protocol, OTHER_COLOR)


def _linestyle(mode: str) -> str:
    return MODE_LINESTYLES.get(mode, ":")


def _hatch(mode: str) -> str:
    return MODE_HATCHES.get(mode, "..")


def _positive(values: Iterable[float]) -> bool:
    return all(v > 0 for v in values)


def _plot_transmission(groups: Sequence[_LabelFigures], path: Path) -> Path:
    """Per-image transmission time by sequence, one panel per label, shared axes."""
    n = len(groups)
    fig, axes = _figure(1.0 + 1.8 * n, nrows=n, share=True)
    fig.suptitle("Transmission time per image (warm-up images as x, excluded from figures)")
    all_times = [s.transmission_s * 1e3 for g in groups for r in g.runs for s in r.samples]
    log = bool(all_times) and _positive(all_times) and max(all_times) / min(all_times) > 20
    for ax, g in zip(axes, groups, strict=True):
        color, style = _color(g.protocol), _linestyle(g.mode)
        for r in g.runs:
            xs = [s.sequence for s in r.samples]
            ys = [s.transmission_s * 1e3 for s in r.samples]
            ax.plot(xs, ys, color=color, linestyle=style, linewidth=0.8, marker=".", ms=3,
                    alpha=0.8, label=f"repetition {r.repetition}")  # fmt: skip
            if r.warmup_samples:
                ax.plot(
                    [s.sequence for s in r.warmup_samples],
                    [s.transmission_s * 1e3 for s in r.warmup_samples],
                    linestyle="none",
                    marker="x",
                    color=color,
                )
        ax.set_title(g.label, loc="left", fontsize="medium", color=color)
        ax.set_ylabel("ms")
        if log:
            _log(ax, "y")
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("image sequence number")
    return _save(fig, path)


def _ecdf(ax: Axes, values: Sequence[float], **style: Any) -> None:
    xs = sorted(values)
    n = len(xs)
    ax.step(xs, [(i + 1) / n for i in range(n)], where="post", **style)


def _plot_cdf(groups: Sequence[_LabelFigures], path: Path) -> Path:
    """ECDFs of transmission and round-trip time, all labels overlaid."""
    fig, (ax_t, ax_r) = _figure(4.5, ncols=2)
    for ax, attr, title in (
        (ax_t, "transmission_s", "Transmission time"),
        (ax_r, "round_trip_s", "Round trip (transmitter)"),
    ):
        everything: list[float] = []
        for g in groups:
            values = [getattr(s, attr) * 1e3 for r in g.runs for s in r.samples]
            if not values:
                continue
            everything += values
            _ecdf(ax, values, color=_color(g.protocol), linestyle=_linestyle(g.mode), label=g.label)
        if everything and _positive(everything):
            _log(ax, "x")
        ax.set_title(title)
        ax.set_xlabel("ms (log scale)" if ax.get_xscale() == "log" else "ms")
        ax.set_ylabel("fraction of images ≤ x")
        ax.set_ylim(0, 1.01)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
    return _save(fig, path)


def _bars(ax: Axes, groups: Sequence[_LabelFigures], values: Sequence[float], **extra: Any) -> None:
    xs = list(range(len(groups)))
    bars = ax.bar(
        xs,
        values,
        color=[_color(g.protocol) for g in groups],
        hatch=[_hatch(g.mode) for g in groups],
        edgecolor="black",
        linewidth=0.6,
        **extra,
    )
    ax.bar_label(bars, fmt="%.2f", fontsize="small")
    ax.set_xticks(xs, [g.label for g in groups])
    ax.grid(True, axis="y", alpha=0.3)


def _plot_throughput(groups: Sequence[_LabelFigures], path: Path) -> Path:
    """Pooled throughput per label; dots are the repetitions."""
    groups = [g for g in groups if g.pooled is not None and math.isfinite(g.pooled.throughput_mb_s)]
    fig, (ax,) = _figure(4.5)
    _bars(ax, groups, [g.pooled.throughput_mb_s for g in groups if g.pooled is not None])
    for x, g in enumerate(groups):
        reps = [f.throughput_mb_s for f in g.per_run if math.isfinite(f.throughput_mb_s)]
        ax.plot([x] * len(reps), reps, linestyle="none", marker="o", color="black", ms=4)
    ax.set_ylabel("MB/s (10^6 bytes per second)")
    ax.set_title("Throughput: image bytes / cumulative transmission time (dots: repetitions)")
    return _save(fig, path)


CPU_KEYS: Final = ("transmitter_cpu_s", "receiver_cpu_s")
CPU_PER_MB_KEYS: Final = ("transmitter_cpu_ms_per_mb", "receiver_cpu_ms_per_mb")


def _has_cpu(groups: Sequence[_LabelFigures]) -> bool:
    return any(k in r.costs for g in groups for r in g.runs for k in CPU_KEYS)


def _plot_cpu(groups: Sequence[_LabelFigures], path: Path) -> Path:
    """CPU time per repetition (mean) of each side; CPU ms per MB when recorded."""
    per_mb = any(k in r.costs for g in groups for r in g.runs for k in CPU_PER_MB_KEYS)
    fig, axes = _figure(4.5, ncols=2 if per_mb else 1)
    panels: list[tuple[Axes, tuple[str, str], float, str]] = [
        (axes[0], CPU_KEYS, 1e3, "CPU time per repetition (ms, mean)")
    ]
    if per_mb:
        panels.append((axes[1], CPU_PER_MB_KEYS, 1.0, "CPU ms per MB sent (mean)"))
    width = 0.38
    for ax, keys, scale, title in panels:
        for offset, key, alpha in ((-width / 2, keys[0], 1.0), (width / 2, keys[1], 0.45)):
            xs = [i + offset for i in range(len(groups))]
            vals = [(_aggregate_cost(key, g.runs) or 0.0) * scale for g in groups]
            bars = ax.bar(
                xs,
                vals,
                width,
                color=[_color(g.protocol) for g in groups],
                hatch=[_hatch(g.mode) for g in groups],
                alpha=alpha,
                edgecolor="black",
                linewidth=0.6,
            )
            ax.bar_label(bars, fmt="%.1f", fontsize="x-small")
        ax.set_xticks(range(len(groups)), [g.label for g in groups], fontsize="small")
        ax.set_title(f"{title}\nleft: transmitter (solid), right: receiver (light)")
        ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def _plots(groups: Sequence[_LabelFigures], out_dir: Path) -> list[Path]:
    measured = [g for g in groups if g.pooled is not None]
    if not measured:
        return []
    paths = [
        _plot_transmission(measured, out_dir / TRANSMISSION_PNG),
        _plot_cdf(measured, out_dir / CDF_PNG),
        _plot_throughput(measured, out_dir / THROUGHPUT_PNG),
    ]
    if _has_cpu(measured):
        paths.append(_plot_cpu(measured, out_dir / CPU_PNG))
    return paths


# --------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------


def _draw(draw: Any, *args: Any) -> tuple[list[Path], list[str]]:
    """Run a plotting function unless matplotlib is missing."""
    if _canvas() is None:
        warnings.warn(NO_MATPLOTLIB, PlotsUnavailableWarning, stacklevel=3)
        return [], [NO_MATPLOTLIB]
    paths: list[Path] = draw(*args)
    return paths, []


def write_outputs(comparison: Comparison, out_dir: Path, *, save_json: bool = True) -> Outputs:
    """Write every output of ``comparison`` into ``out_dir`` (created if needed).

    ``results.json`` (unless ``save_json`` is false), ``samples.csv``,
    ``summary.md``, the PNG plots and ``report.html`` (plots embedded, so the
    file stands alone). Other files in ``out_dir`` are left alone. Returns the
    paths written; without matplotlib the PNGs are missing and
    ``Outputs.notes`` says so.
    """
    return _write_outputs(comparison, out_dir, save_json, verdict_lines(comparison))


def _write_outputs(
    comparison: Comparison, out_dir: Path, save_json: bool, verdicts: Sequence[str]
) -> Outputs:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = Outputs()
    if save_json:
        comparison.save(out_dir / RESULTS_JSON)
        written.append(out_dir / RESULTS_JSON)
    write_samples_csv(comparison, out_dir / SAMPLES_CSV)
    written.append(out_dir / SAMPLES_CSV)
    (out_dir / SUMMARY_MD).write_text(summary_markdown(comparison, verdicts), encoding="utf-8")
    written.append(out_dir / SUMMARY_MD)
    pngs, notes = _draw(_plots, _label_figures(comparison), out_dir)
    written.extend(pngs)
    written.notes.extend(notes)
    (out_dir / REPORT_HTML).write_text(
        _report_html(comparison, verdicts, pngs, notes), encoding="utf-8"
    )
    written.append(out_dir / REPORT_HTML)
    return written


# --------------------------------------------------------------------------
# Size sweep
# --------------------------------------------------------------------------


def _image_bytes(comparison: Comparison) -> int:
    size = comparison.image.get("bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ValueError(f"comparison {comparison.run_id}: image['bytes'] is not a size: {size!r}")
    return size


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


def _plot_sweep(comparisons: Sequence[Comparison], labels: Sequence[str], path: Path) -> list[Path]:
    fig, (ax_t, ax_b) = _figure(4.5, ncols=2)
    sizes = [_image_bytes(c) for c in comparisons]
    for label in labels:
        points = []
        for size, c in zip(sizes, comparisons, strict=True):
            samples = c.samples_for(label)
            if samples:
                f = compute_figures(samples)
                points.append((size, f.transmission.p50 * 1e3, f.throughput_mb_s))
        if not points:
            continue
        protocol, _, mode = label.partition("/")
        style: dict[str, Any] = {
            "color": _color(protocol),
            "linestyle": _linestyle(mode),
            "marker": "o",
        }
        xs = [p[0] for p in points]
        ax_t.plot(xs, [p[1] for p in points], label=label, **style)
        finite = [(x, p[2]) for x, p in zip(xs, points, strict=True) if math.isfinite(p[2])]
        ax_b.plot([x for x, _ in finite], [y for _, y in finite], label=label, **style)
    for ax, title, ylabel in (
        (ax_t, "Median transmission time", "ms (log scale)"),
        (ax_b, "Throughput", "MB/s"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [_size(s) for s in sizes], fontsize="small")
        ax.minorticks_off()
        ax.set_xlabel("image size")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    _log(ax_t, "y")
    ax_b.set_ylim(bottom=0)
    return [_save(fig, path)]


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


# --------------------------------------------------------------------------
# Saved results: regenerate, compare two runs
# --------------------------------------------------------------------------


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


def _relative(path: Path, start: Path) -> str:
    try:
        return path.relative_to(start).as_posix()
    except ValueError:
        return path.resolve().as_uri()


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


def _flatten_pairs(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in _flatten(data)]


def _plot_compare(a: Comparison, b: Comparison, labels: Sequence[str], path: Path) -> list[Path]:
    ncols = min(2, len(labels))
    nrows = math.ceil(len(labels) / ncols)
    fig, axes = _figure(0.5 + 3.0 * nrows, nrows=nrows, ncols=ncols)
    for ax, label in zip(axes, labels, strict=False):
        protocol, _, _ = label.partition("/")
        color = _color(protocol)
        values: list[float] = []
        for run, style, name in ((a, "-", "A"), (b, "--", "B")):
            times = [s.transmission_s * 1e3 for s in run.samples_for(label)]
            values += times
            _ecdf(ax, times, color=color, linestyle=style, label=f"{name}: {run.run_id}")
        if _positive(values):
            _log(ax, "x")
        ax.set_title(label, color=color)
        ax.set_xlabel("transmission time (ms)")
        ax.set_ylabel("fraction ≤ x")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
    for ax in axes[len(labels) :]:
        ax.set_visible(False)
    return [_save(fig, path)]


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

"""PNG plots of a report (matplotlib, lazily; Agg canvas, no pyplot state).

matplotlib is optional (``imgbench[report]``). Without it, :func:`_draw`
draws nothing, returns a note saying why and issues a
:class:`PlotsUnavailableWarning`; everything but the PNGs is still written.
One fixed colour per protocol everywhere (:data:`PROTOCOL_COLORS`); modes are
told apart by line style (:data:`MODE_LINESTYLES`) and bar hatch
(:data:`MODE_HATCHES`).
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from imgbench.measure.results import Comparison
from imgbench.measure.stats import MIN_SAMPLES_PER_GROUP, bootstrap_median_ci
from imgbench.report.model import (
    CDF_PNG,
    CPU_PNG,
    THROUGHPUT_PNG,
    TRANSMISSION_PNG,
    _aggregate_cost,
    _image_bytes,
    _LabelFigures,
    _size,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure


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


NO_MATPLOTLIB: Final = "plots skipped: matplotlib is not installed (pip install 'imgbench[report]')"


class PlotsUnavailableWarning(UserWarning):
    """matplotlib is missing: outputs were written without plots."""


def plots_available() -> bool:
    """Whether matplotlib can be imported (PNG plots will be drawn)."""
    return _canvas() is not None


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
    """Log scale on ``which`` ("x"/"y") with enough plain-number tick labels.

    Over several decades 1, 2, 5 x 10^k are labelled; over one or two decades
    also 3; within one decade every tick (1-9 x 10^k), so a narrow range never
    shows only one or two labels. Decided at draw time, from the final limits.
    """
    from matplotlib.ticker import FuncFormatter

    if which == "x":
        ax.set_xscale("log")
        axis: Axis = ax.xaxis
    else:
        ax.set_yscale("log")
        axis = ax.yaxis

    def label(value: float, _pos: int | None) -> str:
        if value <= 0:
            return ""
        low, high = sorted(axis.get_view_interval())
        span = math.log10(high / low) if low > 0 else 99.0
        shown = (1.0, 2.0, 5.0) if span > 2 else (1.0, 2.0, 3.0, 5.0) if span > 1 else None
        mantissa = round(value / 10 ** math.floor(math.log10(value) + 1e-9), 6)
        if shown is None:
            return f"{value:g}" if mantissa == int(mantissa) else ""
        return f"{value:g}" if mantissa in shown else ""

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


def _draw(draw: Any, *args: Any) -> tuple[list[Path], list[str]]:
    """Run a plotting function unless matplotlib is missing."""
    if _canvas() is None:
        warnings.warn(NO_MATPLOTLIB, PlotsUnavailableWarning, stacklevel=3)
        return [], [NO_MATPLOTLIB]
    paths: list[Path] = draw(*args)
    return paths, []


def _plot_sweep(comparisons: Sequence[Comparison], labels: Sequence[str], path: Path) -> list[Path]:
    """Median transmission time and throughput (median basis) against image size.

    Error bars are the 95 % percentile-bootstrap interval of the median (and the
    matching throughput interval, bytes / median); none below
    ``MIN_SAMPLES_PER_GROUP`` images, as for the verdicts.
    """
    fig, (ax_t, ax_b) = _figure(4.5, ncols=2)
    sizes = [_image_bytes(c) for c in comparisons]
    for label in labels:
        points = []
        for size, c in zip(sizes, comparisons, strict=True):
            times = [s.transmission_s for s in c.samples_for(label)]
            if not times:
                continue
            med = statistics.median(times)
            low, high = med, med
            if len(times) >= MIN_SAMPLES_PER_GROUP:
                low, high = bootstrap_median_ci(times, resamples=2_000)
            mean_bytes = statistics.fmean(s.image_bytes for s in c.samples_for(label))
            points.append((size, med, low, high, mean_bytes))
        if not points:
            continue
        protocol, _, mode = label.partition("/")
        style: dict[str, Any] = {
            "color": _color(protocol),
            "linestyle": _linestyle(mode),
            "marker": "o",
            "capsize": 3,
        }
        xs = [p[0] for p in points]
        med_ms = [p[1] * 1e3 for p in points]
        ax_t.errorbar(
            xs,
            med_ms,
            yerr=[[m - p[2] * 1e3 for m, p in zip(med_ms, points, strict=True)],
                  [p[3] * 1e3 - m for m, p in zip(med_ms, points, strict=True)]],
            label=label,
            **style,
        )  # fmt: skip
        rates = [(x, p[4] / p[1] / 1e6, p[4] / p[3] / 1e6, p[4] / p[2] / 1e6)
                 for x, p in zip(xs, points, strict=True) if p[1] > 0 and p[2] > 0]  # fmt: skip
        ax_b.errorbar(
            [r[0] for r in rates],
            [r[1] for r in rates],
            yerr=[[r[1] - r[2] for r in rates], [r[3] - r[1] for r in rates]],
            label=label,
            **style,
        )
    for ax, title, ylabel in (
        (ax_t, "Median transmission time (95% CI)", "ms (log scale)"),
        (ax_b, "Throughput, image bytes / median time (95% CI)", "MB/s"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [_size(s) for s in sizes], fontsize="small")
        ax.minorticks_off()
        ax.set_xlabel("image size")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize="medium")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    _log(ax_t, "y")
    ax_t.minorticks_on()
    ax_b.set_ylim(bottom=0)
    return [_save(fig, path)]


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

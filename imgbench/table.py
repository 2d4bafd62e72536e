"""The side-by-side terminal table of a comparison (rich)."""

from __future__ import annotations

from collections.abc import Callable

from rich.table import Table

from imgbench.results import Comparison, Figures, ProtocolRun, compute_figures

Row = tuple[str, Callable[[Figures, ProtocolRun], str]]


def _ms(value: float) -> str:
    return f"{value * 1000:.3f} ms"


ROWS: list[Row] = [
    ("images (measured)", lambda f, r: str(f.images)),
    ("total transfer time (incl. delays)", lambda f, r: f"{f.total_transfer_s:.3f} s"),
    ("cumulative transmission time", lambda f, r: _ms(f.cumulative_transmission_s)),
    ("transmission min", lambda f, r: _ms(f.transmission.min)),
    ("transmission median", lambda f, r: _ms(f.transmission.p50)),
    ("transmission p90", lambda f, r: _ms(f.transmission.p90)),
    ("transmission max", lambda f, r: _ms(f.transmission.max)),
    ("transmission mean", lambda f, r: _ms(f.transmission.mean)),
    ("transmission stdev", lambda f, r: _ms(f.transmission.stdev)),
    ("throughput", lambda f, r: f"{f.throughput_mb_s:.1f} MB/s"),
    ("round trip median (transmitter)", lambda f, r: _ms(f.round_trip.p50)),
    ("round trip max (transmitter)", lambda f, r: _ms(f.round_trip.max)),
    ("queue time median", lambda f, r: _ms(f.queue.p50)),
    (
        "message bytes / image bytes",
        lambda f, r: (
            f"{r.message_bytes} / {r.image_bytes} ({r.message_bytes / r.image_bytes:.4f}x)"
        ),
    ),
    ("transmitter CPU", lambda f, r: _cost(r, "transmitter_cpu_s", 1000, "ms")),
    ("receiver CPU", lambda f, r: _cost(r, "receiver_cpu_s", 1000, "ms")),
    ("receiver peak RSS", lambda f, r: _cost(r, "receiver_peak_rss_bytes", 2**-20, "MiB")),
]


def _cost(run: ProtocolRun, key: str, scale: float, unit: str) -> str:
    value = run.costs.get(key)
    return "n/a" if value is None else f"{value * scale:.1f} {unit}"


def pooled(comparison: Comparison, label: str) -> tuple[Figures, ProtocolRun]:
    """Figures over every repetition of ``label`` (costs and sizes of its first run)."""
    first = next(r for r in comparison.runs if r.label == label)
    return compute_figures(comparison.samples_for(label)), first


def comparison_table(comparison: Comparison) -> Table:
    """One column per protocol/mode, one row per figure."""
    labels = comparison.labels()
    title = (
        f"imgbench {comparison.run_id}: {comparison.image.get('bytes')} B image,"
        f" repeat {comparison.settings.get('repeat', 1)}"
    )
    table = Table(title=title)
    table.add_column("figure", no_wrap=True)
    for label in labels:
        table.add_column(label, justify="right")
    columns = [pooled(comparison, label) for label in labels]
    for name, cell in ROWS:
        table.add_row(name, *(cell(f, r) for f, r in columns))
    return table


def settings_line(comparison: Comparison) -> str:
    s = comparison.settings
    return (
        f"settings: images={s['images']} delay={s['delay']}s warmup={s['warmup']}"
        f" in_flight={s['in_flight']} repeat={s['repeat']} compression={s['compression']}"
        f" max_message_bytes={s['max_message_bytes']} ws_mode={s['ws_mode']}"
        f" grpc_mode={s['grpc_mode']} | image: {comparison.image.get('name')}"
        f" | websockets {comparison.versions.get('websockets')},"
        f" grpcio {comparison.versions.get('grpcio')},"
        f" protobuf {comparison.versions.get('protobuf')}"
    )

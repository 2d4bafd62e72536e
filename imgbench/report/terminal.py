"""The side-by-side terminal table of a comparison (rich).

The rows are :func:`imgbench.report.summary_table`'s, the same ones
``summary.md`` and ``report.html`` show, so the terminal and the saved report
can never disagree.
"""

from __future__ import annotations

from rich.table import Table

from imgbench.measure.results import Comparison
from imgbench.report import summary_table


def comparison_table(comparison: Comparison) -> Table:
    """One column per protocol/mode, one row per figure."""
    summary = summary_table(comparison)
    title = (
        f"imgbench {comparison.run_id}: {comparison.image.get('bytes')} B image,"
        f" repeat {comparison.settings.get('repeat', 1)}"
    )
    table = Table(title=title)
    table.add_column(summary.headers[0])
    for header in summary.headers[1:]:
        table.add_column(header, justify="right", no_wrap=True)
    for row in summary.rows:
        table.add_row(*row)
    return table


def settings_line(comparison: Comparison) -> str:
    s = comparison.settings
    return (
        f"settings: direction={s.get('direction', 'upload')}"
        f" images={s['images']} delay={s['delay']}s warmup={s['warmup']}"
        f" in_flight={s['in_flight']} repeat={s['repeat']} compression={s['compression']}"
        f" max_message_bytes={s['max_message_bytes']} ws_mode={s['ws_mode']}"
        f" grpc_mode={s['grpc_mode']} | image: {comparison.image.get('name')}"
        f" | websockets {comparison.versions.get('websockets')},"
        f" grpcio {comparison.versions.get('grpcio')},"
        f" protobuf {comparison.versions.get('protobuf')}"
    )

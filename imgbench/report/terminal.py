"""The side-by-side terminal table of a comparison (rich).

The rows are :func:`imgbench.report.summary_table`'s, the same ones
``summary.md`` and ``report.html`` show, so the terminal and the saved report
can never disagree.
"""

from __future__ import annotations

from typing import Any

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


def _transport(s: dict[str, Any]) -> str:
    """The transport settings, where the result has them (older results do not)."""
    if "grpc_bdp_probe" not in s:
        return ""
    text = (
        f" grpc_bdp_probe={s['grpc_bdp_probe']}"
        f" grpc_lookahead_bytes={s['grpc_lookahead_bytes'] or 'default'}"
        f" grpc_max_frame_size={s['grpc_max_frame_size'] or 'default'}"
        f" ws_write_limit={s['ws_write_limit']} ws_max_queue={s['ws_max_queue']}"
    )
    return text


def _link(comparison: Comparison) -> str:
    link = comparison.link
    if not link:
        return ""
    tcp = link.get("tcp", {}).get("slow_start_after_idle", {})
    ssai = f"a={tcp.get('a')} b={tcp.get('b')}"
    return f" | link {link.get('spec')} (tcp_slow_start_after_idle {ssai})"


def settings_line(comparison: Comparison) -> str:
    s = comparison.settings
    return (
        f"settings: direction={s.get('direction', 'upload')}"
        f" images={s['images']} delay={s['delay']}s warmup={s['warmup']}"
        f" in_flight={s['in_flight']} repeat={s['repeat']} compression={s['compression']}"
        f" max_message_bytes={s['max_message_bytes']} ws_mode={s['ws_mode']}"
        f" grpc_mode={s['grpc_mode']}{_transport(s)}{_link(comparison)}"
        f" | image: {comparison.image.get('name')}"
        f" | websockets {comparison.versions.get('websockets')},"
        f" grpcio {comparison.versions.get('grpcio')},"
        f" protobuf {comparison.versions.get('protobuf')}"
    )

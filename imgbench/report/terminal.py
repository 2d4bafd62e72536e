"""The terminal view of a comparison (rich): the answer first.

Order: the headline (one plain sentence per pair of labels: which is faster,
by how much, with the interval, and the two medians), each verdict's method,
then the compact table (:func:`imgbench.report.model.compact_table`); the full
table (:func:`imgbench.report.summary_table`, the rows ``summary.md`` and
``report.html`` show) only with ``details``. Row names are short and value
columns never wrap, so two labels fit in 80 columns, also when piped.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from imgbench.measure.results import Comparison
from imgbench.report.model import Table as StringTable
from imgbench.report.model import compact_table, summary_table
from imgbench.report.verdicts import headline, verdicts


def _rich(table: StringTable, title: str | None = None) -> Table:
    out = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    out.add_column(table.headers[0], overflow="fold")
    for header in table.headers[1:]:
        out.add_column(header, justify="right", no_wrap=True)
    for row in table.rows:
        out.add_row(*row)
    return out


def headline_text(comparison: Comparison) -> Text:
    """The verdicts in plain words, each followed by its method (dim)."""
    text = Text()
    found = verdicts(comparison)
    if not found:
        text.append("one label only: nothing to compare\n", style="bold")
    for v in found:
        style = "bold green" if v.faster else "bold"
        text.append(headline(v) + "\n", style=style)
        text.append(f"  method: {v.method}\n", style="dim")
    return text


def comparison_view(comparison: Comparison, *, details: bool = False) -> RenderableType:
    """Headline, compact table, and with ``details`` the full table."""
    title = (
        f"imgbench {comparison.run_id}: {comparison.image.get('bytes')} B image,"
        f" repeat {comparison.settings.get('repeat', 1)}"
    )
    parts: list[RenderableType] = [
        headline_text(comparison),
        _rich(compact_table(comparison), title),
    ]
    if details:
        parts.append(_rich(summary_table(comparison), "all figures"))
    else:
        parts.append(Text("(all figures: --details, or summary.md)", style="dim"))
    return Group(*parts)


def comparison_table(comparison: Comparison) -> Table:
    """The full table: one column per protocol/mode, one row per figure."""
    return _rich(summary_table(comparison), f"imgbench {comparison.run_id}")


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

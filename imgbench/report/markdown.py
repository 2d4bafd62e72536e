"""``summary.md``: the summary table, verdicts, definitions, in Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from imgbench.measure.results import Comparison
from imgbench.report.model import (
    _bootstrap_note,
    _kv_table,
    _repetitions_table,
    _size,
    clock_lines,
    compact_table,
    summary_table,
)
from imgbench.report.verdicts import Verdict, headline, verdicts


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
    "minus send start, on the transmitter. Throughput: mean image bytes / median transmission "
    "time (robust, as the verdict); the outlier-sensitive basis, image bytes / cumulative "
    "transmission time, is in the full table. Warm-up images are excluded. Times in ms "
    "unless stated; repetitions pooled, "
    "except total transfer and cumulative transmission (mean per repetition)."
)


_CLOCK_NOTE: Final = (
    "Across hosts the receiver's clock is offset from the transmitter's: transmission times "
    "are corrected with the offset measured by NTP-style probes on the same connection, and "
    "each carries a bound (the true value lies within it). Shared clock: exact, uncorrected. "
    "Round-trip times read one clock and are never corrected."
)


def summary_markdown(comparison: Comparison, found: Sequence[Verdict] | None = None) -> str:
    """``summary.md``, the answer first: verdicts with their method, the compact
    table, then the full table, definitions, repetitions, settings.

    ``found`` defaults to :func:`imgbench.report.verdicts.verdicts` of ``comparison``.
    """
    if found is None:
        found = verdicts(comparison)
    lines = [f"- **{headline(v)}**\n  method: {v.method}" for v in found]
    parts = [
        f"# imgbench comparison {comparison.run_id}",
        "\n".join(lines) or "- (one label only)",
        _bootstrap_note(),
        "## The figures that matter",
        compact_table(comparison).markdown(),
        _headline(comparison),
        "## All figures",
        summary_table(comparison).markdown(),
        _DEFINITIONS,
        "## Clocks",
        "\n".join(f"- {line}" for line in clock_lines(comparison)) or "- (no runs)",
        _CLOCK_NOTE,
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

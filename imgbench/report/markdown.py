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
    summary_table,
    verdict_lines,
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


_CLOCK_NOTE: Final = (
    "Across hosts the receiver's clock is offset from the transmitter's: transmission times "
    "are corrected with the offset measured by NTP-style probes on the same connection, and "
    "each carries a bound (the true value lies within it). Shared clock: exact, uncorrected. "
    "Round-trip times read one clock and are never corrected."
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
        "## Clocks",
        "\n".join(f"- {line}" for line in clock_lines(comparison)) or "- (no runs)",
        _CLOCK_NOTE,
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

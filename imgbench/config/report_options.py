"""How ``compare`` and ``sweep`` report: the stdout format, pass/fail thresholds, details.

Not part of the measured workload: :class:`~imgbench.config.settings.ReportSettings`
reads its defaults from :data:`REPORT_OPTIONS`; the threshold grammar is
:mod:`imgbench.config.thresholds`.
"""

from __future__ import annotations

from typing import Final

from imgbench.config.option import Option, choice, parse_bool
from imgbench.config.thresholds import parse_thresholds

FORMAT: Final = Option(
    "format",
    "IMGBENCH_FORMAT",
    "--format",
    choice("text", "json"),
    "text",
    "stdout: text (headline and tables) or json (one JSON document, see"
    " schemas/compare.schema.json; progress and logs go to stderr).",
)

REPORT_OPTIONS: Final = (
    FORMAT,
    Option(
        "thresholds",
        "IMGBENCH_THRESHOLDS",
        "--threshold",
        parse_thresholds,
        (),
        "Check after the run, e.g. websocket/binary:p90<5ms or grpc:ratio<1.2 (repeatable;"
        " comma separated in the env var; grammar in README). Exit 99 when one fails.",
        multiple=True,
    ),
    Option(
        "details",
        "IMGBENCH_DETAILS",
        "--details",
        parse_bool,
        False,
        "Text format: also print the full table of figures (always in summary.md and report.html).",
    ),
)

#: What ``imgbench report`` reads (thresholds and details belong to a run).
SAVED_REPORT_OPTIONS: Final = (FORMAT,)

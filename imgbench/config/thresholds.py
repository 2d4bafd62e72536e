"""``--threshold`` expressions: the grammar and its parser (no evaluation here).

Grammar (k6-like; spaces allowed around the operator)::

    EXPR     := SELECTOR ":" METRIC OP VALUE
    SELECTOR := PROTOCOL | PROTOCOL "/" MODE        e.g. websocket, grpc/unary
    METRIC   := p50 | median | p90 | p99 | min | max | mean   transmission time
              | total        total transfer time (mean per repetition)
              | cumulative   cumulative transmission time (mean per repetition)
              | throughput   mean image bytes / median transmission time, MB/s
              | ratio        median of this label / median of the other label
    OP       := "<" | "<=" | ">" | ">="
    VALUE    := NUMBER UNIT   times: ns, us, µs, ms, s (unit required);
                              throughput: optional "MB/s"; ratio: a bare number

Examples: ``websocket/binary:p90<5ms``, ``grpc:ratio<1.2``,
``websocket:throughput>=100MB/s``. A threshold holds when ``figure OP value``
is true for the figure measured after the run; :mod:`imgbench.report.thresholds`
evaluates them. Values are stored in SI base units (seconds, MB/s, ratio).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from imgbench.wire import MODES

TIME_METRICS: Final = ("p50", "median", "p90", "p99", "min", "max", "mean", "total", "cumulative")
METRICS: Final = (*TIME_METRICS, "throughput", "ratio")
OPERATORS: Final = ("<=", ">=", "<", ">")
_TIME_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_EXPR: Final = re.compile(
    r"^\s*(?P<sel>[a-z]+(?:/[a-z]+)?)\s*:\s*(?P<metric>[a-z0-9]+)\s*"
    r"(?P<op><=|>=|<|>)\s*(?P<num>[0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(?P<unit>[a-zµ/]*)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed expression; ``limit`` in seconds, MB/s or a plain ratio."""

    expression: str
    protocol: str
    mode: str | None
    metric: str
    op: str
    limit: float

    @property
    def selector(self) -> str:
        return self.protocol if self.mode is None else f"{self.protocol}/{self.mode}"

    def holds(self, value: float) -> bool:
        return {
            "<": value < self.limit,
            "<=": value <= self.limit,
            ">": value > self.limit,
            ">=": value >= self.limit,
        }[self.op]


def parse_threshold(text: str) -> Threshold:
    """One expression; ``ValueError`` saying what is wrong and what is allowed."""
    m = _EXPR.match(text)
    if m is None:
        raise ValueError(
            f"{text!r} is not SELECTOR:METRIC OP VALUE (e.g. websocket/binary:p90<5ms)"
        )
    protocol, _, mode = m["sel"].lower().partition("/")
    if protocol not in MODES:
        raise ValueError(f"{text!r}: unknown protocol {protocol!r} (one of {', '.join(MODES)})")
    if mode and mode not in MODES[protocol]:
        raise ValueError(
            f"{text!r}: unknown {protocol} mode {mode!r} (one of {', '.join(MODES[protocol])})"
        )
    metric = m["metric"].lower()
    if metric not in METRICS:
        raise ValueError(f"{text!r}: unknown metric {metric!r} (one of {', '.join(METRICS)})")
    number, unit = float(m["num"]), m["unit"]
    if metric in TIME_METRICS:
        if unit.lower() not in _TIME_UNITS and unit not in _TIME_UNITS:
            raise ValueError(f"{text!r}: a time needs a unit (ns, us, ms, s), got {unit!r}")
        limit = number * _TIME_UNITS.get(unit, _TIME_UNITS.get(unit.lower(), 1.0))
    elif metric == "throughput":
        if unit.lower() not in ("", "mb/s"):
            raise ValueError(f"{text!r}: throughput is in MB/s, got {unit!r}")
        limit = number
    else:
        if unit:
            raise ValueError(f"{text!r}: a ratio has no unit, got {unit!r}")
        limit = number
    return Threshold(text.strip(), protocol, mode or None, metric, m["op"], limit)


def parse_thresholds(text: str) -> tuple[Threshold, ...]:
    """Comma-separated expressions (the environment variable's form)."""
    return tuple(parse_threshold(part) for part in text.split(",") if part.strip())

"""Logging set-up, done once per process at the edge.

Logs: structlog, rendered as JSON when stderr is not a terminal (containers,
CI) and as colourful console lines in a terminal. The standard library's
loggers (grpc, websockets) go through the same renderer. Every line logged
inside an active span carries ``trace_id`` and ``span_id``; per-run fields
(protocol, run id, sequence) come from :mod:`structlog.contextvars`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add the current span's ``trace_id`` and ``span_id`` (hex)."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


#: Whether debug lines are written (structlog's own default, until configured).
_debug = True


def debug_enabled() -> bool:
    """Whether debug lines are written: per-image call sites check this first, so
    that with debug off an image costs no logger lookup and no formatting."""
    return _debug


def configure_logging(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger. Safe to call again (replaces)."""
    global _debug
    _debug = _LEVELS[level] <= logging.DEBUG
    stream = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Filtering in the bound logger makes disabled debug calls (per image) nearly free.
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(_LEVELS[level])
    # websockets logs every handshake at INFO; keep those at WARNING unless debugging.
    logging.getLogger("websockets").setLevel(max(_LEVELS[level], logging.WARNING))


def get_logger(name: str) -> Any:
    """A structlog logger named ``name``."""
    return structlog.get_logger(name)


class LogLimiter:
    """At most ``burst`` lines per kind per ``window_s`` seconds; counts the rest.

    Pure bookkeeping (the clock is injectable): :meth:`admit` says whether a
    line of ``kind`` may be written now, and how many lines of that kind were
    suppressed in its previous window (to be summed up in one line). Kinds
    are a small closed set chosen by the caller, so the table stays bounded.
    """

    def __init__(
        self, burst: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if burst < 1 or window_s <= 0:
            raise ValueError("burst must be >= 1 and window_s > 0")
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        #: kind -> [window start (s), lines written, lines suppressed] of its current window.
        self._windows: dict[str, list[float]] = {}

    def admit(self, kind: str) -> tuple[bool, int]:
        """``(write this line?, lines of kind suppressed in the window that just ended)``."""
        now = self._clock()
        window = self._windows.get(kind)
        ended = 0
        if window is None or now - window[0] >= self.window_s:
            ended = int(window[2]) if window is not None else 0
            window = self._windows[kind] = [now, 0, 0]
        if window[1] < self.burst:
            window[1] += 1
            return True, ended
        window[2] += 1
        return False, ended

    def drain(self) -> dict[str, int]:
        """Suppressed counts not yet reported, by kind (and forget them): for shutdown."""
        out = {kind: int(w[2]) for kind, w in self._windows.items() if w[2]}
        for window in self._windows.values():
            window[2] = 0
        return out


class LimitedWarnings:
    """Warnings written through a :class:`LogLimiter`: a flood costs one line per window.

    ``on_suppressed(kind)`` is called for every line not written (the caller's
    counter), so the total stays exact while the log stays small. When a window
    ends with lines suppressed, the next line of that kind is preceded by one
    ``"similar warnings suppressed"`` line with the count; :meth:`flush` writes
    the outstanding counts (call it on shutdown).
    """

    def __init__(
        self, logger: Any, limiter: LogLimiter, on_suppressed: Callable[[str], None]
    ) -> None:
        self._log = logger
        self._limiter = limiter
        self._on_suppressed = on_suppressed

    def warning(self, kind: str, event: str, **fields: Any) -> None:
        write, ended = self._limiter.admit(kind)
        if ended:
            self._summary(kind, ended)
        if write:
            self._log.warning(event, **fields)
        else:
            self._on_suppressed(kind)

    def flush(self) -> None:
        for kind, count in self._limiter.drain().items():
            self._summary(kind, count)

    def _summary(self, kind: str, count: int) -> None:
        self._log.warning(
            "similar warnings suppressed",
            kind=kind,
            suppressed=count,
            window_s=self._limiter.window_s,
            burst=self._limiter.burst,
        )

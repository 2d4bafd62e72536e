"""imgbench.observe.logs: one renderer for our logs and third-party ones."""

from __future__ import annotations

import io
import json

from imgbench.observe.logs import LimitedWarnings, LogLimiter, configure_logging, debug_enabled


def test_third_party_logs_go_through_the_same_renderer() -> None:
    import logging

    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    try:
        logging.getLogger("grpc._cython.cygrpc").warning("grpc says %s", "hello")
        logging.getLogger("websockets.server").error("websockets says hi")
    finally:
        configure_logging("console", "warning")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["logger"], x["event"], x["level"]) for x in lines] == [
        ("grpc._cython.cygrpc", "grpc says hello", "warning"),
        ("websockets.server", "websockets says hi", "error"),
    ]
    assert all("timestamp" in x for x in lines)


def test_log_limiter_admits_a_burst_per_window_and_reports_what_it_dropped() -> None:
    now = [0.0]
    limiter = LogLimiter(3, 10.0, clock=lambda: now[0])
    assert [limiter.admit("a") for _ in range(5)] == [(True, 0)] * 3 + [(False, 0)] * 2
    assert limiter.admit("b") == (True, 0)  # kinds are independent
    now[0] = 9.999
    assert limiter.admit("a") == (False, 0)
    now[0] = 10.0  # a new window: admitted, and the 3 dropped in the last one are reported
    assert limiter.admit("a") == (True, 3)
    assert limiter.admit("a") == (True, 0)
    assert limiter.drain() == {}
    limiter.admit("a")
    limiter.admit("a")
    assert limiter.drain() == {"a": 1}
    assert limiter.drain() == {}


def test_limited_warnings_write_one_summary_line_and_count_each_dropped_line() -> None:
    now = [0.0]
    written: list[tuple[str, dict[str, object]]] = []
    dropped: list[str] = []

    class Sink:
        def warning(self, event: str, **fields: object) -> None:
            written.append((event, fields))

    warnings = LimitedWarnings(Sink(), LogLimiter(2, 1.0, clock=lambda: now[0]), dropped.append)
    for i in range(50):
        warnings.warning("oversized", "message rejected", n=i)
    assert [f["n"] for _, f in written] == [0, 1]
    assert dropped == ["oversized"] * 48
    now[0] = 5.0
    warnings.warning("oversized", "message rejected", n=50)
    assert written[2] == (
        "similar warnings suppressed",
        {"kind": "oversized", "suppressed": 48, "window_s": 1.0, "burst": 2},
    )
    assert written[3][1]["n"] == 50
    warnings.flush()
    assert len(written) == 4  # nothing outstanding


def test_debug_enabled_follows_the_configured_level() -> None:
    try:
        configure_logging("json", "info", stream=io.StringIO())
        assert not debug_enabled()  # per-image debug lines skip the logger entirely
        configure_logging("json", "debug", stream=io.StringIO())
        assert debug_enabled()
    finally:
        configure_logging("console", "warning")
    assert not debug_enabled()

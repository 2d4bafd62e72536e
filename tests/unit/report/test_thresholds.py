"""Thresholds evaluated on a known result: the figure, the verdict, the k6-style line."""

from __future__ import annotations

import statistics

import pytest

from imgbench.config.thresholds import parse_threshold
from imgbench.report.thresholds import evaluate

from helpers.synthetic import comparison

WS, GRPC = "websocket/binary", "grpc/unary"


def test_figures_and_pass_fail() -> None:
    c = comparison({WS: [1.0], GRPC: [2.0]}, images=20)
    ws_times = [s.transmission_s for s in c.samples_for(WS)]
    grpc_times = [s.transmission_s for s in c.samples_for(GRPC)]
    p50 = statistics.median(ws_times)
    results = evaluate(
        c,
        [
            parse_threshold(f"websocket/binary:p50<{p50 * 1e3 * 1.01}ms"),
            parse_threshold(f"websocket:p50<{p50 * 1e3 * 0.99}ms"),
            parse_threshold("grpc:ratio>1.5"),
            parse_threshold("websocket:throughput>500MB/s"),
            parse_threshold("websocket/json:p50<1s"),
        ],
    )
    ok = [r.ok for r in results]
    assert ok == [True, False, True, True, False]
    assert results[0].value == pytest.approx(p50)
    assert results[2].value == pytest.approx(statistics.median(grpc_times) / p50)
    assert results[3].value == pytest.approx(1.0 / p50)  # 1 MB images: MB / median s
    assert results[4].value is None and results[4].reason == "no measured label matches"
    assert results[0].line().startswith("✓ pass  websocket/binary:p50<")
    assert results[1].line().startswith("✗ FAIL  websocket:p50<")
    assert "[websocket/binary]" in results[1].line()


def test_ratio_needs_two_labels() -> None:
    c = comparison({WS: [1.0]}, images=20)
    (r,) = evaluate(c, [parse_threshold("websocket:ratio<2")])
    assert not r.ok and r.reason == "ratio needs exactly two labels"

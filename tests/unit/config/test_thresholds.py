"""The --threshold grammar: what parses to what, and what is refused with why."""

from __future__ import annotations

import argparse

import pytest

from imgbench import config
from imgbench.config.thresholds import parse_threshold, parse_thresholds
from imgbench.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "selector", "metric", "op", "limit"),
    [
        ("websocket/binary:p90<5ms", "websocket/binary", "p90", "<", 5e-3),
        ("grpc/unary:ratio<1.2", "grpc/unary", "ratio", "<", 1.2),
        ("grpc : p50 <= 250us", "grpc", "p50", "<=", 250e-6),
        ("websocket:max<2s", "websocket", "max", "<", 2.0),
        ("websocket:median>=1µs", "websocket", "median", ">=", 1e-6),
        ("grpc:total<3.5s", "grpc", "total", "<", 3.5),
        ("grpc:throughput>100MB/s", "grpc", "throughput", ">", 100.0),
        ("grpc:throughput>100", "grpc", "throughput", ">", 100.0),
        ("websocket/json:cumulative<40ns", "websocket/json", "cumulative", "<", 40e-9),
    ],
)
def test_expressions_parse(text: str, selector: str, metric: str, op: str, limit: float) -> None:
    t = parse_threshold(text)
    assert (t.selector, t.metric, t.op) == (selector, metric, op)
    assert t.limit == pytest.approx(limit)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("websocket/binary p90<5ms", "SELECTOR:METRIC OP VALUE"),
        ("http:p90<5ms", "unknown protocol 'http'"),
        ("grpc/binary:p90<5ms", "unknown grpc mode 'binary'"),
        ("grpc:p95<5ms", "unknown metric 'p95'"),
        ("grpc:p90<5", "a time needs a unit"),
        ("grpc:ratio<1.2x", "a ratio has no unit"),
        ("grpc:throughput>5GB/s", "throughput is in MB/s"),
        ("grpc:p90=5ms", "SELECTOR:METRIC OP VALUE"),
    ],
)
def test_bad_expressions_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("(", r"\(")):
        parse_threshold(text)


def test_holds_per_operator() -> None:
    assert parse_threshold("grpc:p50<1ms").holds(0.0009)
    assert not parse_threshold("grpc:p50<1ms").holds(0.001)
    assert parse_threshold("grpc:p50<=1ms").holds(0.001)
    assert parse_threshold("grpc:throughput>=10").holds(10.0)
    assert not parse_threshold("grpc:throughput>10").holds(10.0)


def test_flag_repeats_and_env_is_comma_separated() -> None:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, config.REPORT_OPTIONS)
    args = parser.parse_args(["--threshold", "grpc:p50<1ms", "--threshold", "websocket:max<1s"])
    cfg = config.report_settings(args, environ={})
    assert [t.expression for t in cfg.thresholds] == ["grpc:p50<1ms", "websocket:max<1s"]
    env = config.report_settings(None, {"IMGBENCH_THRESHOLDS": "grpc:p50<1ms,grpc:ratio<2"})
    assert env.thresholds == parse_thresholds("grpc:p50<1ms, grpc:ratio<2")
    assert config.report_settings(None, {}).thresholds == ()
    with pytest.raises(ConfigError, match=r"IMGBENCH_THRESHOLDS \(--threshold\)"):
        config.report_settings(None, {"IMGBENCH_THRESHOLDS": "grpc:p50<1"})
    with pytest.raises(ConfigError, match=r"IMGBENCH_FORMAT \(--format\)"):
        config.report_settings(None, {"IMGBENCH_FORMAT": "yaml"})

"""Timing math and the result model (pure, no sockets)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from imgbench.measure.results import Comparison, ProtocolRun, Sample, compute_figures


def sample(seq: int, scheduled: int, send: int, receive: int, ack: int, size: int = 1000) -> Sample:
    return Sample(seq, scheduled, send, receive, ack, size, size + 50, True)


def test_the_three_figures_follow_their_definitions() -> None:
    ms = 1_000_000
    # Three images, one second apart; transmission 2, 4 and 3 ms.
    samples = [
        sample(0, 0, 0, 2 * ms, 3 * ms),
        sample(1, 1000 * ms, 1000 * ms, 1004 * ms, 1005 * ms),
        sample(2, 2000 * ms, 2000 * ms, 2003 * ms, 2004 * ms),
    ]
    f = compute_figures(samples)
    assert f.transmission.min == pytest.approx(0.002)
    assert f.transmission.max == pytest.approx(0.004)
    assert f.transmission.p50 == pytest.approx(0.003)
    assert f.cumulative_transmission_s == pytest.approx(0.009)
    # Last receive-complete minus first send start.
    assert f.total_transfer_s == pytest.approx(2.003)
    assert f.throughput_mb_s == pytest.approx(3000 / 0.009 / 1e6)
    assert f.round_trip.p50 == pytest.approx(0.004)  # round trips 3, 5 and 4 ms
    assert f.transmission.mean == pytest.approx(statistics.mean([0.002, 0.004, 0.003]))


def test_queueing_counts_from_the_scheduled_start() -> None:
    ms = 1_000_000
    s = sample(0, scheduled=0, send=5 * ms, receive=7 * ms, ack=8 * ms)
    assert s.queue_s == pytest.approx(0.005)
    assert s.transmission_s == pytest.approx(0.007)  # includes the 5 ms spent waiting
    assert s.round_trip_s == pytest.approx(0.003)


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError):
        compute_figures([])


def test_json_round_trip(tmp_path: Path) -> None:
    run = ProtocolRun(
        protocol="grpc", mode="unary", compression=False, images=2, warmup=0, delay_s=0.0,
        in_flight=1, repetition=0, position=1, image_bytes=1000, message_bytes=1050,
        samples=[sample(0, 1, 1, 5, 9), sample(1, 10, 10, 15, 20)], costs={"receiver_cpu_s": 0.1},
    )  # fmt: skip
    comparison = Comparison("r1", "2026-01-01T00:00:00+00:00", {"images": 2}, {"grpcio": "x"},
                            {"cpu_count": 2}, {"bytes": 1000}, [run])  # fmt: skip
    comparison.save(tmp_path / "results.json")
    loaded = Comparison.load(tmp_path / "results.json")
    assert loaded.runs[0].samples == run.samples
    assert loaded.runs[0].costs == run.costs
    assert loaded.to_dict() == comparison.to_dict()


def test_loading_something_else_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"schema": "other"}')
    with pytest.raises(ValueError, match="not an imgbench result"):
        Comparison.load(tmp_path / "x.json")


def test_direction_is_saved_and_old_results_load_as_uploads(tmp_path: Path) -> None:
    run = ProtocolRun(
        protocol="websocket", mode="push", compression=False, images=1, warmup=0, delay_s=0.0,
        in_flight=1, repetition=0, position=0, image_bytes=1000, message_bytes=1050,
        samples=[sample(0, 1, 1, 5, 9)], direction="push",
    )  # fmt: skip
    comparison = Comparison("r2", "2026-01-01T00:00:00+00:00", {"direction": "push"}, {}, {},
                            {"bytes": 1000}, [run])  # fmt: skip
    data = comparison.to_dict()
    assert data["runs"][0]["direction"] == "push"
    assert Comparison.from_dict(data).runs[0].direction == "push"
    del data["runs"][0]["direction"]  # written before push existed
    assert Comparison.from_dict(data).runs[0].direction == "upload"

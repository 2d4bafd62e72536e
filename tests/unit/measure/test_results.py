"""Timing math and the result model (pure, no sockets)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from imgbench.errors import ResultsError
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
    with pytest.raises(ValueError, match=r"^no samples$"):
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
    with pytest.raises(ResultsError, match="not an imgbench result"):
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


def _run(label: str = "grpc/unary", **kw: object) -> ProtocolRun:
    protocol, mode = label.split("/")
    fields: dict[str, object] = dict(
        protocol=protocol, mode=mode, compression=True, images=2, warmup=1, delay_s=0.25,
        in_flight=3, repetition=2, position=1, image_bytes=1000, message_bytes=1050,
        samples=[sample(0, 1, 2, 5, 9), sample(1, 10, 12, 15, 20)],
        warmup_samples=[sample(0, 0, 0, 3, 4)], costs={"receiver_cpu_s": 0.1},
        started_at="2026-01-01T00:00:01+00:00", clock={"status": "shared"},
    )  # fmt: skip
    fields.update(kw)
    return ProtocolRun(**fields)  # type: ignore[arg-type]


def test_json_round_trip_restores_equal_objects_and_writes_the_documented_keys(
    tmp_path: Path,
) -> None:
    import json

    corrected = Sample(
        2, 20, 21, 10**9, 10**9 + 5, 1000, 1050, False, transmission_ns=7, bound_ns=3
    )
    runs = [_run(), _run("websocket/binary", samples=[corrected], compression=False)]
    comparison = Comparison("r1", "2026-01-01T00:00:00+00:00", {"images": 2}, {"grpcio": "x"},
                            {"cpu_count": 2}, {"bytes": 1000}, runs,
                            link={"spec": "rtt=40ms"})  # fmt: skip
    comparison.save(tmp_path / "results.json")
    loaded = Comparison.load(tmp_path / "results.json")
    assert loaded == comparison
    assert loaded.runs[1].samples[0] == corrected
    raw = json.loads((tmp_path / "results.json").read_text())
    assert raw["schema"] == "imgbench.result/1" and raw["link"] == {"spec": "rtt=40ms"}
    first = raw["runs"][0]
    assert {k: first[k] for k in ("protocol", "mode", "compression", "warmup", "delay_s",
                                  "in_flight", "repetition", "position", "started_at")} == {
        "protocol": "grpc", "mode": "unary", "compression": True, "warmup": 1, "delay_s": 0.25,
        "in_flight": 3, "repetition": 2, "position": 1, "started_at": "2026-01-01T00:00:01+00:00",
    }  # fmt: skip
    assert first["samples"][1] == {
        "sequence": 1, "scheduled_ns": 10, "send_ns": 12, "receive_ns": 15, "ack_ns": 20,
        "image_bytes": 1000, "message_bytes": 1050, "checksum_ok": True,
        "transmission_ns": None, "bound_ns": 0,
    }  # fmt: skip
    assert first["warmup_samples"] == [first["samples"][0] | {"sequence": 0, "scheduled_ns": 0,
                                       "send_ns": 0, "receive_ns": 3, "ack_ns": 4}]  # fmt: skip
    assert first["costs"] == {"receiver_cpu_s": 0.1} and first["clock"] == {"status": "shared"}
    # transmissions 4 and 5 ns; total transfer from scheduled 1 to received 15
    assert first["figures"]["images"] == 2
    assert first["figures"]["cumulative_transmission_s"] == pytest.approx(9e-9)
    assert first["figures"]["total_transfer_s"] == pytest.approx(14e-9)
    assert raw["runs"][1]["figures"]["transmission_bound_s"] == pytest.approx(3e-9)


def test_older_results_without_the_newer_fields_still_load() -> None:
    run = _run().to_dict()
    for key in ("warmup_samples", "costs", "clock"):
        del run[key]
    data = {"schema": "imgbench.result/1", "run_id": "r", "created_at": "t", "settings": {},
            "versions": {}, "host": {}, "image": {}, "runs": [run]}  # fmt: skip
    loaded = Comparison.from_dict(data)
    assert loaded.link is None
    assert (loaded.runs[0].warmup_samples, loaded.runs[0].costs, loaded.runs[0].clock) == (
        [],
        {},
        {},
    )
    assert loaded.runs[0].samples == _run().samples


def test_a_run_without_samples_has_no_figures() -> None:
    assert _run(samples=[]).to_dict()["figures"] is None


def test_schema_error_names_the_schema() -> None:
    with pytest.raises(ValueError, match=r"^not an imgbench result \(schema 'other'\)$"):
        Comparison.from_dict({"schema": "other"})
    with pytest.raises(ValueError, match=r"^not an imgbench result \(schema None\)$"):
        Comparison.from_dict({})


def test_labels_keep_first_run_order_and_samples_pool_repetitions() -> None:
    a1 = _run("websocket/binary", samples=[sample(0, 0, 0, 1, 2)])
    b1 = _run("grpc/unary", samples=[sample(0, 0, 0, 3, 4)])
    b2 = _run("grpc/unary", samples=[sample(1, 0, 0, 5, 6)], repetition=1)
    a2 = _run("websocket/binary", samples=[sample(1, 0, 0, 7, 8)], repetition=1)
    c = Comparison("r", "t", {}, {}, {}, {}, [a1, b1, b2, a2])
    assert c.labels() == ["websocket/binary", "grpc/unary"]
    assert c.samples_for("grpc/unary") == b1.samples + b2.samples
    assert c.samples_for("websocket/binary") == a1.samples + a2.samples
    assert c.samples_for("grpc/stream") == []
    assert a1.label == "websocket/binary"


def test_a_corrected_sample_uses_its_corrected_time_and_arrival() -> None:
    s = Sample(0, 1000, 1200, 9_000_000, 1500, 10, 12, True, transmission_ns=300, bound_ns=40)
    assert s.raw_transmission_ns == 9_000_000 - 1000
    assert s.transmission_s == 300 / 1e9
    assert s.arrival_ns == 1300  # scheduled + corrected transmission, transmitter's clock
    assert s.queue_s == 200 / 1e9 and s.round_trip_s == 300 / 1e9
    raw = Sample(0, 1000, 1200, 9_000_000, 1500, 10, 12, True)
    assert raw.transmission_s == (9_000_000 - 1000) / 1e9 and raw.arrival_ns == 9_000_000
    zero = Sample(0, 1000, 1200, 9_000_000, 1500, 10, 12, True, transmission_ns=0)
    assert zero.transmission_s == 0.0 and zero.arrival_ns == 1000  # 0 is a value, not "none"


def test_figures_of_corrected_samples_carry_their_bounds() -> None:
    samples = [
        Sample(0, 0, 0, 10**12, 50, 100, 110, True, transmission_ns=20, bound_ns=5),
        Sample(1, 100, 100, 10**12, 180, 300, 310, True, transmission_ns=60, bound_ns=9),
    ]
    f = compute_figures(samples)
    assert f.images == 2
    assert f.transmission.min == 20e-9 and f.transmission.max == 60e-9
    assert f.cumulative_transmission_s == pytest.approx(80e-9, rel=1e-12)
    assert f.total_transfer_s == pytest.approx(160e-9, rel=1e-12)  # arrival 160 - scheduled 0
    assert f.transmission_bound_s == pytest.approx(9e-9, rel=1e-12)
    assert f.cumulative_bound_s == pytest.approx(14e-9, rel=1e-12)
    assert f.throughput_mb_s == pytest.approx(400 / 80e-9 / 1e6, rel=1e-12)
    assert f.round_trip.max == pytest.approx(80e-9) and f.queue.max == 0.0
    assert f.as_dict() == {
        "transmission_bound_s": f.transmission_bound_s,
        "cumulative_bound_s": f.cumulative_bound_s,
        "images": 2,
        "transmission": f.transmission.as_dict(),
        "round_trip": f.round_trip.as_dict(),
        "queue": f.queue.as_dict(),
        "total_transfer_s": f.total_transfer_s,
        "cumulative_transmission_s": f.cumulative_transmission_s,
        "throughput_mb_s": f.throughput_mb_s,
    }
    exact = compute_figures([sample(0, 0, 0, 5, 6)])
    assert (exact.transmission_bound_s, exact.cumulative_bound_s) == (0.0, 0.0)


def test_zero_transmission_time_gives_infinite_throughput() -> None:
    f = compute_figures([sample(0, 5, 5, 5, 6)])
    assert f.cumulative_transmission_s == 0.0 and f.throughput_mb_s == float("inf")


def test_results_json_is_indented_utf8_text_ending_in_a_newline(tmp_path: Path) -> None:
    c = Comparison("r", "t", {"note": "höst ✓"}, {}, {}, {}, [_run(samples=[])])
    c.save(tmp_path / "results.json")
    raw = (tmp_path / "results.json").read_bytes()
    text = raw.decode("utf-8")
    assert text.startswith('{\n  "schema": "imgbench.result/1",\n  "run_id": "r",\n')
    assert text.endswith("\n}\n") and not text.endswith("\n\n")
    assert Comparison.load(tmp_path / "results.json").settings == {"note": "höst ✓"}

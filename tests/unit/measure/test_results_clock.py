"""Corrected samples: figures use the corrected times and carry their bounds."""

from __future__ import annotations

from imgbench.measure.results import ProtocolRun, Sample, compute_figures


def sample(seq: int, raw_ns: int, corrected: int | None, bound: int) -> Sample:
    return Sample(
        sequence=seq, scheduled_ns=1_000 + seq * 10_000, send_ns=1_000 + seq * 10_000,
        receive_ns=1_000 + seq * 10_000 + raw_ns, ack_ns=2_000 + seq * 10_000 + 5_000,
        image_bytes=100, message_bytes=120, checksum_ok=True, transmission_ns=corrected,
        bound_ns=bound,
    )  # fmt: skip


def test_figures_use_corrected_times_and_sum_their_bounds() -> None:
    offset = 10**12  # the receiver's clock 1000 s ahead
    samples = [sample(i, offset + 400 + i, 400 + i, 50 + i) for i in range(3)]
    figures = compute_figures(samples)
    assert figures.transmission.p50 == 401e-9
    assert figures.cumulative_transmission_s == 1203e-9
    assert figures.transmission_bound_s == 52e-9
    assert figures.cumulative_bound_s == 153e-9
    # Total transfer: first scheduled start to the last arrival on the transmitter's clock.
    assert figures.total_transfer_s == (20_000 + 402) / 1e9
    # Round trip is one clock: never corrected.
    assert figures.round_trip.p50 == samples[1].round_trip_s


def test_uncorrected_samples_keep_todays_figures() -> None:
    samples = [sample(i, 400 + i, None, 0) for i in range(3)]
    figures = compute_figures(samples)
    assert figures.transmission.p50 == 401e-9 and figures.transmission_bound_s == 0


def test_a_run_round_trips_through_json_with_its_clock() -> None:
    run = ProtocolRun(
        protocol="grpc", mode="unary", compression=False, images=1, warmup=0, delay_s=0.0,
        in_flight=1, repetition=0, position=0, image_bytes=100, message_bytes=120,
        samples=[sample(0, 10**12 + 400, 400, 50)],
        clock={"status": "corrected", "offset_ns": 10**12, "bound_ns": 50},
    )  # fmt: skip
    again = ProtocolRun.from_dict(run.to_dict())
    assert again.samples == run.samples and again.clock == run.clock
    old = run.to_dict()
    del old["clock"]
    for s in old["samples"]:
        del s["transmission_ns"], s["bound_ns"]
    assert ProtocolRun.from_dict(old).samples[0].transmission_ns is None

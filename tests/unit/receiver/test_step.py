"""The receiver's sans-I/O step, driven without sockets: bytes and stamp in, outcome out."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import receiver.runs
import receiver.step
from imgbench import wire
from imgbench.config.settings import ReceiverSettings
from imgbench.errors import ClockError, WireError
from imgbench.measure.clock import Probe, estimate_run
from imgbench.measure.results import Sample, compute_figures
from imgbench.wire import names
from receiver.events import (
    Assembled,
    ClockEstimated,
    ClockEstimateRefused,
    ImageReceived,
    IntegrityFailed,
    Outcome,
    ProbeAnswered,
    Refused,
    RunCompleted,
    RunEvicted,
    SampleRecorded,
    SaveImage,
    Stamp,
    WarmupReceived,
    error_ack,
)
from receiver.step import Decoded, NeedsDigest, ReceiverStep

IMAGE = b"\x89PNG" + bytes(range(256)) * 4
SHA = wire.digest(IMAGE)
SEND_NS = 5_000_000_000
#: Received 2 ms after it was sent, on the monotonic clock; the wall clock is elsewhere.
STAMP = Stamp(monotonic_ns=SEND_NS + 2_000_000, realtime_ns=1_700_000_000_000_000_000)
T3 = SEND_NS + 2_000_500
RX_BOOT = "receiver-boot"
UNCORRECTED = {"imgbench.clock.status": "uncorrected"}


def meta(**kw: Any) -> wire.ImageMeta:
    fields: dict[str, Any] = dict(
        run_id="run-1", protocol="websocket", mode="binary", sequence=0, total=2,
        send_time_ns=SEND_NS, clock=wire.Clock.CLOCK_MONOTONIC,
        content_type="image/png", sha256=SHA,
    )  # fmt: skip
    fields.update(kw)
    return wire.ImageMeta(**fields)


def probe(**kw: Any) -> wire.ImageMeta:
    info = kw.pop("info", wire.ProbeInfo(id=3, revision=names.PROBE_REVISION, group=0))
    return meta(sequence=0, sha256=b"", content_type="", probe=info, **kw)


def new_step(**settings: Any) -> ReceiverStep:
    return ReceiverStep(
        ReceiverSettings(**settings), boot_id=RX_BOOT, read_clock=lambda _: T3,
        wall_time=lambda: 1234.5,
    )  # fmt: skip


def send(step: ReceiverStep, m: wire.ImageMeta, data: bytes = IMAGE, **kw: Any) -> Outcome:
    stamp = kw.pop("stamp", STAMP)
    return step.step(wire.encode_image(m, data), stamp, protocol=m.protocol, mode=m.mode, **kw)


def ack(m: wire.ImageMeta, *, receive_ns: int, ok: bool = True, size: int = len(IMAGE)) -> bytes:
    return wire.encode_ack(
        sequence=m.sequence, receive_time_ns=receive_ns, bytes_received=size, checksum_ok=ok,
        transmission_ns=receive_ns - m.start_ns, warmup=m.warmup,
    )  # fmt: skip


def sample(m: wire.ImageMeta, raw: bytes, receive_ns: int = STAMP.monotonic_ns) -> Sample:
    return Sample(
        sequence=m.sequence, scheduled_ns=m.start_ns, send_ns=m.send_time_ns,
        receive_ns=receive_ns, ack_ns=receive_ns, image_bytes=len(IMAGE),
        message_bytes=len(raw), checksum_ok=True, transmission_ns=None, bound_ns=0,
    )  # fmt: skip


def received(m: wire.ImageMeta, stamp: Stamp = STAMP, ok: bool = True) -> ImageReceived:
    raw_ns = stamp.on(m.clock) - m.start_ns
    return ImageReceived(m, stamp, len(IMAGE), raw_ns, raw_ns, ok, 0, UNCORRECTED)


def refused(outcome: Outcome) -> tuple[str, str]:
    """(reason, ack error) of a refusal outcome, checking its shape on the way."""
    assert outcome.error is not None
    assert isinstance(outcome.events[-1], Refused)
    assert outcome.events[-1].error is outcome.error
    assert outcome.ack == error_ack(outcome.error)
    decoded = wire.decode_ack(outcome.ack)
    assert not decoded.checksum_ok and decoded.sequence == 0
    return outcome.error.reason, decoded.error


# -- accepted images ---------------------------------------------------------


def test_an_accepted_image_is_recorded_and_acked() -> None:
    step = new_step()
    m = meta(scheduled_time_ns=SEND_NS - 1_000_000)
    raw = wire.encode_image(m, IMAGE)
    outcome = step.step(raw, STAMP, protocol="websocket", mode="binary")
    assert outcome.error is None and outcome.meta == m
    # Counted from the scheduled time: 3 ms.
    assert outcome.ack == ack(m, receive_ns=STAMP.monotonic_ns)
    assert wire.decode_ack(outcome.ack).transmission_ns == 3_000_000
    assert outcome.events == (
        ImageReceived(m, STAMP, len(IMAGE), 3_000_000, 3_000_000, True, 0, UNCORRECTED),
        SampleRecorded(m, sample(m, raw), 0.003),
    )
    (record,) = step.runs.records("run-1")
    assert list(record.samples) == [0] and record.completed_at is None
    assert not step.is_complete(m)


def test_the_last_image_completes_the_run_with_its_figures() -> None:
    step = new_step()
    first, second = meta(sequence=0), meta(sequence=1, send_time_ns=SEND_NS + 1_000_000_000)
    later = Stamp(second.send_time_ns + 4_000_000, STAMP.realtime_ns + 1_000_000_000)
    send(step, first)
    outcome = send(step, second, stamp=later)
    samples = [
        sample(first, wire.encode_image(first, IMAGE)),
        sample(second, wire.encode_image(second, IMAGE), later.monotonic_ns),
    ]
    assert outcome.events == (
        received(second, later),
        SampleRecorded(second, samples[1], 0.004),
        RunCompleted(
            run_id="run-1", protocol="websocket", mode="binary", repetition=0,
            figures=compute_figures(samples), transmissions=[(0, 0.002), (1, 0.004)],
            clock={"status": "uncorrected",
                   "why": "no clock probes received (a revision-1 transmitter)"},
            integrity_failures=0,
        ),
    )  # fmt: skip
    assert outcome.ack == ack(second, receive_ns=later.monotonic_ns)
    assert step.is_complete(second)
    (record,) = step.runs.records("run-1")
    assert record.completed_at == 1234.5


def test_a_large_run_leaves_its_figures_to_the_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above INLINE_FIGURES samples the step does not compute figures on the caller's loop."""
    monkeypatch.setattr(receiver.step, "INLINE_FIGURES", 1)
    monkeypatch.setattr(receiver.runs, "INLINE_FIGURES", 1)
    step = new_step()
    first, second = meta(sequence=0), meta(sequence=1)
    send(step, first)
    outcome = send(step, second)
    done = outcome.events[-1]
    assert isinstance(done, RunCompleted)
    (record,) = step.runs.records("run-1")
    assert done.figures is None and done.transmissions == [] and done.record is record
    assert record.completed_at == 1234.5 and record.figures is None
    assert record.figures_version == 1
    # What the edge runs in a worker thread: the same figures the inline path gives.
    figures, transmissions = record.summary(per_image_below=1)
    assert figures == compute_figures(record.corrected()) and figures.images == 2
    assert transmissions == [(0, 0.002)]
    # A new clock estimate clears them again, under a new version (an older
    # computation finishing later must not overwrite the newer one).
    assert record.refresh_figures() is False
    assert record.figures is None and record.figures_version == 2


def test_a_checksum_mismatch_is_counted_never_a_sample() -> None:
    step = new_step()
    m = meta(sha256=b"\x00" * 32)
    outcome = send(step, m)
    assert outcome.events == (received(m, ok=False), IntegrityFailed(m, len(IMAGE)))
    assert outcome.ack == ack(m, receive_ns=STAMP.monotonic_ns, ok=False)
    (record,) = step.runs.records("run-1")
    assert record.integrity_failures == 1 and record.samples == {}


def test_a_warmup_image_is_counted_not_measured() -> None:
    step = new_step()
    m = meta(warmup=True, sequence=0)
    outcome = send(step, m)
    assert outcome.events == (received(m), WarmupReceived(m))
    assert outcome.ack == ack(m, receive_ns=STAMP.monotonic_ns)
    # A warm-up image may repeat a sequence: never a duplicate.
    assert send(step, m).error is None
    (record,) = step.runs.records("run-1")
    assert record.warmup == 2 and record.samples == {}


def test_json_text_and_assembled_uploads_take_the_same_step() -> None:
    step = new_step()
    m = meta(mode="json", total=1)
    text = wire.encode_json_image(m, IMAGE)
    outcome = step.step(text, STAMP, protocol="websocket", mode="json")
    assert isinstance(outcome.events[1], SampleRecorded)
    assert outcome.events[1].sample.message_bytes == len(text)
    g = meta(protocol="grpc", mode="chunked", total=1)
    outcome = step.step(Assembled(g, IMAGE, 999), STAMP, protocol="grpc", mode="chunked")
    assert isinstance(outcome.events[1], SampleRecorded)
    assert outcome.events[1].sample.message_bytes == 999
    assert isinstance(outcome.events[2], RunCompleted)


def test_save_dir_asks_the_edge_to_save_after_the_rest(tmp_path: Path) -> None:
    step = new_step(save_dir=tmp_path)
    m = meta()
    outcome = send(step, m)
    assert outcome.events[-1] == SaveImage(m, IMAGE)
    assert list(tmp_path.iterdir()) == []  # the step itself writes nothing


# -- the digest continuation ---------------------------------------------------


def test_hashing_is_left_to_the_caller_on_a_view_of_the_message() -> None:
    step = new_step()
    m = meta()
    raw = wire.encode_image(m, IMAGE)
    got = step.receive(raw, STAMP, protocol="websocket", mode="binary")
    assert isinstance(got, Decoded)
    checked = step.admit(got)
    assert isinstance(checked, NeedsDigest)
    assert isinstance(checked.data, memoryview) and checked.data.obj is raw  # no copy
    assert bytes(checked.data) == IMAGE
    # Nothing recorded until the digest is in.
    assert step.runs.records("run-1")[0].samples == {}
    wrong = step.finish(checked, b"\x01" * 32)
    assert isinstance(wrong.events[1], IntegrityFailed)


# -- refusals ----------------------------------------------------------------


def test_undecodable_and_oversized_messages_are_refused() -> None:
    step = new_step(max_message_bytes=2000)
    outcome = step.step(b"\xff\xff\xff", STAMP, protocol="websocket", mode="binary")
    assert refused(outcome)[0] == "malformed" and outcome.meta is None
    assert len(outcome.events) == 1
    big = send(step, meta(), IMAGE * 2)
    assert refused(big)[0] == "oversized"
    assert step.runs.run_ids() == []


def test_a_message_for_another_transport_is_an_invalid_field() -> None:
    step = new_step()
    m = meta(protocol="grpc", mode="unary")
    outcome = step.step(wire.encode_image(m, IMAGE), STAMP, protocol="websocket", mode="binary")
    reason, error = refused(outcome)
    assert reason == "invalid_field"
    assert error == "invalid_field: message says grpc/unary but arrived on websocket/binary"


def test_a_changed_total_is_refused() -> None:
    step = new_step()
    send(step, meta(total=2))
    reason, error = refused(send(step, meta(total=3, sequence=1)))
    assert reason == "invalid_field"
    assert error == "invalid_field: total changed from 2 to 3 within a run"


def test_a_duplicate_is_refused_and_not_recorded_twice() -> None:
    step = new_step()
    send(step, meta())
    reason, error = refused(send(step, meta()))
    assert (reason, error) == ("duplicate", "duplicate: sequence 0 of run run-1 already received")
    assert len(step.runs.records("run-1")[0].samples) == 1


def test_an_image_sent_in_the_future_is_a_clock_refusal() -> None:
    step = new_step()
    m = meta(send_time_ns=STAMP.monotonic_ns + 1)
    outcome = send(step, m)
    reason, error = refused(outcome)
    assert reason == "clock" and "transmission time -1 ns is negative" in error
    assert outcome.meta == m
    assert step.runs.records("run-1")[0].samples == {}


def test_binary_frames_on_the_json_endpoint_must_be_probes() -> None:
    step = new_step()
    m = meta(mode="json")
    outcome = step.step(
        wire.encode_image(m, IMAGE), STAMP, protocol="websocket", mode="json", probe_only=True
    )
    reason, error = refused(outcome)
    assert (reason, error) == (
        "wrong_frame_type",
        "wrong_frame_type: binary frame on the json endpoint (only clock probes)",
    )
    garbage = step.step(b"\x00", STAMP, protocol="websocket", mode="json", probe_only=True)
    assert refused(garbage)[0] == "wrong_frame_type"


def test_records_per_run_are_limited() -> None:
    step = new_step(max_records_per_run=1)
    send(step, meta(repetition=0))
    reason, error = refused(send(step, meta(repetition=1)))
    assert reason == "records_full"
    assert error == (
        "records_full: run run-1 already has 1 records (RECEIVER_MAX_RECORDS_PER_RUN=1)"
    )


def test_runs_full_evicted_and_the_eviction_event() -> None:
    step = new_step(max_runs=1)
    send(step, meta(run_id="a", total=1))  # complete: may be evicted
    send(step, meta(run_id="b", total=2))  # in progress: may not
    assert step.runs.run_ids() == ["b"]
    assert refused(send(step, meta(run_id="c")))[0] == "runs_full"
    assert refused(send(step, meta(run_id="a", total=1)))[0] == "run_evicted"
    step2 = new_step(max_runs=1)
    send(step2, meta(run_id="a", total=1))
    outcome = send(step2, meta(run_id="b", total=1))
    assert outcome.events[0] == RunEvicted("finished")
    assert [type(e) for e in outcome.events[1:]] == [ImageReceived, SampleRecorded, RunCompleted]


def test_every_refusal_is_a_wire_error_with_its_reason() -> None:
    step = new_step()
    outcome = step.step(b"\xff", STAMP, protocol="grpc", mode="unary")
    assert isinstance(outcome.error, WireError)
    assert outcome.events == (Refused("grpc", outcome.error),)


# -- clock probes -------------------------------------------------------------


def test_a_probe_is_answered_with_t2_and_t3() -> None:
    step = new_step()
    p = probe()
    outcome = step.step(wire.encode_probe(p), STAMP, protocol="websocket", mode="binary")
    assert outcome.error is None and outcome.meta == p
    assert outcome.events == (ProbeAnswered("websocket", "binary", "run-1"),)
    assert outcome.ack == wire.encode_probe_reply(
        id=3, receive_time_ns=STAMP.monotonic_ns, reply_time_ns=T3,
        clock=wire.Clock.CLOCK_MONOTONIC, boot_id=RX_BOOT,
    )  # fmt: skip
    reply = wire.decode_probe_reply(wire.decode_ack(outcome.ack))
    assert reply is not None and (reply.receive_time_ns, reply.reply_time_ns) == (
        STAMP.monotonic_ns,
        T3,
    )


def test_probe_is_answered_at_once_without_admission() -> None:
    step = new_step()
    got = step.receive(wire.encode_probe(probe()), STAMP, protocol="websocket", mode="binary")
    assert isinstance(got, Outcome)  # never a Decoded waiting for a slot


def test_echoed_exchanges_correct_the_run_and_refuse_the_future() -> None:
    """The transmitter's clock is 1 s ahead of the receiver's (other boot): estimated, corrected."""
    step = new_step()
    ahead = 1_000_000_000
    exchanges = tuple(
        wire.Exchange(id=i, group=0, t1=t + ahead, t2=t + 100, t3=t + 200, t4=t + ahead + 300)
        for i, t in enumerate(range(SEND_NS - 10_000_000, SEND_NS - 9_000_000, 100_000))
    )
    info = wire.ProbeInfo(id=99, revision=names.PROBE_REVISION, group=1, completed=exchanges,
                          boot_id="transmitter-boot")  # fmt: skip
    p = probe(info=info, send_time_ns=SEND_NS + ahead, total=1)
    answer = step.step(wire.encode_probe(p), STAMP, protocol="websocket", mode="binary")
    assert answer.events == (ProbeAnswered("websocket", "binary", "run-1"),)
    (record,) = step.runs.records("run-1")
    assert record.clock is not None and not record.clock.shared
    # Sent 2 ms before the stamp on the transmitter's clock: raw time is -998 ms.
    m = meta(send_time_ns=STAMP.monotonic_ns + ahead - 2_000_000, total=1)
    outcome = send(step, m)
    assert outcome.error is None
    image = outcome.events[0]
    assert isinstance(image, ImageReceived)
    assert image.raw_ns == -998_000_000
    assert abs(image.transmission_ns - 2_000_000) <= 1000
    assert image.clock_attributes["imgbench.clock.status"] == "corrected"
    assert isinstance(outcome.events[-1], RunCompleted)
    assert outcome.events[-1].clock["status"] == "corrected"
    # An image "sent" 1 ms after its receive time, beyond the bound: refused.
    future = meta(run_id="run-1", repetition=1, total=1,
                  send_time_ns=STAMP.monotonic_ns + ahead + 1_000_000)  # fmt: skip
    step.step(wire.encode_probe(dataclasses.replace(p, repetition=1)), STAMP,
              protocol="websocket", mode="binary")  # fmt: skip
    assert refused(send(step, future))[0] == "clock"


def test_a_late_probe_group_refreshes_a_complete_run() -> None:
    step = new_step()
    m = meta(total=1)
    send(step, m)
    exchanges = tuple(
        wire.Exchange(id=i, group=0, t1=t, t2=t + 100, t3=t + 200, t4=t + 300)
        for i, t in enumerate(range(SEND_NS, SEND_NS + 1_000_000, 100_000))
    )
    info = wire.ProbeInfo(id=1, revision=names.PROBE_REVISION, group=1, completed=exchanges,
                          boot_id=RX_BOOT)  # fmt: skip
    outcome = send_probe(step, probe(info=info, total=1))
    (record,) = step.runs.records("run-1")
    assert outcome.events == (
        ClockEstimated("websocket", "binary", record.clock_dict()),
        ProbeAnswered("websocket", "binary", "run-1"),
    )


def send_probe(step: ReceiverStep, p: wire.ImageMeta) -> Outcome:
    return step.step(wire.encode_probe(p), STAMP, protocol=p.protocol, mode=p.mode)


@pytest.mark.parametrize("field", ["t2", "t3"])
def test_an_impossible_echoed_exchange_is_a_clock_refusal(field: str) -> None:
    step = new_step()
    x = wire.Exchange(id=1, group=0, t1=100, t2=300, t3=200, t4=400)  # t3 before t2
    if field == "t2":
        x = wire.Exchange(id=1, group=0, t1=400, t2=300, t3=350, t4=100)  # t4 before t1
    info = wire.ProbeInfo(id=2, revision=names.PROBE_REVISION, group=1, completed=(x,))
    reason, error = refused(send_probe(step, probe(info=info)))
    assert reason == "clock" and error.startswith("clock: echoed exchange refused:")


def test_t3_is_read_when_the_reply_is_read_not_before() -> None:
    reads = iter(range(T3, T3 + 10))
    step = ReceiverStep(ReceiverSettings(), boot_id=RX_BOOT, read_clock=lambda _: next(reads))
    outcome = send_probe(step, probe())
    first = wire.decode_probe_reply(wire.decode_ack(outcome.ack))
    assert first is not None and first.reply_time_ns == T3
    again = wire.decode_probe_reply(wire.decode_ack(outcome.ack))
    assert again is not None and again.reply_time_ns == T3 + 1


# -- the incremental clock estimate -------------------------------------------------

_exchange = st.tuples(
    st.integers(0, 5),  # group: echoes may arrive for any group, in any order
    st.integers(1, 12),  # probe id: a repeated id replaces the earlier exchange
    st.integers(0, 10**9),  # t1 (ns)
    st.integers(-(10**6), 10**6),  # offset: groups far apart in it disagree (refused)
    st.integers(0, 10**6),  # round trip
)


@settings(max_examples=150, deadline=None)
@given(probes=st.lists(st.lists(_exchange, min_size=1, max_size=3), min_size=1, max_size=12))
def test_the_estimate_after_each_probe_is_estimate_run_of_every_exchange(
    probes: list[list[tuple[int, int, int, int, int]]],
) -> None:
    """The receiver re-estimates only the groups a probe touched; the result (estimate,
    refusal and its message, events) is what estimate_run over every held exchange gives."""
    step = new_step()
    held: dict[int, dict[int, Probe]] = {}
    last_error = ""
    for n, echoed in enumerate(probes):
        completed = []
        for group, probe_id, t1, offset, rtt in echoed:
            t2 = t1 + offset + rtt // 2
            completed.append(wire.Exchange(probe_id, group, t1, t2, t2, t1 + rtt))
        info = wire.ProbeInfo(id=100 + n, revision=names.PROBE_REVISION, group=6,
                              completed=tuple(completed), boot_id="transmitter-boot")  # fmt: skip
        outcome = send_probe(step, probe(info=info, total=5))
        assert outcome.error is None
        for x in completed:
            held.setdefault(x.group, {})[x.id] = Probe(x.t1, x.t2, x.t3, x.t4)
        (record,) = step.runs.records("run-1")
        try:
            expected = estimate_run(
                [list(held[g].values()) for g in sorted(held)],
                transmitter_boot_id="transmitter-boot", receiver_boot_id=RX_BOOT,
            )  # fmt: skip
        except ClockError as exc:
            assert (record.clock, record.clock_error) == (None, str(exc))
            refusals = [e for e in outcome.events if isinstance(e, ClockEstimateRefused)]
            assert len(refusals) == (str(exc) != last_error)
            last_error = str(exc)
        else:
            assert record.clock == expected and record.clock_error == ""
            last_error = ""

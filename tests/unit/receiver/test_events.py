"""The step's values: a stamp on the message's clock, a refusal's ack, a deferred probe reply."""

from __future__ import annotations

import time

from imgbench import wire
from imgbench.errors import DuplicateImage, InvalidField
from receiver.events import Outcome, Refused, Stamp, error_ack


def test_a_stamp_answers_on_the_clock_the_message_names() -> None:
    stamp = Stamp(monotonic_ns=11, realtime_ns=22)
    assert stamp.on(wire.Clock.CLOCK_MONOTONIC) == 11
    assert stamp.on(wire.Clock.CLOCK_REALTIME) == 22
    before_mono, before_wall = time.monotonic_ns(), time.time_ns()
    now = Stamp.now()
    assert before_mono <= now.monotonic_ns <= time.monotonic_ns()
    assert before_wall <= now.realtime_ns <= time.time_ns()


def test_a_refusal_is_acked_with_its_reason_and_detail_and_nothing_else() -> None:
    for exc in (InvalidField("total must be 1..1000000, got 0"), DuplicateImage("seen")):
        ack = wire.decode_ack(error_ack(exc))
        assert ack.error == f"{exc.reason}: {exc}"
        got = (ack.sequence, ack.receive_time_ns, ack.bytes_received, ack.checksum_ok,
               ack.transmission_ns, ack.warmup)  # fmt: skip
        assert got == (0, 0, 0, False, 0, False)


def test_an_outcome_serialises_a_deferred_answer_each_time_it_is_read() -> None:
    calls: list[int] = []

    def answer() -> bytes:
        calls.append(1)
        return bytes([len(calls)])

    deferred = Outcome(answer=answer, events=())
    assert calls == []  # nothing read yet
    assert (deferred.ack, deferred.ack) == (b"\x01", b"\x02")
    error = InvalidField("x")
    refused = Outcome(answer=error_ack(error), events=(Refused("grpc", error),), error=error)
    assert refused.ack == refused.ack == error_ack(error)

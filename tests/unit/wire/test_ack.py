"""The receiver's acknowledgement: every field survives, garbage is refused."""

from __future__ import annotations

import pytest

from imgbench import wire
from imgbench.errors import MalformedMessage


def test_ack_round_trip_and_garbage() -> None:
    raw = wire.encode_ack(
        sequence=4, receive_time_ns=99, bytes_received=7, checksum_ok=True,
        transmission_ns=12, warmup=False,
    )  # fmt: skip
    ack = wire.decode_ack(raw)
    got = (ack.sequence, ack.receive_time_ns, ack.bytes_received, ack.transmission_ns)
    assert got == (4, 99, 7, 12)
    with pytest.raises(MalformedMessage, match=r"^not an Ack: "):
        wire.decode_ack(b"\xff\xff\xff")


def test_ack_round_trip_keeps_every_field() -> None:
    raw = wire.encode_ack(sequence=4, receive_time_ns=99, bytes_received=7, checksum_ok=False,
                          transmission_ns=12, warmup=True, error="checksum mismatch")  # fmt: skip
    ack = wire.decode_ack(raw)
    got = (ack.sequence, ack.receive_time_ns, ack.bytes_received, ack.checksum_ok,
           ack.transmission_ns, ack.warmup, ack.error)  # fmt: skip
    assert got == (4, 99, 7, False, 12, True, "checksum mismatch")
    ok = wire.decode_ack(
        wire.encode_ack(sequence=0, receive_time_ns=1, bytes_received=0, checksum_ok=True,
                        transmission_ns=0, warmup=False)
    )  # fmt: skip
    assert (ok.checksum_ok, ok.warmup, ok.error) == (True, False, "")
    with pytest.raises(MalformedMessage, match=r"^not an Ack: "):
        wire.decode_ack(b"\xff\xff\xff")

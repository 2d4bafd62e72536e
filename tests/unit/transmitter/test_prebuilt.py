"""PrebuiltImage: valid ImageMessages with the image encoded once, header rewritten in place."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest

from imgbench import wire
from imgbench.wire import Clock, ImageMessage, ImageMeta
from imgbench.wire.protowire import varint
from transmitter.prebuilt import SLOT, OneBuffer, PrebuiltImage, padding


def _meta(**overrides: object) -> ImageMeta:
    meta = ImageMeta(
        run_id="run-1", protocol="grpc", mode="unary", sequence=7, total=10,
        send_time_ns=123456789, clock=Clock.CLOCK_MONOTONIC, content_type="image/png",
        sha256=bytes(range(32)), traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        repetition=3,
    )  # fmt: skip
    return replace(meta, **overrides)  # type: ignore[arg-type]


def _header(meta: ImageMeta, data: bytes) -> bytes:
    head, _ = wire.encode_image_parts(meta, data)
    return head[: -1 - len(varint(len(data)))]


@pytest.mark.parametrize("length", [3, 4, 5, 6, 130, 131, 132, 133, 200, SLOT])
def test_padding_has_the_exact_length_and_parses_as_an_unknown_field(length: int) -> None:
    pad = padding(length)
    assert len(pad) == length
    msg = ImageMessage.FromString(pad)
    assert msg.SerializeToString() == pad  # kept as an unknown field
    msg.DiscardUnknownFields()
    assert msg == ImageMessage()  # and nothing else


@pytest.mark.parametrize("size", [1, 127, 128, 70_000, 3 * 2**20 + 5])
def test_messages_equal_protobufs_and_the_receiver_decodes_them(size: int) -> None:
    data = os.urandom(size)
    pre = PrebuiltImage(data)
    metas = [_meta(), _meta(sequence=2**32 - 1, warmup=True, scheduled_time_ns=5)]
    for i, meta in enumerate([*metas, _meta(traceparent="")]):
        message = pre.message(_header(meta, data))
        assert message is not None and len(message) == pre.size
        reference = wire.encode_image(meta, data)
        parsed = ImageMessage.FromString(message)
        parsed.DiscardUnknownFields()
        assert parsed == ImageMessage.FromString(reference)
        decoded, payload = wire.decode_image(
            message, max_bytes=len(message), protocol="grpc", mode="unary"
        )
        assert decoded == meta and bytes(payload) == data
        assert pre.builds == 1, f"send {i} copied the image again"
        if isinstance(payload, memoryview):
            payload.release()  # a view into `message`: it would keep the buffer busy
        del message, payload


def _sequence(message: bytes | None) -> int:
    assert message is not None
    return wire.decode_image(message, max_bytes=10**6, protocol="grpc", mode="unary")[0].sequence


def test_a_message_still_held_elsewhere_is_never_rewritten() -> None:
    data = os.urandom(4096)
    pre = PrebuiltImage(data)
    first = pre.message(_header(_meta(sequence=1), data))
    second = pre.message(_header(_meta(sequence=2), data))  # `first` is still referenced
    assert first is not second and pre.builds == 2
    assert _sequence(first) == 1
    del first
    third = pre.message(_header(_meta(sequence=3), data))
    assert pre.builds == 2  # reused a free buffer
    assert _sequence(third) == 3
    assert _sequence(second) == 2


def test_a_header_too_long_for_the_slot_is_left_to_the_caller() -> None:
    data = b"x" * 10
    assert PrebuiltImage(data).message(b"\x0a" + b"\x7f" + b"r" * SLOT) is None


def test_spares_are_built_at_first_use() -> None:
    data = os.urandom(1000)
    pre = PrebuiltImage(data, spares=2)
    a = pre.message(_header(_meta(sequence=1), data))
    assert pre.builds == 2
    b = pre.message(_header(_meta(sequence=2), data))  # `a` held: the spare serves
    assert a is not b and pre.builds == 2


@pytest.mark.parametrize("size", [0, 1, 128, 3 * 2**20 + 5])
@pytest.mark.parametrize("send_time_ns", [1, 2**35 + 3, time.monotonic_ns(), 2**63 - 1])
def test_ready_writes_only_the_send_time_after_the_stamp(size: int, send_time_ns: int) -> None:
    """OneBuffer.ready lays the message out before the stamp; the function it returns
    writes the send time (of any varint length) into it: the same message, reused."""
    data = os.urandom(size)
    buffers = OneBuffer(limit=64 * 2**20)
    for sequence in range(3):
        meta = _meta(sequence=sequence, send_time_ns=send_time_ns)
        stamped = buffers.ready(wire.HeadTemplate.of(meta, data), data)
        message = stamped(send_time_ns)
        parsed = ImageMessage.FromString(message)
        parsed.DiscardUnknownFields()
        assert parsed == ImageMessage.FromString(wire.encode_image(meta, data))
        decoded, payload = wire.decode_image(
            message, max_bytes=len(message), protocol="grpc", mode="unary"
        )
        assert decoded == meta and bytes(payload) == data
        if isinstance(payload, memoryview):
            payload.release()
        del message, payload, stamped
    if size:
        # The image laid out once; a send time of another varint length than the
        # clock's now takes the slow path, which may build one more.
        assert buffers.prebuilt is not None and buffers.prebuilt.builds <= 2

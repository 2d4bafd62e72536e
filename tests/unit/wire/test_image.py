"""The image message: protobuf's bytes without copying the payload; round trips; limits."""

from __future__ import annotations

import contextlib
import dataclasses
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgbench import wire
from imgbench.errors import MalformedMessage, OversizedMessage, WireError
from imgbench.wire import ImageMessage
from transmitter.senders import payload_size

from helpers.messages import full_image_meta
from helpers.messages import image_meta as meta


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16_383, 16_384, 2**21, 3 * 2**20 + 5])
def test_parts_join_to_what_protobuf_serializes(size: int) -> None:
    data = os.urandom(size)
    meta = full_image_meta(warmup=size % 2 == 0, scheduled_time_ns=size % 3)
    head, body = wire.encode_image_parts(meta, data)
    assert body is data  # not copied
    reference = ImageMessage(
        run_id=meta.run_id, protocol=meta.protocol, mode=meta.mode, sequence=meta.sequence,
        total=meta.total, send_time_ns=meta.send_time_ns, clock=meta.clock,  # type: ignore[arg-type]
        content_type=meta.content_type, sha256=meta.sha256, traceparent=meta.traceparent,
        warmup=meta.warmup, scheduled_time_ns=meta.scheduled_time_ns,
        repetition=meta.repetition, data=data,
    ).SerializeToString()  # fmt: skip
    assert head + body == reference == wire.encode_image(meta, data)
    assert payload_size((head, body)) == len(reference)
    decoded, payload = wire.decode_image(
        reference, max_bytes=len(reference), protocol="websocket", mode="binary"
    )
    assert (decoded, payload) == (meta, data)


@pytest.mark.parametrize("send_time_ns", [1, 127, 128, 2**35 + 3, 2**63 - 1])
@pytest.mark.parametrize("size", [0, 1, 128, 3 * 2**20 + 5])
def test_head_template_is_the_same_message_with_the_send_time_written_last(
    size: int, send_time_ns: int
) -> None:
    """Built before the stamp, the send time appended after it: the same fields."""
    data = os.urandom(size)
    meta = full_image_meta(send_time_ns=send_time_ns, warmup=size % 2 == 0)
    # The template ignores the metadata's own send time: only the one given counts.
    template = wire.HeadTemplate.of(dataclasses.replace(meta, send_time_ns=12345), data)
    head, body = template.parts(send_time_ns, data)
    assert body is data  # not copied
    raw = head + body
    assert len(raw) == len(wire.encode_image(meta, data))
    assert ImageMessage.FromString(raw) == ImageMessage.FromString(wire.encode_image(meta, data))
    decoded, payload = wire.decode_image(
        raw, max_bytes=len(raw), protocol="websocket", mode="binary"
    )
    assert (decoded, payload) == (meta, data)


def test_head_template_refuses_a_negative_send_time() -> None:
    with pytest.raises(ValueError, match="negative"):
        wire.HeadTemplate.of(full_image_meta(), b"x").parts(-1, b"x")


def test_the_payload_is_not_copied() -> None:
    data = os.urandom(2**20)
    raw = wire.encode_image(full_image_meta(), data)
    _, payload = wire.decode_image(raw, max_bytes=len(raw), protocol="websocket", mode="binary")
    assert isinstance(payload, memoryview) and payload.obj is raw and payload.readonly
    assert payload == data


def test_binary_round_trip_keeps_every_field_and_byte() -> None:
    m = meta(warmup=True, sequence=3, scheduled_time_ns=5, repetition=2, send_time_ns=10)
    data = bytes(range(256)) * 100
    got, payload = wire.decode_image(
        wire.encode_image(m, data), max_bytes=10**6, protocol="websocket", mode="binary"
    )
    assert got == m
    assert payload == data


def test_oversized_is_refused_before_parsing() -> None:
    raw = wire.encode_image(meta(), b"x" * 2000)
    with pytest.raises(OversizedMessage, match=r"exceeds the limit of 1000$"):
        wire.decode_image(raw, max_bytes=1000, protocol="websocket", mode="binary")


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_crash_the_decoder(raw: bytes) -> None:
    with contextlib.suppress(WireError):
        wire.decode_image(raw, max_bytes=400, protocol="websocket", mode="binary")


def test_a_message_of_exactly_max_bytes_is_accepted_one_more_is_refused() -> None:
    raw = wire.encode_image(meta(), b"x" * 500)
    _, payload = wire.decode_image(raw, max_bytes=len(raw), protocol="websocket", mode="binary")
    assert bytes(payload) == b"x" * 500
    limit = len(raw) - 1
    with pytest.raises(
        OversizedMessage, match=rf"^message of {len(raw)} bytes exceeds the limit of {limit}$"
    ):
        wire.decode_image(raw, max_bytes=len(raw) - 1, protocol="websocket", mode="binary")


def test_digest_is_sha256() -> None:
    # FIPS 180-2 test vector for "abc".
    assert wire.digest(b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert wire.digest(memoryview(b"abc")) == wire.digest(b"abc")


@pytest.mark.parametrize("raw", [b"\xff\xff\xff", b"\x0a\x05ab", b"garbage"])
def test_bytes_that_are_no_image_message_are_refused_saying_so(raw: bytes) -> None:
    with pytest.raises(MalformedMessage, match=r"^not an ImageMessage: Error parsing message"):
        wire.decode_image(raw, max_bytes=100, protocol="websocket", mode="binary")

"""The wire codec: round trips, validation, and hostile bytes (no sockets)."""

from __future__ import annotations

import base64
import contextlib
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgbench import wire
from imgbench.errors import InvalidField, MalformedMessage, OversizedMessage, WireError


def meta(**kw: object) -> wire.ImageMeta:
    fields: dict[str, object] = dict(
        run_id="run-1", protocol="websocket", mode="binary", sequence=2, total=10,
        send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC,
        content_type="image/png", sha256=wire.digest(b"data"),
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )  # fmt: skip
    fields.update(kw)
    return wire.ImageMeta(**fields)  # type: ignore[arg-type]


def test_binary_round_trip_keeps_every_field_and_byte() -> None:
    m = meta(warmup=True, sequence=3, scheduled_time_ns=5, repetition=2, send_time_ns=10)
    data = bytes(range(256)) * 100
    got, payload = wire.decode_image(
        wire.encode_image(m, data), max_bytes=10**6, protocol="websocket", mode="binary"
    )
    assert got == m
    assert payload == data


def test_json_round_trip_and_its_base64_cost() -> None:
    m = meta(mode="json")
    data = bytes(range(256)) * 300
    text = wire.encode_json_image(m, data)
    assert json.loads(text)["data"] == base64.b64encode(data).decode()
    got, payload = wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")
    assert (got, payload) == (m, data)
    # base64 inflates by 4/3: the cost the json mode is there to show.
    assert len(text) > len(data) * 4 / 3


def test_oversized_is_refused_before_parsing() -> None:
    raw = wire.encode_image(meta(), b"x" * 2000)
    with pytest.raises(OversizedMessage):
        wire.decode_image(raw, max_bytes=1000, protocol="websocket", mode="binary")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"run_id": ""}, "run_id"),
        ({"run_id": "a b"}, "run_id"),
        ({"run_id": "x" * 65}, "run_id"),
        ({"protocol": "grpc"}, "arrived on"),
        ({"mode": "json"}, "arrived on"),
        ({"total": 0}, "total"),
        ({"sequence": 10}, "sequence"),
        ({"clock": 0}, "clock"),
        ({"send_time_ns": 0}, "send_time_ns"),
        ({"sha256": b"short"}, "sha256"),
        ({"content_type": "x" * 101}, "content_type"),
        ({"traceparent": "garbage"}, "traceparent"),
        ({"scheduled_time_ns": 10**18}, "scheduled_time_ns"),
    ],
)
def test_invalid_fields_are_refused_with_a_reason(change: dict[str, object], message: str) -> None:
    raw = wire.encode_image(meta(**change), b"data")
    with pytest.raises(InvalidField, match=message):
        wire.decode_image(raw, max_bytes=10**6, protocol="websocket", mode="binary")


def test_warmup_sequence_may_exceed_total() -> None:
    raw = wire.encode_image(meta(warmup=True, sequence=50, total=10), b"data")
    got, _ = wire.decode_image(raw, max_bytes=10**6, protocol="websocket", mode="binary")
    assert got.warmup and got.sequence == 50


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_crash_the_decoder(raw: bytes) -> None:
    with contextlib.suppress(WireError):
        wire.decode_image(raw, max_bytes=400, protocol="websocket", mode="binary")


@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_json_decoder(text: str) -> None:
    with contextlib.suppress(WireError):
        wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")


def _json_with(**change: object) -> dict[str, object]:
    return {**json.loads(wire.encode_json_image(meta(mode="json"), b"d")), **change}


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"run_id": "r"},
        _json_with(sequence=True),
        _json_with(data="@@not base64"),
        _json_with(sha256="zz"),
    ],
)
def test_malformed_json_messages(obj: object) -> None:
    with pytest.raises(MalformedMessage):
        wire.decode_json_image(json.dumps(obj), max_bytes=10**6, protocol="websocket", mode="json")


def test_ack_round_trip_and_garbage() -> None:
    raw = wire.encode_ack(
        sequence=4, receive_time_ns=99, bytes_received=7, checksum_ok=True,
        transmission_ns=12, warmup=False,
    )  # fmt: skip
    ack = wire.decode_ack(raw)
    got = (ack.sequence, ack.receive_time_ns, ack.bytes_received, ack.transmission_ns)
    assert got == (4, 99, 7, 12)
    with pytest.raises(MalformedMessage):
        wire.decode_ack(b"\xff\xff\xff")


def test_read_clock_uses_the_named_clock() -> None:
    before = time.monotonic_ns()
    assert before <= wire.read_clock(wire.Clock.CLOCK_MONOTONIC) <= time.monotonic_ns()
    assert abs(wire.read_clock(wire.Clock.CLOCK_REALTIME) - time.time_ns()) < 10**9
    with pytest.raises(InvalidField):
        wire.read_clock(0)


def _assembler(max_image: int = 10**6) -> wire.ChunkAssembler:
    return wire.ChunkAssembler(
        max_message_bytes=4096, max_image_bytes=max_image, protocol="grpc", mode="chunked"
    )


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 5000])
def test_chunks_reassemble_to_the_original_bytes(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    m = meta(protocol="grpc", mode="chunked", sha256=wire.digest(data))
    chunks = wire.encode_chunks(m, data, 1000)
    assert len(chunks) == max(1, -(-size // 1000))
    assembler = _assembler()
    done = [assembler.feed(c) for c in chunks]
    assert done == [False] * (len(chunks) - 1) + [True]
    got, payload = assembler.result()
    assert (got, payload) == (m, data)
    assert assembler.message_bytes == sum(len(c) for c in chunks)


def test_chunk_protocol_violations() -> None:
    m = meta(protocol="grpc", mode="chunked")
    first, second = wire.encode_chunks(m, b"x" * 2000, 1000)
    with pytest.raises(InvalidField, match="first chunk"):
        _assembler().feed(second)
    a = _assembler()
    a.feed(first)
    with pytest.raises(InvalidField, match="only the first"):
        a.feed(first)
    a = _assembler()
    a.feed(first)
    with pytest.raises(InvalidField, match="ended after 1000 of 2000"):
        a.result()
    with pytest.raises(OversizedMessage, match="image of 2000 bytes"):
        _assembler(max_image=1999).feed(first)
    with pytest.raises(MalformedMessage):
        _assembler().feed(b"\xff\xff\xff")
    with pytest.raises(OversizedMessage, match="chunk of"):
        _assembler().feed(wire.encode_chunks(m, b"x" * 5000, 5000)[0])
    # A chunk that claims a different transport is refused like a message would be.
    other = wire.encode_chunks(meta(protocol="grpc", mode="unary"), b"x", 10)[0]
    with pytest.raises(InvalidField, match="arrived on"):
        _assembler().feed(other)

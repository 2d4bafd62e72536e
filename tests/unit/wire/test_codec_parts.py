"""encode_image_parts: the same bytes protobuf would produce, without copying the payload."""

from __future__ import annotations

import os

import pytest

from imgbench import wire
from imgbench.errors import InvalidField, MalformedMessage
from imgbench.wire import Clock, ImageMessage, ImageMeta, codec
from transmitter.senders import WS_FRAGMENT_BYTES, _fragments, payload_size


def _meta(size: int, **overrides: object) -> ImageMeta:
    fields: dict[str, object] = {
        "run_id": "run-1",
        "protocol": "websocket",
        "mode": "binary",
        "sequence": 7,
        "total": 10,
        "send_time_ns": 123456789,
        "clock": Clock.CLOCK_MONOTONIC,
        "content_type": "image/png",
        "sha256": bytes(range(32)),
        "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        "warmup": False,
        "scheduled_time_ns": 0,
        "repetition": 3,
    }
    fields.update(overrides)
    return ImageMeta(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16_383, 16_384, 2**21, 3 * 2**20 + 5])
def test_parts_join_to_what_protobuf_serializes(size: int) -> None:
    data = os.urandom(size)
    meta = _meta(size, warmup=size % 2 == 0, scheduled_time_ns=size % 3)
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


def test_websocket_fragments_cover_the_message_in_order() -> None:
    data = os.urandom(3 * WS_FRAGMENT_BYTES + 17)
    head, body = wire.encode_image_parts(_meta(len(data)), data)
    fragments = _fragments(head, body)
    assert fragments[0] == head
    assert all(len(f) <= WS_FRAGMENT_BYTES for f in fragments[1:])
    assert b"".join(fragments) == head + data


def _key(number: int, wire_type: int) -> bytes:
    return codec._varint(number << 3 | wire_type)


def _reference(raw: bytes) -> tuple[str, object]:
    """What decoding with protobuf alone gives: ("ok", (meta, data)) or ("error", class)."""
    try:
        msg = ImageMessage.FromString(raw)
    except Exception as exc:  # DecodeError
        return "error", type(exc).__name__
    return "ok", msg


def _check_against_protobuf(raw: bytes) -> None:
    kind, ref = _reference(raw)
    try:
        meta, data = wire.decode_image(
            raw, max_bytes=len(raw) + 1, protocol="websocket", mode="binary"
        )
    except MalformedMessage:
        assert kind == "error"
        return
    except InvalidField:
        assert kind == "ok"
        return
    assert kind == "ok"
    assert isinstance(ref, ImageMessage)
    assert bytes(data) == ref.data
    assert meta.sequence == ref.sequence and meta.run_id == ref.run_id


def test_decoding_agrees_with_protobuf_on_unusual_encodings() -> None:
    data = os.urandom(1000)
    head, body = wire.encode_image_parts(_meta(len(data)), data)
    data_field = _key(15, 2) + codec._varint(len(body)) + body
    other = _key(15, 2) + codec._varint(3) + b"old"
    unknown = (
        _key(14, 2) + b"\x03xyz" + _key(200, 0) + b"\x96\x01" + _key(201, 5) + b"abcd"
        + _key(202, 1) + b"12345678"
    )  # fmt: skip
    group = _key(300, 3) + _key(1, 0) + b"\x01" + _key(300, 4)
    cases = [
        head + data_field,
        data_field + head,  # data first
        other + head + data_field,  # the last data wins
        head + data_field + other,
        head + unknown + data_field + unknown,
        head + group + data_field,  # groups: protobuf decides
        head + _key(15, 0) + b"\x05",  # data with the wrong wire type
        head + _key(15, 2) + codec._varint(len(body) + 5) + body,  # truncated
        head + data_field[:-1],
        head + _key(15, 2),
        head + b"\xff" * 11,  # overlong varint
        head + _key(0, 0) + b"\x01",  # field number 0
        head + _key(7, 2) + b"\x02\xff\xfe" + data_field,  # content_type not UTF-8
    ]
    for raw in cases:
        _check_against_protobuf(raw)


def test_decoding_agrees_with_protobuf_on_corrupted_bytes() -> None:
    rng = __import__("random").Random(6)
    data = os.urandom(300)
    raw = wire.encode_image(_meta(len(data)), data)
    for _ in range(3000):
        mutated = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        cut = rng.choice([len(mutated), rng.randrange(len(mutated) + 1)])
        _check_against_protobuf(bytes(mutated[:cut]))


def test_the_payload_is_not_copied() -> None:
    data = os.urandom(2**20)
    raw = wire.encode_image(_meta(len(data)), data)
    _, payload = wire.decode_image(raw, max_bytes=len(raw), protocol="websocket", mode="binary")
    assert isinstance(payload, memoryview) and payload.obj is raw and payload.readonly
    assert payload == data

"""The protobuf wire format at byte level: varints, and finding the payload as protobuf would."""

from __future__ import annotations

import os

from imgbench import wire
from imgbench.errors import InvalidField, MalformedMessage
from imgbench.wire import ImageMessage, protowire

from helpers.messages import full_image_meta


def _key(number: int, wire_type: int) -> bytes:
    return protowire.varint(number << 3 | wire_type)


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
    head, body = wire.encode_image_parts(full_image_meta(), data)
    data_field = _key(15, 2) + protowire.varint(len(body)) + body
    other = _key(15, 2) + protowire.varint(3) + b"old"
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
        head + _key(15, 2) + protowire.varint(len(body) + 5) + body,  # truncated
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
    raw = wire.encode_image(full_image_meta(), data)
    for _ in range(3000):
        mutated = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        cut = rng.choice([len(mutated), rng.randrange(len(mutated) + 1)])
        _check_against_protobuf(bytes(mutated[:cut]))


def test_varints_are_base_128_least_significant_group_first() -> None:
    vectors = {0: b"\x00", 1: b"\x01", 127: b"\x7f", 128: b"\x80\x01", 300: b"\xac\x02",
               16_383: b"\xff\x7f", 16_384: b"\x80\x80\x01",
               2**63 - 1: b"\xff" * 8 + b"\x7f"}  # fmt: skip
    for value, encoded in vectors.items():
        assert protowire.varint(value) == encoded
        # What protobuf reads back: send_time_ns (field 5, int64) as this varint.
        assert ImageMessage.FromString(_key(5, 0) + encoded).send_time_ns == value


def test_split_data_finds_the_last_data_field_and_keeps_the_rest() -> None:
    head = _key(1, 2) + b"\x01r" + _key(4, 0) + b"\x05"
    first = _key(15, 2) + b"\x03abc"
    last = _key(15, 2) + b"\x02xy"
    raw = first + head + last
    assert protowire.split_data(raw) == (head, len(raw) - 2, len(raw))
    assert protowire.split_data(head) == (head, 0, 0)  # no data field: an empty range
    assert protowire.split_data(b"") == (b"", 0, 0)


def test_split_data_gives_up_on_anything_unusual() -> None:
    head = _key(1, 2) + b"\x01r"
    for raw in (
        head + _key(15, 2) + b"\x05abc",  # data longer than what is left
        head + _key(1, 2) + b"\x09r",  # another field longer than what is left
        head + _key(15, 0) + b"\x01",  # data with the wrong wire type
        head + _key(300, 3),  # a group
        head + b"\xff" * 10 + b"\x01",  # a key longer than 10 bytes
        head + _key(2, 1) + b"1234567",  # a fixed64 one byte short
        head + _key(2, 5) + b"123",  # a fixed32 one byte short
    ):
        assert protowire.split_data(raw) is None, raw


def test_split_data_steps_over_fixed_width_and_unknown_fields() -> None:
    # Fixed64 and fixed32 fields (unknown to ImageMessage) keep the zero-copy path:
    # the data is found, not handed to protobuf's full parse.
    head = (
        _key(1, 2) + b"\x01r" + _key(202, 1) + b"12345678" + _key(201, 5) + b"abcd"
        + _key(200, 0) + b"\x96\x01"
    )  # fmt: skip
    raw = head + _key(15, 2) + b"\x03img" + _key(203, 5) + b"wxyz"
    tail = _key(203, 5) + b"wxyz"
    assert protowire.split_data(raw) == (head + tail, len(head) + 2, len(head) + 5)
    assert ImageMessage.FromString(raw).data == b"img"
    assert protowire.split_data(head) == (head, 0, 0)


def test_split_data_reads_a_ten_byte_varint_but_no_longer() -> None:
    # A negative int64 (send_time_ns = -1) takes the full 10 bytes; 11 is overlong.
    head = _key(5, 0) + protowire.varint(2**64 - 1)
    assert len(head) == 11 and ImageMessage.FromString(head).send_time_ns == -1
    raw = head + _key(15, 2) + b"\x01x"
    assert protowire.split_data(raw) == (head, len(raw) - 1, len(raw))
    assert protowire.split_data(_key(5, 0) + b"\xff" * 10 + b"\x01") is None

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
    with pytest.raises(OversizedMessage, match=r"exceeds the limit of 1000$"):
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
    with pytest.raises(MalformedMessage, match=r"^not a JSON image message: "):
        wire.decode_json_image(json.dumps(obj), max_bytes=10**6, protocol="websocket", mode="json")


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


def test_read_clock_uses_the_named_clock() -> None:
    before = time.monotonic_ns()
    assert before <= wire.read_clock(wire.Clock.CLOCK_MONOTONIC) <= time.monotonic_ns()
    assert abs(wire.read_clock(wire.Clock.CLOCK_REALTIME) - time.time_ns()) < 10**9
    with pytest.raises(InvalidField, match=r"^unknown clock 0$"):
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
    with pytest.raises(MalformedMessage, match=r"^not an ImageChunk: "):
        _assembler().feed(b"\xff\xff\xff")
    with pytest.raises(OversizedMessage, match="chunk of"):
        _assembler().feed(wire.encode_chunks(m, b"x" * 5000, 5000)[0])
    # A chunk that claims a different transport is refused like a message would be.
    other = wire.encode_chunks(meta(protocol="grpc", mode="unary"), b"x", 10)[0]
    with pytest.raises(InvalidField, match="arrived on"):
        _assembler().feed(other)


# Boundaries, both sides -------------------------------------------------------


def _decode(m: wire.ImageMeta, data: bytes = b"data") -> wire.ImageMeta:
    raw = wire.encode_image(m, data)
    return wire.decode_image(raw, max_bytes=len(raw), protocol=m.protocol, mode=m.mode)[0]


def test_a_message_of_exactly_max_bytes_is_accepted_one_more_is_refused() -> None:
    raw = wire.encode_image(meta(), b"x" * 500)
    _, payload = wire.decode_image(raw, max_bytes=len(raw), protocol="websocket", mode="binary")
    assert bytes(payload) == b"x" * 500
    limit = len(raw) - 1
    with pytest.raises(
        OversizedMessage, match=rf"^message of {len(raw)} bytes exceeds the limit of {limit}$"
    ):
        wire.decode_image(raw, max_bytes=len(raw) - 1, protocol="websocket", mode="binary")


def test_a_json_message_of_exactly_max_bytes_is_accepted_one_more_is_refused() -> None:
    text = wire.encode_json_image(meta(mode="json"), b"x" * 30)
    got, _ = wire.decode_json_image(text, max_bytes=len(text), protocol="websocket", mode="json")
    assert got == meta(mode="json", send_time_ns=got.send_time_ns)
    with pytest.raises(
        OversizedMessage,
        match=rf"^message of {len(text)} characters exceeds the limit of {len(text) - 1}$",
    ):
        wire.decode_json_image(text, max_bytes=len(text) - 1, protocol="websocket", mode="json")


def test_total_bounds_are_inclusive() -> None:
    assert wire.codec.MAX_IMAGES_PER_RUN == 1_000_000
    assert _decode(meta(total=1, sequence=0)).total == 1
    last = _decode(meta(total=1_000_000, sequence=999_999))
    assert (last.total, last.sequence) == (1_000_000, 999_999)
    for bad in (0, 1_000_001):
        with pytest.raises(InvalidField, match=rf"^total must be 1..1000000, got {bad}$"):
            _decode(meta(total=bad, sequence=0))


def test_the_last_sequence_is_total_minus_one() -> None:
    assert _decode(meta(sequence=9, total=10)).sequence == 9
    with pytest.raises(InvalidField, match=r"^sequence 10 is not below total 10$"):
        _decode(meta(sequence=10, total=10))


def test_scheduled_time_may_equal_the_send_time_but_not_follow_it() -> None:
    assert _decode(meta(send_time_ns=100, scheduled_time_ns=100)).start_ns == 100
    assert _decode(meta(send_time_ns=100, scheduled_time_ns=1)).start_ns == 1
    assert _decode(meta(send_time_ns=100, scheduled_time_ns=0)).start_ns == 100
    with pytest.raises(
        InvalidField, match=r"^scheduled_time_ns must be 0 or not after send_time_ns$"
    ):
        _decode(meta(send_time_ns=100, scheduled_time_ns=101))
    with pytest.raises(
        InvalidField, match=r"^scheduled_time_ns must be within 0..9223372036854775807, got -1$"
    ):
        _decode(meta(send_time_ns=100, scheduled_time_ns=-1))


def test_send_time_must_be_positive() -> None:
    assert _decode(meta(send_time_ns=1)).send_time_ns == 1
    with pytest.raises(InvalidField, match=r"^send_time_ns must be positive$"):
        _decode(meta(send_time_ns=0))
    with pytest.raises(
        InvalidField, match=r"^send_time_ns must be within 0..9223372036854775807, got -5$"
    ):
        _decode(meta(send_time_ns=-5))


def test_field_length_limits_are_inclusive() -> None:
    assert _decode(meta(run_id="r" * 64)).run_id == "r" * 64
    assert _decode(meta(run_id="A.b_c-9")).run_id == "A.b_c-9"
    assert _decode(meta(content_type="t" * 100)).content_type == "t" * 100
    with pytest.raises(InvalidField, match=r"^content_type longer than 100 characters$"):
        _decode(meta(content_type="t" * 101))
    for bad in (b"", b"x" * 31, b"x" * 33):
        with pytest.raises(InvalidField, match=r"^sha256 must be 32 bytes$"):
            _decode(meta(sha256=bad))
    why = r"^run_id must be 1-64 characters of \[A-Za-z0-9._-\], not starting with a dot$"
    with pytest.raises(InvalidField, match=why):
        _decode(meta(run_id="a\nb"))


def test_both_clocks_and_no_traceparent_are_accepted() -> None:
    assert _decode(meta(clock=wire.Clock.CLOCK_REALTIME)).clock == wire.Clock.CLOCK_REALTIME
    assert _decode(meta(traceparent="")).traceparent == ""
    with pytest.raises(InvalidField, match=r"^unknown clock 3$"):
        _decode(meta(clock=3))
    with pytest.raises(InvalidField, match=r"^traceparent is not a W3C trace context$"):
        _decode(meta(traceparent="00-" + "A" * 32 + "-" + "b" * 16 + "-01"))  # upper case


def test_protocol_mismatch_names_both_sides() -> None:
    raw = wire.encode_image(meta(protocol="grpc", mode="unary"), b"d")
    with pytest.raises(
        InvalidField, match=r"^message says grpc/unary but arrived on websocket/binary$"
    ):
        wire.decode_image(raw, max_bytes=10**6, protocol="websocket", mode="binary")
    with pytest.raises(InvalidField, match=r"^message says grpc/unary but arrived on grpc/stream$"):
        wire.decode_image(raw, max_bytes=10**6, protocol="grpc", mode="stream")


# The JSON mode: every field survives, negative numbers are refused ------------


def test_json_round_trip_keeps_every_field() -> None:
    m = meta(mode="json", sequence=3, total=9, send_time_ns=10**15, scheduled_time_ns=10**15 - 7,
             repetition=4, warmup=True, clock=wire.Clock.CLOCK_REALTIME, content_type="image/x",
             traceparent="")  # fmt: skip
    data = bytes(range(256))
    text = wire.encode_json_image(m, data)
    obj = json.loads(text)
    # What goes on the wire, field by field (independently of ImageMeta equality).
    assert obj == {
        "run_id": "run-1", "protocol": "websocket", "mode": "json", "sequence": 3, "total": 9,
        "send_time_ns": 10**15, "clock": int(wire.Clock.CLOCK_REALTIME),
        "content_type": "image/x", "sha256": wire.digest(b"data").hex(), "traceparent": "",
        "warmup": True, "scheduled_time_ns": 10**15 - 7, "repetition": 4,
        "data": base64.b64encode(data).decode(),
    }  # fmt: skip
    got, payload = wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")
    assert (got.scheduled_time_ns, got.repetition, got.warmup) == (10**15 - 7, 4, True)
    assert (got.sequence, got.total, got.clock) == (3, 9, wire.Clock.CLOCK_REALTIME)
    assert (got, payload) == (m, data)


@pytest.mark.parametrize(
    "change", [{"sequence": -1}, {"repetition": -1}, {"sequence": -1, "repetition": -1}]
)
def test_json_negative_sequence_or_repetition_is_refused(change: dict[str, int]) -> None:
    text = json.dumps(_json_with(**change))
    with pytest.raises(InvalidField, match=r"^sequence and repetition must not be negative$"):
        wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"warmup": 1}, "field 'warmup' must be bool"),
        ({"sequence": "3"}, "field 'sequence' must be int"),
        ({"total": True}, "field 'total' must be int"),
        ({"run_id": 5}, "field 'run_id' must be str"),
        ({"repetition": 1.0}, "field 'repetition' must be int"),
    ],
)
def test_json_fields_have_their_types(change: dict[str, object], message: str) -> None:
    text = json.dumps(_json_with(**change))
    with pytest.raises(MalformedMessage, match=rf"^not a JSON image message: {message}$"):
        wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")


def test_json_message_is_validated_like_a_binary_one() -> None:
    text = json.dumps(_json_with(total=0))
    with pytest.raises(InvalidField, match=r"^total must be 1..1000000, got 0$"):
        wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="json")
    text = wire.encode_json_image(meta(mode="json"), b"d")
    with pytest.raises(InvalidField, match=r"arrived on websocket/binary$"):
        wire.decode_json_image(text, max_bytes=10**6, protocol="websocket", mode="binary")


# Acks --------------------------------------------------------------------------


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


def test_digest_is_sha256() -> None:
    # FIPS 180-2 test vector for "abc".
    assert wire.digest(b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert wire.digest(memoryview(b"abc")) == wire.digest(b"abc")


# Chunks: limits at the boundary, sizes of the pieces ----------------------------


def test_chunk_pieces_are_at_most_chunk_bytes_and_the_first_carries_the_header() -> None:
    from imgbench.v1.imgbench_pb2 import ImageChunk

    m = meta(protocol="grpc", mode="chunked")
    data = bytes(range(250)) * 10  # 2500 bytes
    chunks = [ImageChunk.FromString(c) for c in wire.encode_chunks(m, data, 1000)]
    assert [len(c.data) for c in chunks] == [1000, 1000, 500]
    assert chunks[0].HasField("header") and chunks[0].total_bytes == 2500
    assert chunks[0].header.run_id == "run-1" and chunks[0].header.data == b""
    assert not any(c.HasField("header") or c.total_bytes for c in chunks[1:])
    assert b"".join(c.data for c in chunks) == data
    one = [ImageChunk.FromString(c) for c in wire.encode_chunks(m, b"abc", 1)]
    assert [c.data for c in one] == [b"a", b"b", b"c"]
    for bad in (0, -1):
        with pytest.raises(ValueError, match=r"^chunk_bytes must be positive$"):
            wire.encode_chunks(m, data, bad)


def test_chunk_of_exactly_max_message_bytes_is_accepted_one_more_is_refused() -> None:
    m = meta(protocol="grpc", mode="chunked")
    (raw,) = wire.encode_chunks(m, b"x" * 300, 1000)
    exact = wire.ChunkAssembler(max_message_bytes=len(raw), max_image_bytes=300,
                                protocol="grpc", mode="chunked")  # fmt: skip
    assert exact.feed(raw) is True and exact.complete
    assert exact.result() == (m, b"x" * 300)
    assert (exact.received, exact.message_bytes) == (300, len(raw))
    short = wire.ChunkAssembler(max_message_bytes=len(raw) - 1, max_image_bytes=300,
                                protocol="grpc", mode="chunked")  # fmt: skip
    with pytest.raises(
        OversizedMessage, match=rf"^chunk of {len(raw)} bytes exceeds the limit of {len(raw) - 1}$"
    ):
        short.feed(raw)


def test_image_of_exactly_max_image_bytes_is_accepted_one_more_is_refused() -> None:
    m = meta(protocol="grpc", mode="chunked")
    chunks = wire.encode_chunks(m, b"y" * 2000, 1000)
    ok = _assembler(max_image=2000)
    assert [ok.feed(c) for c in chunks] == [False, True]
    with pytest.raises(OversizedMessage, match=r"^image of 2000 bytes exceeds the limit of 1999$"):
        _assembler(max_image=1999).feed(chunks[0])


def test_assembler_refuses_more_bytes_than_announced_and_data_in_the_header() -> None:
    from imgbench.v1.imgbench_pb2 import ImageChunk

    m = meta(protocol="grpc", mode="chunked")
    first, second = wire.encode_chunks(m, b"z" * 2000, 1000)
    a = _assembler()
    assert a.feed(first) is False and not a.complete
    assert len(ImageChunk.FromString(second).data) == 1000
    with pytest.raises(InvalidField, match=r"^more than the announced 2000 bytes$"):
        a.feed(ImageChunk(data=b"z" * 1001).SerializeToString())
    header = ImageChunk.FromString(first)
    header.header.data = b"sneaky"
    with pytest.raises(InvalidField, match=r"^the header must not carry data: chunks do$"):
        _assembler().feed(header.SerializeToString())
    with pytest.raises(MalformedMessage, match=r"^not an ImageChunk: "):
        _assembler().feed(b"\xff\xff\xff")


def test_an_assembler_with_nothing_fed_has_no_result() -> None:
    a = _assembler()
    assert not a.complete and (a.received, a.message_bytes) == (0, 0)
    with pytest.raises(InvalidField, match=r"^upload ended after 0 of 0 announced bytes$"):
        a.result()


def test_an_empty_image_is_one_chunk_and_complete() -> None:
    m = meta(protocol="grpc", mode="chunked", sha256=wire.digest(b""))
    (only,) = wire.encode_chunks(m, b"", 1000)
    a = _assembler()
    assert a.feed(only) is True and a.complete
    assert a.result() == (m, b"")


def test_only_the_first_chunk_may_announce_a_total() -> None:
    from imgbench.v1.imgbench_pb2 import ImageChunk

    m = meta(protocol="grpc", mode="chunked")
    first, _ = wire.encode_chunks(m, b"q" * 2000, 1000)
    a = _assembler()
    a.feed(first)
    later = ImageChunk(total_bytes=2000, data=b"q" * 1000).SerializeToString()  # no header
    with pytest.raises(InvalidField, match=r"^only the first chunk may carry the header$"):
        a.feed(later)
    with pytest.raises(InvalidField, match=r"^only the first chunk may carry the header$"):
        a.feed(first)


def test_image_buffers_from_one_mib_are_mappings_of_their_own() -> None:
    import mmap

    from imgbench.wire.codec import MAPPED_IMAGE_BYTES, _image_buffer

    assert MAPPED_IMAGE_BYTES == 1024 * 1024
    small = _image_buffer(MAPPED_IMAGE_BYTES - 1)
    assert type(small) is bytearray and len(small) == MAPPED_IMAGE_BYTES - 1
    assert small[0] == small[-1] == 0
    for size in (MAPPED_IMAGE_BYTES, MAPPED_IMAGE_BYTES + 1):
        big = _image_buffer(size)
        assert isinstance(big, mmap.mmap) and len(big) == size
        assert big[0] == big[size - 1] == 0
        big.close()
    assert _image_buffer(0) == bytearray()

"""What a receiver accepts: every field check, at its boundary on both sides."""

from __future__ import annotations

import pytest

from imgbench import wire
from imgbench.errors import InvalidField
from imgbench.wire import validation

from helpers.messages import image_meta as meta


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


def _decode(m: wire.ImageMeta, data: bytes = b"data") -> wire.ImageMeta:
    raw = wire.encode_image(m, data)
    return wire.decode_image(raw, max_bytes=len(raw), protocol=m.protocol, mode=m.mode)[0]


def test_total_bounds_are_inclusive() -> None:
    assert validation.MAX_IMAGES_PER_RUN == 1_000_000
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


def test_integer_ranges_are_inclusive_and_name_the_field() -> None:
    # JSON carries unbounded integers: validate() is what keeps them in protobuf's range.
    uint32, int64 = 2**32 - 1, 2**63 - 1
    validation.validate(meta(repetition=uint32), protocol="websocket", mode="binary")
    validation.validate(
        meta(warmup=True, sequence=uint32, send_time_ns=int64, scheduled_time_ns=int64),
        protocol="websocket",
        mode="binary",
    )
    for change, message in (
        ({"sequence": -1}, "sequence must be within 0..4294967295, got -1"),
        ({"warmup": True, "sequence": uint32 + 1}, f"sequence must be within 0..{uint32}, got"),
        ({"repetition": uint32 + 1}, f"repetition must be within 0..{uint32}, got {uint32 + 1}"),
        ({"repetition": -1}, "repetition must be within 0..4294967295, got -1"),
        ({"send_time_ns": int64 + 1}, f"send_time_ns must be within 0..{int64}, got"),
        ({"scheduled_time_ns": -1}, f"scheduled_time_ns must be within 0..{int64}, got -1"),
    ):
        with pytest.raises(InvalidField, match=f"^{message}"):
            validation.validate(meta(**change), protocol="websocket", mode="binary")

"""Clock probes on the wire (contract revision 2): encode, decode, refuse; reading a clock."""

from __future__ import annotations

import time

import pytest

from imgbench import wire
from imgbench.errors import InvalidField
from imgbench.v1.imgbench_pb2 import ImageMessage
from imgbench.wire import names, protowire, validation


def probe_meta(**kw: object) -> wire.ImageMeta:
    fields: dict[str, object] = dict(
        run_id="r-1", protocol="websocket", mode="binary", sequence=0, total=3,
        send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC,
        content_type="", sha256=b"", repetition=2,
        probe=wire.ProbeInfo(
            id=7, revision=names.PROBE_REVISION, group=1, boot_id="abc",
            completed=(wire.Exchange(6, 1, 10, 20, 21, 40),),
        ),
    )  # fmt: skip
    fields.update(kw)
    return wire.ImageMeta(**fields)  # type: ignore[arg-type]


def test_probe_round_trip_keeps_every_field() -> None:
    meta = probe_meta()
    decoded, data = wire.decode_image(
        wire.encode_probe(meta), max_bytes=1000, protocol="websocket", mode="binary"
    )
    assert decoded == meta
    assert bytes(data) == b""


def test_chunked_run_probes_through_send() -> None:
    meta = probe_meta(protocol="grpc", mode="chunked")
    raw = wire.encode_probe(meta)
    decoded, _ = wire.decode_image(raw, max_bytes=1000, protocol="grpc", mode="unary")
    assert decoded.mode == "chunked" and decoded.probe is not None
    with pytest.raises(InvalidField, match="arrived on"):
        wire.decode_image(raw, max_bytes=1000, protocol="grpc", mode="stream")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"sha256": b"x" * 32}, "carries no image"),
        ({"sequence": 1}, "carries no image"),
        ({"warmup": True}, "carries no image"),
        ({"send_time_ns": 0}, "t1"),
        ({"clock": 0}, "unknown clock"),
        ({"total": 0}, "total"),
        ({"run_id": "bad id"}, "run_id"),
        ({"probe": wire.ProbeInfo(id=1, revision=1, group=0)}, "revision"),
    ],
)
def test_bad_probes_are_refused(change: dict[str, object], match: str) -> None:
    raw = wire.ImageMessage.FromString(
        wire.encode_probe(probe_meta(sha256=b""))
    )  # a probe, then the field that makes it bad
    meta = probe_meta(**change)
    msg = ImageMessage.FromString(wire.encode_image(meta, b""))
    assert raw.HasField("probe")
    with pytest.raises(InvalidField, match=match):
        wire.decode_image(
            msg.SerializeToString(), max_bytes=1000, protocol="websocket", mode="binary"
        )


def test_probe_with_image_data_is_refused() -> None:
    raw = wire.encode_probe(probe_meta()) + wire.encode_image_parts(probe_meta(), b"img")[0][-2:]
    msg = ImageMessage.FromString(wire.encode_probe(probe_meta()))
    msg.data = b"image bytes"
    with pytest.raises(InvalidField, match="must not carry image data"):
        wire.decode_image(
            msg.SerializeToString(), max_bytes=1000, protocol="websocket", mode="binary"
        )
    assert raw


def test_probe_reply_round_trip() -> None:
    raw = wire.encode_probe_reply(
        id=9, receive_time_ns=100, reply_time_ns=105, clock=wire.Clock.CLOCK_MONOTONIC, boot_id="b"
    )
    ack = wire.decode_ack(raw)
    assert wire.decode_probe_reply(ack) == wire.ProbeReply(
        id=9, receive_time_ns=100, reply_time_ns=105, clock=wire.Clock.CLOCK_MONOTONIC,
        boot_id="b", revision=names.PROBE_REVISION,
    )  # fmt: skip
    assert ack.sequence == 0 and not ack.error


def test_an_image_ack_has_no_probe_reply() -> None:
    raw = wire.encode_ack(
        sequence=1, receive_time_ns=1, bytes_received=1, checksum_ok=True,
        transmission_ns=1, warmup=False,
    )  # fmt: skip
    ack = wire.decode_ack(raw)
    assert wire.decode_probe_reply(ack) is None


def test_encode_probe_needs_a_probe() -> None:
    with pytest.raises(ValueError, match=r"^a clock probe needs meta.probe and no sha256$"):
        wire.encode_probe(probe_meta(probe=None))
    with pytest.raises(ValueError, match=r"^a clock probe needs meta.probe and no sha256$"):
        wire.encode_probe(probe_meta(sha256=b"x" * 32))


# Probe limits at the boundary, both sides --------------------------------------


def _probe_decode(
    meta: wire.ImageMeta, protocol: str = "websocket", mode: str = "binary"
) -> wire.ImageMeta:
    raw = wire.ImageMessage.FromString(wire.encode_image(meta, b"")).SerializeToString()
    return wire.decode_image(raw, max_bytes=len(raw), protocol=protocol, mode=mode)[0]


def _info(**kw: object) -> wire.ProbeInfo:
    fields: dict[str, object] = dict(id=7, revision=names.PROBE_REVISION, group=1)
    fields.update(kw)
    return wire.ProbeInfo(**fields)  # type: ignore[arg-type]


def test_probe_limits_are_inclusive() -> None:
    assert validation.MAX_ECHOED_EXCHANGES == 4096
    many = tuple(wire.Exchange(i, 0, 1, 2, 3, 4) for i in range(4096))
    got = _probe_decode(probe_meta(probe=_info(completed=many, boot_id="b" * 64)))
    assert got.probe is not None
    assert (len(got.probe.completed), got.probe.boot_id) == (4096, "b" * 64)
    with pytest.raises(InvalidField, match=r"^4097 echoed exchanges, more than 4096$"):
        _probe_decode(probe_meta(probe=_info(completed=(*many, many[0]))))
    with pytest.raises(InvalidField, match=r"^boot_id longer than 64 characters$"):
        _probe_decode(probe_meta(probe=_info(boot_id="b" * 65)))
    last = _probe_decode(probe_meta(total=1_000_000))
    assert last.total == 1_000_000
    assert _probe_decode(probe_meta(total=1)).total == 1  # a one-image run probes too
    for bad in (0, 1_000_001):
        with pytest.raises(InvalidField, match=rf"^total must be 1..1000000, got {bad}$"):
            _probe_decode(probe_meta(total=bad))


def test_probe_revision_at_least_the_current_one() -> None:
    for revision in (names.PROBE_REVISION, names.PROBE_REVISION + 1):
        got = _probe_decode(probe_meta(probe=_info(revision=revision)))
        assert got.probe is not None and got.probe.revision == revision
    old = names.PROBE_REVISION - 1
    with pytest.raises(
        InvalidField, match=rf"^probe revision {old} is below {names.PROBE_REVISION}$"
    ):
        _probe_decode(probe_meta(probe=_info(revision=old)))


def test_probe_fields_accepted_and_refused_with_their_message() -> None:
    assert _probe_decode(probe_meta(send_time_ns=1)).send_time_ns == 1
    real = _probe_decode(probe_meta(clock=wire.Clock.CLOCK_REALTIME))
    assert real.clock == wire.Clock.CLOCK_REALTIME
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert _probe_decode(probe_meta(traceparent=tp)).traceparent == tp
    assert _probe_decode(probe_meta(traceparent="")).traceparent == ""
    with pytest.raises(InvalidField, match=r"^traceparent is not a W3C trace context$"):
        _probe_decode(probe_meta(traceparent="garbage"))
    with pytest.raises(InvalidField, match=r"^send_time_ns \(t1\) must be positive$"):
        _probe_decode(probe_meta(send_time_ns=0))
    with pytest.raises(InvalidField, match=r"^unknown clock 3$"):
        _probe_decode(probe_meta(clock=3))
    no_image = (
        r"^a clock probe carries no image: sha256 empty, sequence 0, warmup false,"
        r" scheduled_time_ns 0$"
    )
    for change in ({"scheduled_time_ns": 1}, {"sequence": 1}, {"warmup": True},
                   {"sha256": b"x" * 32}):  # fmt: skip
        with pytest.raises(InvalidField, match=no_image):
            _probe_decode(probe_meta(**change))


def test_probe_transport_mismatch_names_both_sides() -> None:
    with pytest.raises(
        InvalidField, match=r"^probe says websocket/binary but arrived on grpc/unary$"
    ):
        _probe_decode(probe_meta(), protocol="grpc", mode="unary")
    with pytest.raises(
        InvalidField, match=r"^probe says grpc/chunked but arrived on grpc/chunked$"
    ):
        _probe_decode(probe_meta(protocol="grpc", mode="chunked"), protocol="grpc", mode="chunked")
    got = _probe_decode(probe_meta(protocol="grpc", mode="stream"), protocol="grpc", mode="stream")
    assert got.mode == "stream"


def test_read_clock_uses_the_named_clock() -> None:
    before = time.monotonic_ns()
    assert before <= wire.read_clock(wire.Clock.CLOCK_MONOTONIC) <= time.monotonic_ns()
    assert abs(wire.read_clock(wire.Clock.CLOCK_REALTIME) - time.time_ns()) < 10**9
    with pytest.raises(InvalidField, match=r"^unknown clock 0$"):
        wire.read_clock(0)


@pytest.mark.parametrize("group", [False, True])
def test_probe_with_image_data_is_refused_in_any_encoding(group: bool) -> None:
    msg = ImageMessage.FromString(wire.encode_probe(probe_meta()))
    msg.data = b"image bytes"
    raw = msg.SerializeToString()
    if group:
        # An unknown group field (number 100): protowire.split_data gives up and
        # protobuf parses the whole message; the data must still be noticed.
        raw += b"\xa3\x06\xa4\x06"
        assert protowire.split_data(raw) is None
    with pytest.raises(InvalidField, match=r"^a clock probe must not carry image data$"):
        wire.decode_image(raw, max_bytes=1000, protocol="websocket", mode="binary")

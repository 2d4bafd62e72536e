"""encode_image_parts: the same bytes protobuf would produce, without copying the payload."""

from __future__ import annotations

import os

import pytest

from imgbench import wire
from imgbench.wire import Clock, ImageMessage, ImageMeta
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

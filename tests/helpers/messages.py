"""Wire messages for tests: a valid image's metadata, changed field by field."""

from __future__ import annotations

import time

from imgbench import wire


def image_meta(**kw: object) -> wire.ImageMeta:
    """A valid image send's metadata (websocket/binary, sequence 2 of 10), ``kw`` changed."""
    fields: dict[str, object] = dict(
        run_id="run-1", protocol="websocket", mode="binary", sequence=2, total=10,
        send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC,
        content_type="image/png", sha256=wire.digest(b"data"),
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )  # fmt: skip
    fields.update(kw)
    return wire.ImageMeta(**fields)  # type: ignore[arg-type]


def full_image_meta(**kw: object) -> wire.ImageMeta:
    """Metadata with every field set to a fixed value that is not its default, ``kw`` changed.

    For byte-level tests: a field the encoder dropped, or the zero-copy split misplaced,
    shows up as a difference.
    """
    fields: dict[str, object] = {
        "run_id": "run-1",
        "protocol": "websocket",
        "mode": "binary",
        "sequence": 7,
        "total": 10,
        "send_time_ns": 123456789,
        "clock": wire.Clock.CLOCK_MONOTONIC,
        "content_type": "image/png",
        "sha256": bytes(range(32)),
        "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        "warmup": False,
        "scheduled_time_ns": 0,
        "repetition": 3,
    }
    fields.update(kw)
    return wire.ImageMeta(**fields)  # type: ignore[arg-type]

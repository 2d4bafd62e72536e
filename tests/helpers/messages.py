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

"""What a receiver accepts: the field checks every decoder applies, and their limits.

Hostile or broken input turns into an :class:`~imgbench.errors.InvalidField`
(a :class:`~imgbench.errors.WireError` with a bounded ``reason`` label) instead of
a crash, an unbounded metric label or an absurd figure. Pure, no I/O.
"""

from __future__ import annotations

import re
from typing import Final

from imgbench.errors import InvalidField
from imgbench.v1.imgbench_pb2 import Clock
from imgbench.wire import names
from imgbench.wire.meta import ImageMeta

__all__ = ["MAX_ECHOED_EXCHANGES", "MAX_IMAGES_PER_RUN", "validate"]

#: Upper bound on images per run accepted from the wire.
MAX_IMAGES_PER_RUN: Final = 1_000_000
#: A run id names a directory under RECEIVER_SAVE_DIR, so it must not start with a
#: dot: that refuses "." and ".." (path traversal) and hidden names alike.
_RUN_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_SHA256_LEN: Final = 32
_UINT32: Final = 2**32 - 1
_INT64: Final = 2**63 - 1

#: Most completed exchanges one probe may echo (a run's probes fit many times over).
MAX_ECHOED_EXCHANGES: Final = 4096
#: Longest boot id accepted (a Linux boot id is a 36-character UUID).
_BOOT_ID_MAX: Final = 64


def validate(meta: ImageMeta, *, protocol: str, mode: str) -> None:
    """Raise :class:`InvalidField` unless ``meta`` is acceptable on ``protocol``/``mode``.

    A clock probe (``meta.probe`` set) is checked as a probe: run fields, clock
    and t1 as for an image, but no sha256, sequence 0, not warm-up, no
    scheduled time; it may arrive on its run's probe method
    (:data:`~imgbench.wire.names.PROBE_MODE_OF`: a chunked run probes through Send).
    """
    if not _RUN_ID.match(meta.run_id):
        raise InvalidField(
            "run_id must be 1-64 characters of [A-Za-z0-9._-], not starting with a dot"
        )
    if meta.probe is not None:
        _validate_probe(meta, protocol=protocol, mode=mode)
        return
    if meta.protocol != protocol or meta.mode != mode:
        raise InvalidField(
            f"message says {meta.protocol}/{meta.mode} but arrived on {protocol}/{mode}"
        )
    # JSON carries unbounded integers; protobuf's types do not. Out of range, the
    # Ack could not even be encoded, and an absurd time would become a figure.
    for name, value, high in (
        ("sequence", meta.sequence, _UINT32),
        ("repetition", meta.repetition, _UINT32),
        ("send_time_ns", meta.send_time_ns, _INT64),
        ("scheduled_time_ns", meta.scheduled_time_ns, _INT64),
    ):
        if not 0 <= value <= high:
            raise InvalidField(f"{name} must be within 0..{high}, got {value}")
    if not 1 <= meta.total <= MAX_IMAGES_PER_RUN:
        raise InvalidField(f"total must be 1..{MAX_IMAGES_PER_RUN}, got {meta.total}")
    if not meta.warmup and meta.sequence >= meta.total:
        raise InvalidField(f"sequence {meta.sequence} is not below total {meta.total}")
    if meta.clock not in (Clock.CLOCK_MONOTONIC, Clock.CLOCK_REALTIME):
        raise InvalidField(f"unknown clock {meta.clock}")
    if meta.send_time_ns <= 0:
        raise InvalidField("send_time_ns must be positive")
    if meta.scheduled_time_ns < 0 or meta.scheduled_time_ns > meta.send_time_ns:
        raise InvalidField("scheduled_time_ns must be 0 or not after send_time_ns")
    if len(meta.sha256) != _SHA256_LEN:
        raise InvalidField("sha256 must be 32 bytes")
    if len(meta.content_type) > 100:
        raise InvalidField("content_type longer than 100 characters")
    if meta.traceparent and not _TRACEPARENT.match(meta.traceparent):
        raise InvalidField("traceparent is not a W3C trace context")


def _validate_probe(meta: ImageMeta, *, protocol: str, mode: str) -> None:
    probe = meta.probe
    assert probe is not None
    arrives_on = names.PROBE_MODE_OF.get(meta.mode, meta.mode)
    if meta.protocol != protocol or arrives_on != mode:
        raise InvalidField(
            f"probe says {meta.protocol}/{meta.mode} but arrived on {protocol}/{mode}"
        )
    if not 1 <= meta.total <= MAX_IMAGES_PER_RUN:
        raise InvalidField(f"total must be 1..{MAX_IMAGES_PER_RUN}, got {meta.total}")
    if meta.clock not in (Clock.CLOCK_MONOTONIC, Clock.CLOCK_REALTIME):
        raise InvalidField(f"unknown clock {meta.clock}")
    if meta.send_time_ns <= 0:
        raise InvalidField("send_time_ns (t1) must be positive")
    if meta.sha256 or meta.sequence or meta.warmup or meta.scheduled_time_ns:
        raise InvalidField(
            "a clock probe carries no image: sha256 empty, sequence 0, warmup false,"
            " scheduled_time_ns 0"
        )
    if probe.revision < names.PROBE_REVISION:
        raise InvalidField(f"probe revision {probe.revision} is below {names.PROBE_REVISION}")
    if len(probe.completed) > MAX_ECHOED_EXCHANGES:
        raise InvalidField(
            f"{len(probe.completed)} echoed exchanges, more than {MAX_ECHOED_EXCHANGES}"
        )
    if len(probe.boot_id) > _BOOT_ID_MAX:
        raise InvalidField(f"boot_id longer than {_BOOT_ID_MAX} characters")
    if len(meta.traceparent) and not _TRACEPARENT.match(meta.traceparent):
        raise InvalidField("traceparent is not a W3C trace context")

"""What one send says about itself besides its payload, and its protobuf form.

:class:`ImageMeta` is every field of an ``ImageMessage`` except ``data``; a clock
probe is an ImageMeta with :class:`ProbeInfo` set and no image. :func:`to_message`
and :func:`from_message` convert to and from the generated protobuf class, so the
whole message (:mod:`imgbench.wire.image`) and the first upload chunk
(:mod:`imgbench.wire.chunks`) carry the same header. Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from imgbench.v1.imgbench_pb2 import ClockExchange, ClockProbe, ImageMessage

__all__ = [
    "MODES",
    "PROTOCOLS",
    "Exchange",
    "ImageMeta",
    "ProbeInfo",
    "from_message",
    "to_message",
]

#: Transport labels, and the modes each one supports (first = default).
PROTOCOLS: Final = ("websocket", "grpc")
MODES: Final[dict[str, tuple[str, ...]]] = {
    "websocket": ("binary", "json"),
    "grpc": ("unary", "stream", "chunked"),
}


@dataclass(frozen=True, slots=True)
class Exchange:
    """One completed clock probe exchange as echoed by the transmitter (``ClockExchange``).

    Integer nanoseconds: ``t1``/``t4`` on the transmitter's clock, ``t2``/``t3``
    on the receiver's. Not checked here: :class:`imgbench.measure.clock.Probe`
    refuses impossible stamps.
    """

    id: int
    group: int
    t1: int
    t2: int
    t3: int
    t4: int


@dataclass(frozen=True, slots=True)
class ProbeInfo:
    """The ``ClockProbe`` of a probe message (revision 2); t1 is ``ImageMeta.send_time_ns``."""

    id: int
    revision: int
    group: int
    completed: tuple[Exchange, ...] = ()
    #: The transmitter's kernel boot id, empty when unknown.
    boot_id: str = ""
    #: The transmitter's CLOCK_REALTIME read right after t1 (ns), 0 when not sent.
    realtime_ns: int = 0


@dataclass(frozen=True, slots=True)
class ImageMeta:
    """Everything about one send except the payload itself.

    ``probe`` is set on a clock probe, which carries no image (``sha256`` empty).
    """

    run_id: str
    protocol: str
    mode: str
    sequence: int
    total: int
    send_time_ns: int
    clock: int
    content_type: str
    sha256: bytes
    traceparent: str = ""
    warmup: bool = False
    #: 0 means "same as send_time_ns" (closed loop).
    scheduled_time_ns: int = 0
    repetition: int = 0
    probe: ProbeInfo | None = None

    @property
    def start_ns(self) -> int:
        """Where transmission time counts from: the scheduled send time."""
        return self.scheduled_time_ns or self.send_time_ns


def to_message(meta: ImageMeta) -> ImageMessage:
    """The ``ImageMessage`` of ``meta``, without ``data`` (not validated)."""
    return ImageMessage(
        run_id=meta.run_id,
        protocol=meta.protocol,
        mode=meta.mode,
        sequence=meta.sequence,
        total=meta.total,
        send_time_ns=meta.send_time_ns,
        clock=meta.clock,  # type: ignore[arg-type]
        content_type=meta.content_type,
        sha256=meta.sha256,
        traceparent=meta.traceparent,
        warmup=meta.warmup,
        scheduled_time_ns=meta.scheduled_time_ns,
        repetition=meta.repetition,
        probe=None if meta.probe is None else _probe_message(meta.probe),
    )


def _probe_message(info: ProbeInfo) -> ClockProbe:
    return ClockProbe(
        id=info.id,
        revision=info.revision,
        group=info.group,
        boot_id=info.boot_id,
        realtime_ns=info.realtime_ns,
        completed=[
            ClockExchange(id=x.id, group=x.group, t1_ns=x.t1, t2_ns=x.t2, t3_ns=x.t3, t4_ns=x.t4)
            for x in info.completed
        ],
    )


def from_message(msg: ImageMessage) -> ImageMeta:
    """The fields of ``msg`` other than ``data``, as they came (validate them before use)."""
    probe = None
    if msg.HasField("probe"):
        p = msg.probe
        probe = ProbeInfo(
            id=p.id,
            revision=p.revision,
            group=p.group,
            completed=tuple(
                Exchange(x.id, x.group, x.t1_ns, x.t2_ns, x.t3_ns, x.t4_ns) for x in p.completed
            ),
            boot_id=p.boot_id,
            realtime_ns=p.realtime_ns,
        )
    return ImageMeta(
        probe=probe,
        run_id=msg.run_id,
        protocol=msg.protocol,
        mode=msg.mode,
        sequence=msg.sequence,
        total=msg.total,
        send_time_ns=msg.send_time_ns,
        clock=msg.clock,
        content_type=msg.content_type,
        sha256=msg.sha256,
        traceparent=msg.traceparent,
        warmup=msg.warmup,
        scheduled_time_ns=msg.scheduled_time_ns,
        repetition=msg.repetition,
    )

"""Clock probes on the wire: the probe message, the receiver's reply, the clocks read.

A probe is an ``ImageMessage`` with ``probe`` set and no image; its ``send_time_ns``
is t1. The receiver answers with an ``Ack`` whose only field is ``probe_reply``
(t2, t3). :mod:`imgbench.measure.clock` turns the exchanges into an offset
estimate. Pure, no I/O (reading a clock is not I/O).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from imgbench.errors import InvalidField
from imgbench.v1.imgbench_pb2 import Ack, Clock, ClockProbeReply
from imgbench.wire import names
from imgbench.wire.meta import ImageMeta, to_message

__all__ = ["ProbeReply", "decode_probe_reply", "encode_probe", "encode_probe_reply", "read_clock"]


def read_clock(clock: int) -> int:
    """Return the current time in nanoseconds on ``clock`` (a :class:`Clock` value)."""
    if clock == Clock.CLOCK_MONOTONIC:
        return time.monotonic_ns()
    if clock == Clock.CLOCK_REALTIME:
        return time.time_ns()
    raise InvalidField(f"unknown clock {clock}")


@dataclass(frozen=True, slots=True)
class ProbeReply:
    """The receiver's half of an exchange (``ClockProbeReply``): t2, t3 in ns on ``clock``."""

    id: int
    receive_time_ns: int
    reply_time_ns: int
    clock: int
    boot_id: str
    revision: int


def encode_probe(meta: ImageMeta) -> bytes:
    """Serialize a clock probe: ``meta.probe`` set, no image, ``send_time_ns`` = t1.

    Read t1 just before calling this (serialising a probe takes microseconds).
    """
    if meta.probe is None or meta.sha256:
        raise ValueError("a clock probe needs meta.probe and no sha256")
    return to_message(meta).SerializeToString()


def encode_probe_reply(
    *, id: int, receive_time_ns: int, reply_time_ns: int, clock: int, boot_id: str
) -> bytes:
    """The Ack answering a clock probe: only ``probe_reply`` set (t2, t3, boot id, revision).

    Read ``reply_time_ns`` (t3) immediately before calling this.
    """
    return Ack(
        probe_reply=ClockProbeReply(
            id=id,
            receive_time_ns=receive_time_ns,
            reply_time_ns=reply_time_ns,
            clock=clock,  # type: ignore[arg-type]
            boot_id=boot_id,
            revision=names.PROBE_REVISION,
        )
    ).SerializeToString()


def decode_probe_reply(ack: Ack) -> ProbeReply | None:
    """The probe reply in ``ack``, or None (a revision-1 receiver, or a refusal)."""
    if not ack.HasField("probe_reply"):
        return None
    r = ack.probe_reply
    return ProbeReply(
        id=r.id,
        receive_time_ns=r.receive_time_ns,
        reply_time_ns=r.reply_time_ns,
        clock=r.clock,
        boot_id=r.boot_id,
        revision=r.revision,
    )

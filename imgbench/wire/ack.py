"""The receiver's acknowledgement of one image (``Ack``), both ways. Pure, no I/O.

A probe's ``Ack`` (only ``probe_reply`` set) is written by
:func:`imgbench.wire.probe.encode_probe_reply`; :func:`decode_ack` parses either.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from imgbench.errors import MalformedMessage
from imgbench.v1.imgbench_pb2 import Ack

__all__ = ["decode_ack", "encode_ack"]


def encode_ack(
    *,
    sequence: int,
    receive_time_ns: int,
    bytes_received: int,
    checksum_ok: bool,
    transmission_ns: int,
    warmup: bool,
    error: str = "",
) -> bytes:
    """Serialize the receiver's acknowledgement of one image."""
    return Ack(
        sequence=sequence,
        receive_time_ns=receive_time_ns,
        bytes_received=bytes_received,
        checksum_ok=checksum_ok,
        transmission_ns=transmission_ns,
        warmup=warmup,
        error=error,
    ).SerializeToString()


def decode_ack(raw: bytes) -> Ack:
    """Parse an Ack; raises :class:`MalformedMessage` on bad bytes."""
    try:
        return Ack.FromString(raw)
    except (DecodeError, ValueError) as exc:
        raise MalformedMessage(f"not an Ack: {exc}") from exc

"""The wire codec: pure functions, no I/O.

Both transports carry the same serialized :class:`ImageMessage` bytes (the
WebSocket ``json`` mode is the one deliberate exception, kept to show what
base64-in-JSON costs). Decoding validates every field a receiver relies on, so
that hostile or broken input turns into a :class:`~imgbench.errors.WireError`
with a bounded ``reason`` label instead of a crash or an unbounded metric label.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mmap
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf.message import DecodeError

from imgbench.errors import InvalidField, MalformedMessage, OversizedMessage
from imgbench.v1.imgbench_pb2 import (
    Ack,
    Clock,
    ClockExchange,
    ClockProbe,
    ClockProbeReply,
    ImageChunk,
    ImageMessage,
)
from imgbench.wire import names

__all__ = [
    "MODES",
    "PROTOCOLS",
    "Ack",
    "ChunkAssembler",
    "Clock",
    "Exchange",
    "ImageMessage",
    "ImageMeta",
    "ProbeInfo",
    "ProbeReply",
    "decode_ack",
    "decode_image",
    "decode_json_image",
    "decode_probe_reply",
    "digest",
    "encode_ack",
    "encode_chunks",
    "encode_image",
    "encode_image_parts",
    "encode_json_image",
    "encode_probe",
    "encode_probe_reply",
    "read_clock",
]

#: Transport labels, and the modes each one supports (first = default).
PROTOCOLS: Final = ("websocket", "grpc")
MODES: Final[dict[str, tuple[str, ...]]] = {
    "websocket": ("binary", "json"),
    "grpc": ("unary", "stream", "chunked"),
}

#: Upper bound on images per run accepted from the wire.
MAX_IMAGES_PER_RUN: Final = 1_000_000
#: A run id names a directory under RECEIVER_SAVE_DIR, so it must not start with a
#: dot: that refuses "." and ".." (path traversal) and hidden names alike.
_RUN_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_SHA256_LEN: Final = 32
_UINT32: Final = 2**32 - 1
_INT64: Final = 2**63 - 1


def read_clock(clock: int) -> int:
    """Return the current time in nanoseconds on ``clock`` (a :class:`Clock` value)."""
    if clock == Clock.CLOCK_MONOTONIC:
        return time.monotonic_ns()
    if clock == Clock.CLOCK_REALTIME:
        return time.time_ns()
    raise InvalidField(f"unknown clock {clock}")


def digest(data: bytes | memoryview) -> bytes:
    """SHA-256 of ``data`` (32 bytes). hashlib releases the GIL for large inputs."""
    return hashlib.sha256(data).digest()


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
class ProbeReply:
    """The receiver's half of an exchange (``ClockProbeReply``): t2, t3 in ns on ``clock``."""

    id: int
    receive_time_ns: int
    reply_time_ns: int
    clock: int
    boot_id: str
    revision: int


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


#: Tag of ``ImageMessage.data`` (field 15, wire type 2 = length-delimited).
_DATA_TAG: Final = bytes([15 << 3 | 2])


def encode_image(meta: ImageMeta, data: bytes) -> bytes:
    """Serialize one image send as ImageMessage bytes."""
    return b"".join(encode_image_parts(meta, data))


def encode_image_parts(meta: ImageMeta, data: bytes) -> tuple[bytes, bytes]:
    """The ImageMessage bytes of :func:`encode_image` as ``(head, data)``, data not copied.

    ``head + data`` is byte for byte what protobuf serializes: every other field
    (numbers 1-14, in order) followed by field 15, ``data``, which has the highest
    number and so comes last. Building the message with the payload inside
    costs several copies of it (about 10 ms for 8 MiB); this costs none, and a
    sender that can write the two parts one after the other needs no copy at all.
    """
    head = _meta_message(meta).SerializeToString()
    if not data:
        return head, b""  # proto3 leaves an empty bytes field out
    return head + _DATA_TAG + _varint(len(data)), data


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _meta_message(meta: ImageMeta) -> ImageMessage:
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


def encode_probe(meta: ImageMeta) -> bytes:
    """Serialize a clock probe: ``meta.probe`` set, no image, ``send_time_ns`` = t1.

    Read t1 just before calling this (serialising a probe takes microseconds).
    """
    if meta.probe is None or meta.sha256:
        raise ValueError("a clock probe needs meta.probe and no sha256")
    return _meta_message(meta).SerializeToString()


def decode_image(
    raw: bytes, *, max_bytes: int, protocol: str, mode: str
) -> tuple[ImageMeta, bytes | memoryview]:
    """Parse and validate ImageMessage bytes that arrived on ``protocol``/``mode``.

    Returns the metadata and the payload: a read-only view into ``raw`` (no
    copy of the image; :func:`split_data` finds it), or bytes in the rare
    encodings where that does not apply. Raises :class:`OversizedMessage` when
    ``len(raw) > max_bytes``, :class:`MalformedMessage` when the bytes are not an
    ImageMessage, :class:`InvalidField` when a field is out of range or the
    message claims another transport than the one it arrived on. The checksum is
    *not* verified here: integrity failures are counted separately.
    """
    if len(raw) > max_bytes:
        raise OversizedMessage(f"message of {len(raw)} bytes exceeds the limit of {max_bytes}")
    split = split_data(raw)
    try:
        # The image itself is not parsed (nor copied): protobuf sees the other fields.
        msg = ImageMessage.FromString(raw if split is None else split[0])
    except (DecodeError, ValueError) as exc:
        raise MalformedMessage(f"not an ImageMessage: {exc}") from exc
    meta = _meta_of(msg)
    validate(meta, protocol=protocol, mode=mode)
    if meta.probe is not None and (msg.data if split is None else split[2] > split[1]):
        raise InvalidField("a clock probe must not carry image data")
    if split is None:
        return meta, msg.data
    return meta, memoryview(raw)[split[1] : split[2]]


def _meta_of(msg: ImageMessage) -> ImageMeta:
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


def encode_chunks(meta: ImageMeta, data: bytes, chunk_bytes: int) -> list[bytes]:
    """ImageChunk messages of one image for ``Receiver.Upload``; each data piece <= chunk_bytes.

    The first chunk carries the header (the ImageMessage without data), the total
    length, and the first piece of data.
    """
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be positive")
    view = memoryview(data)
    pieces = [view[i : i + chunk_bytes] for i in range(0, len(view), chunk_bytes)] or [view]
    chunks = [
        ImageChunk(
            header=_meta_message(meta), total_bytes=len(data), data=bytes(pieces[0])
        ).SerializeToString()
    ]
    chunks.extend(ImageChunk(data=bytes(piece)).SerializeToString() for piece in pieces[1:])
    return chunks


class ChunkAssembler:
    """Reassembles one ``Receiver.Upload`` stream; pure, no I/O.

    Feed each raw ImageChunk to :meth:`feed`; it returns True once all announced
    bytes are in (the caller takes its receive-complete stamp then). Raises
    :class:`OversizedMessage` for a chunk above ``max_message_bytes`` or an image
    above ``max_image_bytes``, :class:`MalformedMessage` for bytes that are not an
    ImageChunk, and :class:`InvalidField` for a missing or repeated header, data
    in the header, or more bytes than announced.

    Memory: the announced size is first passed to ``reserve`` (which raises to
    refuse it: the receiver's upload budget), then allocated once; chunks are
    copied into place, so a complete image costs its size once, not twice.
    """

    def __init__(
        self,
        *,
        max_message_bytes: int,
        max_image_bytes: int,
        protocol: str,
        mode: str,
        reserve: Callable[[int], None] | None = None,
    ) -> None:
        self._limits = (max_message_bytes, max_image_bytes)
        self._labels = (protocol, mode)
        self._reserve = reserve
        self._meta: ImageMeta | None = None
        self._total = 0
        self._buffer: bytearray | mmap.mmap = bytearray()
        self.received = 0
        self.message_bytes = 0
        #: Bytes granted by ``reserve`` (the announced image size), 0 before the header.
        self.reserved = 0

    @property
    def complete(self) -> bool:
        return self._meta is not None and self.received == self._total

    def feed(self, raw: bytes) -> bool:
        max_message, max_image = self._limits
        if len(raw) > max_message:
            raise OversizedMessage(f"chunk of {len(raw)} bytes exceeds the limit of {max_message}")
        try:
            chunk = ImageChunk.FromString(raw)
        except (DecodeError, ValueError) as exc:
            raise MalformedMessage(f"not an ImageChunk: {exc}") from exc
        if self._meta is None:
            if not chunk.HasField("header"):
                raise InvalidField("the first chunk must carry the header")
            if chunk.header.data:
                raise InvalidField("the header must not carry data: chunks do")
            if chunk.total_bytes > max_image:
                raise OversizedMessage(
                    f"image of {chunk.total_bytes} bytes exceeds the limit of {max_image}"
                )
            meta = _meta_of(chunk.header)
            validate(meta, protocol=self._labels[0], mode=self._labels[1])
            if len(chunk.data) > chunk.total_bytes:
                raise InvalidField(f"more than the announced {chunk.total_bytes} bytes")
            if self._reserve is not None:
                self._reserve(chunk.total_bytes)
            self.reserved = chunk.total_bytes
            self._buffer = _image_buffer(chunk.total_bytes)
            self._meta, self._total = meta, chunk.total_bytes
        elif chunk.HasField("header") or chunk.total_bytes:
            raise InvalidField("only the first chunk may carry the header")
        start = self.received
        if start + len(chunk.data) > self._total:
            raise InvalidField(f"more than the announced {self._total} bytes")
        self._buffer[start : start + len(chunk.data)] = chunk.data
        self.received += len(chunk.data)
        self.message_bytes += len(raw)
        return self.received == self._total

    def result(self) -> tuple[ImageMeta, memoryview]:
        """The image's metadata and a read-only view of its bytes; only once :attr:`complete`."""
        if self._meta is None or not self.complete:
            raise InvalidField(
                f"upload ended after {self.received} of {self._total} announced bytes"
            )
        return self._meta, memoryview(self._buffer).toreadonly()


#: Announced images of this size or more are assembled in their own anonymous mapping.
MAPPED_IMAGE_BYTES: Final = 1024 * 1024


def _image_buffer(size: int) -> bytearray | mmap.mmap:
    """A zeroed buffer of ``size`` bytes for one image being reassembled.

    Large ones are an anonymous mapping of their own rather than a heap block:
    pages become resident only as chunks fill them, and the memory goes back to
    the kernel as soon as the image is released, whatever the allocator tuning
    (imgbench.runtime.alloc keeps freed heap blocks mapped for speed; a stalled
    or refused upload's buffer must not stay pinned in the heap).
    """
    if size >= MAPPED_IMAGE_BYTES:
        return mmap.mmap(-1, size)
    return bytearray(size)


def split_data(raw: bytes) -> tuple[bytes, int, int] | None:
    """``(other fields, start, end)``: ImageMessage bytes without ``data``, and where it is.

    Walks the top-level fields without copying the payload. Every occurrence of
    field 15 is left out of the first part and the last one is located, as
    protobuf's "last one wins" would. None when anything is unusual (a
    truncated or overlong field, a group, field 15 with another wire type): the
    caller then lets protobuf parse the whole message, and refuse it if it must.
    """
    pos, end = 0, len(raw)
    kept: list[bytes] = []
    keep_from = 0
    start = stop = 0
    try:
        while pos < end:
            field_start = pos
            key, pos = _read_varint(raw, pos)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, pos = _read_varint(raw, pos)
            elif wire_type == 1:
                pos += 8
            elif wire_type == 2:
                length, pos = _read_varint(raw, pos)
                if number == 15:
                    if pos + length > end:
                        return None
                    kept.append(raw[keep_from:field_start])
                    start, stop = pos, pos + length
                    keep_from = stop
                pos += length
            elif wire_type == 5:
                pos += 4
            else:
                return None
            if number == 15 and wire_type != 2:
                return None
    except IndexError:
        return None
    if pos != end:
        return None
    kept.append(raw[keep_from:end])
    return b"".join(kept), start, stop


def _read_varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[pos]  # IndexError when truncated
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise IndexError("varint longer than 10 bytes")


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


def encode_json_image(meta: ImageMeta, data: bytes) -> str:
    """The ``json`` WebSocket mode: the same fields, payload base64 in a text frame."""
    return json.dumps(
        {
            "run_id": meta.run_id,
            "protocol": meta.protocol,
            "mode": meta.mode,
            "sequence": meta.sequence,
            "total": meta.total,
            "send_time_ns": meta.send_time_ns,
            "clock": meta.clock,
            "content_type": meta.content_type,
            "sha256": meta.sha256.hex(),
            "traceparent": meta.traceparent,
            "warmup": meta.warmup,
            "scheduled_time_ns": meta.scheduled_time_ns,
            "repetition": meta.repetition,
            "data": base64.b64encode(data).decode("ascii"),
        },
        separators=(",", ":"),
    )


def decode_json_image(
    text: str, *, max_bytes: int, protocol: str, mode: str
) -> tuple[ImageMeta, bytes]:
    """Inverse of :func:`encode_json_image`, with the checks of :func:`decode_image`."""
    if len(text) > max_bytes:
        raise OversizedMessage(
            f"message of {len(text)} characters exceeds the limit of {max_bytes}"
        )
    try:
        obj: Any = json.loads(text)
        if not isinstance(obj, dict):
            raise TypeError("not a JSON object")
        meta = ImageMeta(
            run_id=_typed(obj, "run_id", str),
            protocol=_typed(obj, "protocol", str),
            mode=_typed(obj, "mode", str),
            sequence=_typed(obj, "sequence", int),
            total=_typed(obj, "total", int),
            send_time_ns=_typed(obj, "send_time_ns", int),
            clock=_typed(obj, "clock", int),
            content_type=_typed(obj, "content_type", str),
            sha256=bytes.fromhex(_typed(obj, "sha256", str)),
            traceparent=_typed(obj, "traceparent", str),
            warmup=_typed(obj, "warmup", bool),
            scheduled_time_ns=_typed(obj, "scheduled_time_ns", int),
            repetition=_typed(obj, "repetition", int),
        )
        data = base64.b64decode(_typed(obj, "data", str), validate=True)
    except RecursionError as exc:  # arrays nested thousands deep
        raise MalformedMessage("not a JSON image message: nested too deeply") from exc
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise MalformedMessage(f"not a JSON image message: {exc}") from exc
    if meta.sequence < 0 or meta.repetition < 0:
        raise InvalidField("sequence and repetition must not be negative")
    validate(meta, protocol=protocol, mode=mode)
    return meta, data


def _typed(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj[key]
    # bool is a subclass of int: do not accept true as a sequence number.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"field {key!r} must be {kind.__name__}")
    if isinstance(value, str):
        # JSON can escape a lone surrogate ("\ud800"); protobuf strings are UTF-8,
        # and the same image must be representable on every transport.
        value.encode("utf-8")  # UnicodeEncodeError is a ValueError: malformed
    return value


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


def decode_ack(raw: bytes) -> Ack:
    """Parse an Ack; raises :class:`MalformedMessage` on bad bytes."""
    try:
        return Ack.FromString(raw)
    except (DecodeError, ValueError) as exc:
        raise MalformedMessage(f"not an Ack: {exc}") from exc

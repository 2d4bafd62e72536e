"""The image message: one send as ``ImageMessage`` bytes, and back. Pure, no I/O.

Both transports carry the same serialized bytes (the WebSocket ``json`` mode,
:mod:`imgbench.wire.json_image`, is the one deliberate exception, kept to show
what base64-in-JSON costs). Decoding validates every field a receiver relies on
(:mod:`imgbench.wire.validation`) and leaves the payload where it arrived.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Final

from google.protobuf.message import DecodeError

from imgbench.errors import InvalidField, MalformedMessage, OversizedMessage
from imgbench.v1.imgbench_pb2 import ImageMessage
from imgbench.wire.meta import ImageMeta, from_message, to_message
from imgbench.wire.protowire import split_data, varint
from imgbench.wire.validation import validate

__all__ = ["HeadTemplate", "decode_image", "digest", "encode_image", "encode_image_parts"]


def digest(data: bytes | memoryview) -> bytes:
    """SHA-256 of ``data`` (32 bytes). hashlib releases the GIL for large inputs."""
    return hashlib.sha256(data).digest()


#: Tag of ``ImageMessage.data`` (field 15, wire type 2 = length-delimited).
_DATA_TAG: Final = bytes([15 << 3 | 2])
#: Tag of ``ImageMessage.send_time_ns`` (field 5, wire type 0 = varint).
_SEND_TIME_TAG: Final = bytes([5 << 3 | 0])


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
    head = to_message(meta).SerializeToString()
    if not data:
        return head, b""  # proto3 leaves an empty bytes field out
    return head + _DATA_TAG + varint(len(data)), data


@dataclasses.dataclass(frozen=True, slots=True)
class HeadTemplate:
    """One send's ImageMessage header, serialised before its send time is known.

    The transmitter builds it before reading the send-start stamp, so that the
    timed window holds only what needs the stamp: :meth:`parts` appends the send
    time (field 5) and data's tag and length to ``fields`` (every other field of
    ``meta``, serialised by protobuf), a few bytes. The result is the message of
    :func:`encode_image_parts` for ``meta`` with that send time, with field 5 after
    the others instead of in number order: protobuf parsers accept fields in any
    order, so it decodes to the same message (tested field for field).
    """

    fields: bytes
    data_key: bytes

    @classmethod
    def of(cls, meta: ImageMeta, data: bytes) -> HeadTemplate:
        """The template of ``meta`` (its ``send_time_ns`` is ignored) and ``data``."""
        # proto3 leaves a zero field out: every field but the send time.
        fields = to_message(dataclasses.replace(meta, send_time_ns=0)).SerializeToString()
        return cls(fields, _DATA_TAG + varint(len(data)) if data else b"")

    def parts(self, send_time_ns: int, data: bytes) -> tuple[bytes, bytes]:
        """``(head, data)`` as :func:`encode_image_parts` returns them; ``send_time_ns`` >= 0."""
        return self.fields + self.time_field(send_time_ns) + self.data_key, data

    def size(self, send_time_ns: int, data: bytes) -> int:
        """Bytes of the ImageMessage :meth:`parts` makes (a sender may pad it)."""
        return (
            len(self.fields) + len(self.time_field(send_time_ns)) + len(self.data_key) + len(data)
        )

    @staticmethod
    def time_field(send_time_ns: int) -> bytes:
        """Field 5 with ``send_time_ns`` (>= 0; none for 0, as protobuf leaves it out)."""
        if send_time_ns < 0:
            raise ValueError("a send time is never negative")
        return _SEND_TIME_TAG + varint(send_time_ns) if send_time_ns else b""


def decode_image(
    raw: bytes, *, max_bytes: int, protocol: str, mode: str
) -> tuple[ImageMeta, bytes | memoryview]:
    """Parse and validate ImageMessage bytes that arrived on ``protocol``/``mode``.

    Returns the metadata and the payload: a read-only view into ``raw`` (no
    copy of the image; :func:`~imgbench.wire.protowire.split_data` finds it), or
    bytes in the rare encodings where that does not apply. Raises
    :class:`OversizedMessage` when ``len(raw) > max_bytes``,
    :class:`MalformedMessage` when the bytes are not an ImageMessage,
    :class:`InvalidField` when a field is out of range or the message claims
    another transport than the one it arrived on. The checksum is *not* verified
    here: integrity failures are counted separately.
    """
    if len(raw) > max_bytes:
        raise OversizedMessage(f"message of {len(raw)} bytes exceeds the limit of {max_bytes}")
    split = split_data(raw)
    try:
        # The image itself is not parsed (nor copied): protobuf sees the other fields.
        msg = ImageMessage.FromString(raw if split is None else split[0])
    except (DecodeError, ValueError) as exc:
        raise MalformedMessage(f"not an ImageMessage: {exc}") from exc
    meta = from_message(msg)
    validate(meta, protocol=protocol, mode=mode)
    if meta.probe is not None and (msg.data if split is None else split[2] > split[1]):
        raise InvalidField("a clock probe must not carry image data")
    if split is None:
        return meta, msg.data
    return meta, memoryview(raw)[split[1] : split[2]]

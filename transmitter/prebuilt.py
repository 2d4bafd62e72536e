"""ImageMessage bytes as one ``bytes`` object without copying the image on every send.

grpcio (1.85) takes a request only as one ``bytes`` object (``AioCall.unary_unary(bytes
request, ...)``, ``send_serialized_message(bytes message)``) and copies it into a
C-core slice (``grpc_slice_from_copied_buffer``); bare grpcio pays that one copy.
Joining the per-send header and the image into a new ``bytes`` object was a
second copy of the whole image inside the timed window (11.6 % of the
transmitter's samples). Here the image is encoded once:

    [field 15 tag | length | image bytes][header fields 1-13][padding field]

Protobuf accepts fields in any order (and scalar fields last-wins), so this is
a valid ImageMessage; only the header slot, a few hundred bytes at the end, is
rewritten before each send, in place. The slot always has the same size: the
header is followed by an unknown length-delimited field (number
:data:`PAD_FIELD`) that pads it, which protobuf parsers skip (proto3 keeps it as
an unknown field). The receiver's decoder finds field 15 wherever it is.

WebSocket senders use the same buffers: websockets sends a ``bytes`` message as one
frame (masking copies it, as for bare websockets), so the harness's frame is the
bare library's frame, built without a per-send copy of the image.

Writing into a ``bytes`` object is only safe while nothing else holds it: a
buffer is reused only when its reference count shows that grpcio, a queue or a
caller no longer does; otherwise a new one is built (one copy, as before).
"""

from __future__ import annotations

import ctypes
import sys
from typing import Final

from imgbench.wire.protowire import varint

#: Tag of ImageMessage.data (field 15, wire type 2).
DATA_TAG: Final = bytes([15 << 3 | 2])
#: The padding field's number: not in the contract, so every parser skips it.
PAD_FIELD: Final = 2047
_PAD_TAG: Final = bytes([(PAD_FIELD << 3 | 2) & 0x7F | 0x80, (PAD_FIELD << 3 | 2) >> 7])
#: Header bytes reserved per message (run ids <= 64 characters, a 55-character
#: traceparent, a 32-byte checksum and varints: about 200 bytes in practice).
SLOT: Final = 512
#: Buffers kept per image for sends in flight at once (the burst schedule).
POOL: Final = 4


def padding(length: int) -> bytes:
    """Unknown length-delimited fields of exactly ``length`` bytes in all (``length`` >= 3)."""
    if length < 3:
        raise ValueError("a padding field takes at least 3 bytes")
    body = length - len(_PAD_TAG) - 1
    while body + len(_PAD_TAG) + len(varint(body)) > length:
        body -= 1
    field = _PAD_TAG + varint(body) + bytes(body)
    if len(field) < length:  # the length's varint grew a byte: add an empty field
        return _PAD_TAG + b"\x00" + padding(length - 3)
    return field


def _address(buf: bytes) -> int:
    """Address of the first byte of ``buf``'s contents (CPython keeps them inline)."""
    address = ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value
    assert address is not None
    return address


class PrebuiltImage:
    """Whole ImageMessages for one image, rewritten in place per send.

    :meth:`message` returns ``bytes`` equal, field for field, to the
    ImageMessage of ``header`` (the serialized fields other than ``data``) and
    the image, or None when the header does not fit the slot (then the caller
    encodes the usual way). ``spares`` buffers are built at the first call
    (each one copy of the image; the transmitter holds them while the image is
    being sent).
    """

    def __init__(self, data: bytes, spares: int = 1) -> None:
        self.data = data
        self._spares = spares
        self._prefix = DATA_TAG + varint(len(data))
        self._offset = len(self._prefix) + len(data)
        self._pool: list[bytes] = []
        #: Messages built with a copy of the image (the rest were rewritten in place).
        self.builds = 0

    @property
    def size(self) -> int:
        """Bytes of every message this image produces."""
        return self._offset + SLOT

    def _fresh(self, header: bytes) -> bytes:
        self.builds += 1
        return b"".join((self._prefix, self.data, header, padding(SLOT - len(header))))

    def message(self, header: bytes) -> bytes | None:
        if len(header) > SLOT - 3:
            return None
        # Free = held only by the pool, this loop variable and getrefcount's argument.
        for buf in self._pool:
            if sys.getrefcount(buf) == 3:
                tail = header + padding(SLOT - len(header))
                ctypes.memmove(_address(buf) + self._offset, tail, SLOT)
                return buf
        buf = self._fresh(header)
        if len(self._pool) < POOL:
            self._pool.append(buf)
        # Built on first use, before any in flight: a stream's request iterator
        # holds the previous message until the next one is queued.
        while len(self._pool) < min(self._spares, POOL):
            self._pool.append(self._fresh(header))
        return buf


class OneBuffer:
    """A sender's ImageMessages as one ``bytes`` object each, the image laid out once.

    ``message(head, data)`` takes :func:`imgbench.wire.encode_image_parts`' pair (``head``
    ends with data's tag and length) and returns a message equal, field for field, to
    ``head + data``: a :class:`PrebuiltImage` of ``data`` (rebuilt when the image
    changes) with only the header rewritten. It falls back to joining (one copy) when
    there is no data, the header does not fit the slot, or the padded message would
    exceed ``limit`` (bytes: the message limit). ``spares``: buffers built ahead
    (a gRPC stream's request iterator holds the previous message until the next one
    is queued: 2 there, 1 elsewhere).
    """

    def __init__(self, limit: int, spares: int = 1) -> None:
        self.limit = limit
        self.spares = spares
        self.prebuilt: PrebuiltImage | None = None

    def message(self, head: bytes, data: bytes) -> bytes:
        if data:
            if self.prebuilt is None or self.prebuilt.data is not data:
                self.prebuilt = PrebuiltImage(data, spares=self.spares)
            if self.prebuilt.size <= self.limit:
                built = self.prebuilt.message(head[: -1 - len(varint(len(data)))])
                if built is not None:
                    return built
        return b"".join((head, data))

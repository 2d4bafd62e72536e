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
import time
from collections.abc import Callable
from typing import Final

from imgbench.wire import HeadTemplate
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
        #: Length of data's tag and length, which end an encode_image_parts head.
        self.key_bytes = len(self._prefix)
        self._offset = len(self._prefix) + len(data)
        self._pool: list[bytes] = []
        #: Where each pooled buffer's header slot is (bytes objects never move).
        self._slots: list[int] = []
        #: Messages built with a copy of the image (the rest were rewritten in place).
        self.builds = 0

    @property
    def size(self) -> int:
        """Bytes of every message this image produces."""
        return self._offset + SLOT

    def _fresh(self, slot: bytes) -> bytes:
        self.builds += 1
        return b"".join((self._prefix, self.data, slot))

    def _keep(self, buf: bytes) -> None:
        self._pool.append(buf)
        self._slots.append(_address(buf) + self._offset)

    def message(self, header: bytes) -> bytes | None:
        if len(header) > SLOT - 3:
            return None
        return self._take(header + _padding(SLOT - len(header)))

    def _take(self, slot: bytes) -> bytes:
        """A message ending in ``slot`` (exactly :data:`SLOT` bytes): a free pooled
        buffer rewritten in place, else a new one."""
        pool = self._pool
        for i in range(len(pool)):
            buf = pool[i]
            # Free = held only by the pool, ``buf`` and getrefcount's argument.
            if sys.getrefcount(buf) == 3:
                ctypes.memmove(self._slots[i], slot, SLOT)
                return buf
        buf = self._fresh(slot)
        if len(pool) < POOL:
            self._keep(buf)
        # Built on first use, before any in flight: a stream's request iterator
        # holds the previous message until the next one is queued.
        while len(pool) < min(self._spares, POOL):
            self._keep(self._fresh(slot))
        return buf

    def reserve(self, fields: bytes, field_bytes: int) -> tuple[bytes, int] | None:
        """A message with every field but one written, and where that one goes.

        The slot is laid out ``[fields][padding][one field of field_bytes]``: the
        caller writes the last ``field_bytes`` of the slot (at the returned address)
        and the message is complete. The buffer is the caller's until it drops it
        (the reference count says so). None when it does not fit the slot.
        """
        pad = SLOT - len(fields) - field_bytes
        if pad < 3:
            return None
        buf = self._take(fields + _padding(pad) + bytes(field_bytes))
        return buf, _address(buf) + self._offset + SLOT - field_bytes


_PADDINGS: dict[int, bytes] = {}


def _padding(length: int) -> bytes:
    """:func:`padding`, kept by length (at most :data:`SLOT` of them, ~130 KiB)."""
    pad = _PADDINGS.get(length)
    if pad is None:
        pad = _PADDINGS[length] = padding(length)
    return pad


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
            prebuilt = self._prebuilt_of(data)
            if prebuilt.size <= self.limit:
                built = prebuilt.message(head[: -prebuilt.key_bytes])
                if built is not None:
                    return built
        return b"".join((head, data))

    def _prebuilt_of(self, data: bytes) -> PrebuiltImage:
        """The :class:`PrebuiltImage` of ``data``, rebuilt when the image changes."""
        if self.prebuilt is None or self.prebuilt.data is not data:
            self.prebuilt = PrebuiltImage(data, spares=self.spares)
        return self.prebuilt

    def ready(self, template: HeadTemplate, data: bytes) -> Callable[[int], bytes]:
        """Before the send-start stamp: the message of ``template`` and ``data`` but for
        its send time; the returned function writes the send time and returns it.

        Everything but the send time is written into a free buffer here, outside the
        timed window; the function only encodes the stamp (tag and varint, written
        last in the slot: protobuf reads fields in any order) and copies those few
        bytes in. A stamp whose varint is longer or shorter than the clock's now (it
        changes length every 2**7 times: at 6.5 days and 2.3 years of uptime on
        CLOCK_MONOTONIC) rewrites the slot's padding too. Without a prebuilt message
        (no data, or too large) the function joins the parts (one copy), as
        :meth:`message` does.
        """
        if data:
            prebuilt = self._prebuilt_of(data)
            expected = len(template.time_field(time.monotonic_ns()))
            if prebuilt.size <= self.limit:
                reserved = prebuilt.reserve(template.fields, expected)
                if reserved is not None:
                    buf, at = reserved

                    def stamped(send_ns: int) -> bytes:
                        field = template.time_field(send_ns)
                        if len(field) == expected:
                            ctypes.memmove(at, field, expected)
                            return buf
                        message = prebuilt.message(
                            template.fields + _padding(SLOT - len(template.fields) - len(field))
                            + field
                        )  # fmt: skip
                        return (
                            message
                            if message is not None
                            else b"".join(template.parts(send_ns, data))
                        )

                    return stamped
        return lambda send_ns: b"".join(template.parts(send_ns, data))

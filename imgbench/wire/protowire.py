"""The protobuf wire format at byte level: varints, and where a field's bytes lie.

Enough of the format (after Go's ``protowire``) to write an ``ImageMessage``'s
``data`` field without copying the payload and to find it again in received
bytes without parsing (copying) it. Pure, no I/O.
"""

from __future__ import annotations

__all__ = ["split_data", "varint"]


def varint(value: int) -> bytes:
    """``value`` (>= 0) as a base-128 varint, least significant group first."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


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

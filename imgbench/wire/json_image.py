"""The WebSocket ``json`` mode: the image message's fields in JSON, the payload base64.

Kept to show what base64-in-JSON costs beside the binary message
(:mod:`imgbench.wire.image`); decoding applies the same checks
(:mod:`imgbench.wire.validation`) plus JSON's own (types, no negative numbers).
Pure, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from imgbench.errors import InvalidField, MalformedMessage, OversizedMessage
from imgbench.wire.meta import ImageMeta
from imgbench.wire.validation import validate

__all__ = ["decode_json_image", "encode_json_image"]


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
    """Inverse of :func:`encode_json_image`, with the checks of binary ``decode_image``."""
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

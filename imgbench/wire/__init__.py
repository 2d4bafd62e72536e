"""What goes over the wire, with no I/O: the messages, their checks, shared names.

One module per message or concern, all pure (nothing here opens a socket), so
the bytes on WebSocket and gRPC are identical and testable without sockets:

- :mod:`~imgbench.wire.meta`: :class:`ImageMeta` (every field but the payload),
  the probe's :class:`ProbeInfo`, and their protobuf form;
- :mod:`~imgbench.wire.image`: the ``ImageMessage`` bytes both transports carry;
- :mod:`~imgbench.wire.validation`: the checks every decoder applies, and limits;
- :mod:`~imgbench.wire.protowire`: varints and the payload's place in the bytes;
- :mod:`~imgbench.wire.chunks`: chunked uploads and their reassembly;
- :mod:`~imgbench.wire.json_image`: the WebSocket ``json`` mode;
- :mod:`~imgbench.wire.probe`: clock probes, their replies, reading a clock;
- :mod:`~imgbench.wire.ack`: the receiver's acknowledgement;
- :mod:`~imgbench.wire.names`: method paths and constants both ends share.
"""

from __future__ import annotations

from imgbench.v1.imgbench_pb2 import Ack, Clock, ImageMessage
from imgbench.wire.ack import decode_ack, encode_ack
from imgbench.wire.chunks import ChunkAssembler, encode_chunks
from imgbench.wire.image import (
    HeadTemplate,
    decode_image,
    digest,
    encode_image,
    encode_image_parts,
)
from imgbench.wire.json_image import decode_json_image, encode_json_image
from imgbench.wire.meta import MODES, PROTOCOLS, Exchange, ImageMeta, ProbeInfo
from imgbench.wire.probe import (
    ProbeReply,
    decode_probe_reply,
    encode_probe,
    encode_probe_reply,
    read_clock,
)

__all__ = [
    "MODES",
    "PROTOCOLS",
    "Ack",
    "ChunkAssembler",
    "Clock",
    "Exchange",
    "HeadTemplate",
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

"""What goes over the wire, with no I/O: the codec, chunk reassembly, shared names.

:mod:`imgbench.wire.codec` encodes and decodes the protobuf ``ImageMessage`` (and
its JSON twin) and reassembles chunked streams; both transports use it, so the
bytes on WebSocket and gRPC are identical. Nothing here opens a socket.
"""

from __future__ import annotations

from imgbench.wire.codec import (
    MODES,
    PROTOCOLS,
    Ack,
    ChunkAssembler,
    Clock,
    Exchange,
    ImageMessage,
    ImageMeta,
    ProbeInfo,
    ProbeReply,
    decode_ack,
    decode_image,
    decode_json_image,
    decode_probe_reply,
    digest,
    encode_ack,
    encode_chunks,
    encode_image,
    encode_image_parts,
    encode_json_image,
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

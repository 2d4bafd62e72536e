"""Names and constants both ends of the wire must agree on, written once.

The gRPC method paths come from ``proto/imgbench/v1/imgbench.proto`` (a test
checks them against the generated stubs); :data:`GRPC_HEADROOM` is what both
sides add to the image message limit for grpc core's own limits.
"""

from __future__ import annotations

from typing import Final

#: Fully qualified gRPC service name (package ``imgbench.v1``, service ``Receiver``).
GRPC_SERVICE: Final = "imgbench.v1.Receiver"
#: Method names as the service registers them (unary; bidirectional stream of
#: ImageMessages with one Ack each; client stream of ImageChunks, one Ack).
SEND_METHOD: Final = "Send"
SEND_STREAM_METHOD: Final = "SendStream"
UPLOAD_METHOD: Final = "Upload"
#: Full method paths as a client calls them.
SEND: Final = f"/{GRPC_SERVICE}/{SEND_METHOD}"
SEND_STREAM: Final = f"/{GRPC_SERVICE}/{SEND_STREAM_METHOD}"
UPLOAD: Final = f"/{GRPC_SERVICE}/{UPLOAD_METHOD}"
#: Push (revision 3): the transmitter serves ``imgbench.v1.Pusher/Subscribe``
#: (images down, one Ack up per image on the same bidirectional stream) and
#: the WebSocket endpoint :data:`WS_PUSH_PATH`; the receiver is the client.
PUSH_SERVICE: Final = "imgbench.v1.Pusher"
SUBSCRIBE_METHOD: Final = "Subscribe"
SUBSCRIBE: Final = f"/{PUSH_SERVICE}/{SUBSCRIBE_METHOD}"
WS_PUSH_PATH: Final = "/v1/push"
#: The mode label of every push run, on both protocols (one shape each:
#: WebSocket binary messages from the server, gRPC ``Pusher/Subscribe``).
PUSH_MODE: Final = "push"
#: Which way the images go: ``upload`` (transmitter is the client) or ``push``
#: (transmitter is the server). The bounded ``direction`` label.
DIRECTIONS: Final = ("upload", "push")


def direction_of(mode: str) -> str:
    """``push`` for the push mode, ``upload`` for every other mode."""
    return "push" if mode == PUSH_MODE else "upload"


#: Bytes above the image message limit given to grpc core for the Ack and
#: framing. The receiver core enforces the exact limit, so oversized messages
#: up to this headroom are still counted.
GRPC_HEADROOM: Final = 1024 * 1024
#: The same headroom for websockets' ``max_size``, which applies both to each frame as
#: it arrives (compressed, when permessage-deflate is on: incompressible data grows a
#: little) and to the decompressed message. With the headroom, the receiver core
#: enforces the limit on the decompressed message, as grpc does: one meaning on both.
WS_HEADROOM: Final = GRPC_HEADROOM
#: Revision of the imgbench.v1 contract this code speaks (1 = images only,
#: 2 = clock probes); sent in ``ClockProbe.revision`` and ``ClockProbeReply.revision``.
PROBE_REVISION: Final = 2
#: Where a run's clock probes travel when it is not its images' method: a
#: chunked gRPC run (images through ``Upload``) probes through ``Send``.
PROBE_MODE_OF: Final[dict[str, str]] = {"chunked": "unary"}

__all__ = [
    "DIRECTIONS",
    "GRPC_HEADROOM",
    "GRPC_SERVICE",
    "PROBE_MODE_OF",
    "PROBE_REVISION",
    "PUSH_MODE",
    "PUSH_SERVICE",
    "SEND",
    "SEND_METHOD",
    "SEND_STREAM",
    "SEND_STREAM_METHOD",
    "SUBSCRIBE",
    "SUBSCRIBE_METHOD",
    "UPLOAD",
    "UPLOAD_METHOD",
    "WS_HEADROOM",
    "WS_PUSH_PATH",
    "direction_of",
]

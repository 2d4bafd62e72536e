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
#: Bytes above the image message limit given to grpc core for the Ack and
#: framing. The receiver core enforces the exact limit, so oversized messages
#: up to this headroom are still counted.
GRPC_HEADROOM: Final = 1024 * 1024
#: Revision of the imgbench.v1 contract this code speaks (1 = images only,
#: 2 = clock probes); sent in ``ClockProbe.revision`` and ``ClockProbeReply.revision``.
PROBE_REVISION: Final = 2
#: Where a run's clock probes travel when it is not its images' method: a
#: chunked gRPC run (images through ``Upload``) probes through ``Send``.
PROBE_MODE_OF: Final[dict[str, str]] = {"chunked": "unary"}

__all__ = [
    "GRPC_HEADROOM",
    "GRPC_SERVICE",
    "PROBE_MODE_OF",
    "PROBE_REVISION",
    "SEND",
    "SEND_METHOD",
    "SEND_STREAM",
    "SEND_STREAM_METHOD",
    "UPLOAD",
    "UPLOAD_METHOD",
]

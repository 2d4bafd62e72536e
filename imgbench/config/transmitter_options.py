"""The transmitter's options: where the receiver is, what is sent, the service, compare.

Grouped by the part of :class:`~imgbench.config.settings.TransmitterSettings`
that reads them (the same names), so each consumer takes only its part:

- :data:`TARGET_OPTIONS`: where the receiver listens (``target``);
- :data:`WORKLOAD_OPTIONS`: what is sent, how often, in which shape, how long to
  wait (``workload``);
- :data:`PUSH_OPTIONS`: the transmitter's own servers in the push direction (``push``);
- :data:`OUTPUT`: where results are written (``output``);
- :data:`SERVICE_OPTIONS`: the long-lived HTTP service (``service``);
- :data:`COMPARE_ONLY_OPTIONS`: the ``compare``/``sweep``/``netsweep`` commands'
  own, which receiver and which link (``compare``).

The observability, transport and security options (``observe``, ``transport``,
``security``) are shared with the receiver (:mod:`imgbench.config.shared_options`).
The command tables :data:`TRANSMITTER_OPTIONS` and :data:`COMPARE_OPTIONS` join
the groups.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from imgbench.config.option import (
    MIB,
    Option,
    between,
    choice,
    existing_file,
    parse_bool,
    parse_link_text,
    parse_optional_path,
    parse_protocols,
    parse_size,
    port,
    writable_dir,
)
from imgbench.config.shared_options import (
    OBSERVE_OPTIONS,
    RECEIVER_PORTS,
    SECURITY_OPTIONS,
    TRANSPORT_OPTIONS,
)
from imgbench.wire import MODES

TARGET_OPTIONS: Final = (
    Option(
        "receiver_host",
        "RECEIVER_HOST",
        "--receiver-host",
        str,
        "127.0.0.1",
        "Where the transmitter finds the receiver.",
    ),
    *RECEIVER_PORTS,
)

WORKLOAD_OPTIONS: Final = (
    Option(
        "images",
        "IMGBENCH_IMAGES",
        "--images",
        int,
        10,
        "Measured images per protocol.",
        between(1, 1_000_000),
    ),
    Option(
        "delay",
        "IMGBENCH_DELAY",
        "--delay",
        float,
        1.0,
        "Pause between sends in seconds (closed loop: after each ack).",
        between(0, 3600),
    ),
    Option(
        "warmup",
        "IMGBENCH_WARMUP",
        "--warmup",
        int,
        1,
        "Warm-up images per protocol, sent first and excluded from figures.",
        between(0, 10_000),
    ),
    Option(
        "image",
        "IMGBENCH_IMAGE",
        "--image",
        parse_optional_path,
        None,
        "Image file to send (default: the bundled sample PNG).",
        existing_file,
    ),
    Option(
        "protocols",
        "IMGBENCH_PROTOCOLS",
        "--protocols",
        parse_protocols,
        ("websocket", "grpc"),
        "Protocols in order, comma separated.",
    ),
    Option(
        "in_flight",
        "IMGBENCH_IN_FLIGHT",
        "--in-flight",
        int,
        1,
        "Images in flight at once: 1 is the closed loop; more is a burst schedule where"
        " image i is scheduled at i x delay and waits for a free slot.",
        between(1, 1024),
    ),
    Option(
        "repeat",
        "IMGBENCH_REPEAT",
        "--repeat",
        int,
        1,
        "Run the whole comparison this many times, alternating protocol order (ABBA).",
        between(1, 1000),
    ),
    Option(
        "ws_mode",
        "IMGBENCH_WS_MODE",
        "--ws-mode",
        choice(*MODES["websocket"]),
        "binary",
        "WebSocket mode: binary (protobuf frame) or json (base64 in a text frame).",
    ),
    Option(
        "grpc_mode",
        "IMGBENCH_GRPC_MODE",
        "--grpc-mode",
        choice(*MODES["grpc"]),
        "unary",
        "gRPC mode: unary (one call per image), stream (one stream per run), or chunked"
        " (one client stream per image, IMGBENCH_CHUNK_BYTES per message: for images"
        " above the message limit).",
    ),
    Option(
        "direction",
        "IMGBENCH_DIRECTION",
        "--direction",
        choice("upload", "push"),
        "upload",
        "Which way the images go: upload (the transmitter is the client, the receiver the"
        " server) or push (the transmitter is the WebSocket server / serves the gRPC"
        " Pusher.Subscribe stream, the receiver subscribes as the client; mode 'push' on"
        " both protocols, IMGBENCH_WS_MODE and IMGBENCH_GRPC_MODE do not apply).",
    ),
    Option(
        "chunk_bytes",
        "IMGBENCH_CHUNK_BYTES",
        "--chunk-bytes",
        parse_size,
        MIB,
        "gRPC chunked mode: image bytes per ImageChunk message.",
        between(1024, 2**31 - 1),
    ),
    Option(
        "compression",
        "IMGBENCH_COMPRESSION",
        "--compression",
        parse_bool,
        False,
        "permessage-deflate / gRPC gzip on both transports (off by default).",
    ),
    Option(
        "connect_timeout",
        "IMGBENCH_CONNECT_TIMEOUT",
        "--connect-timeout",
        float,
        30.0,
        "Keep retrying the connection for this long (s) before giving up.",
        between(0.1, 3600),
    ),
    Option(
        "image_timeout",
        "IMGBENCH_IMAGE_TIMEOUT",
        "--image-timeout",
        float,
        30.0,
        "Give up on an image whose ack has not arrived after this long (s).",
        between(0.01, 3600),
    ),
)

PUSH_OPTIONS: Final = (
    Option(
        "push_host",
        "IMGBENCH_PUSH_HOST",
        "--push-host",
        str,
        "",
        "Push: the address the transmitter's push servers bind to and the receiver connects"
        " to (empty: the local address the transmitter uses to reach RECEIVER_HOST).",
    ),
    Option(
        "push_ws_port",
        "IMGBENCH_PUSH_WS_PORT",
        "--push-ws-port",
        int,
        0,
        "Push: the transmitter's WebSocket server port (0 = any free port).",
        port,
    ),
    Option(
        "push_grpc_port",
        "IMGBENCH_PUSH_GRPC_PORT",
        "--push-grpc-port",
        int,
        0,
        "Push: the transmitter's gRPC Pusher port (0 = any free port).",
        port,
    ),
)

OUTPUT: Final = Option(
    "output",
    "IMGBENCH_OUTPUT",
    "--output",
    Path,
    Path("results"),
    "Directory for results (a subdirectory per run).",
    writable_dir,
)

SERVICE_OPTIONS: Final = (
    Option(
        "serve",
        "TRANSMITTER_SERVE",
        "--serve",
        parse_bool,
        False,
        "Run as a long-lived service with an HTTP API instead of once.",
    ),
    Option(
        "bind",
        "TRANSMITTER_BIND",
        "--bind",
        str,
        "127.0.0.1",
        "Address of the transmitter's HTTP API (service mode).",
    ),
    Option(
        "api_port",
        "TRANSMITTER_PORT",
        "--api-port",
        int,
        9102,
        "Transmitter HTTP API port: /healthz, /metrics, /runs (service mode).",
        port,
    ),
    Option(
        "api_max_connections",
        "TRANSMITTER_MAX_CONNECTIONS",
        "--api-max-connections",
        int,
        64,
        "Service mode: connections the HTTP API serves at once; a further one is answered"
        ' 503 without being read (imgbench_http_refusals_total{server="api"}).',
        between(1, 100_000),
    ),
    Option(
        "api_handshake_timeout",
        "TRANSMITTER_HANDSHAKE_TIMEOUT",
        "--api-handshake-timeout",
        float,
        10.0,
        "Service mode: seconds a new HTTP API connection may take to send its whole"
        " request, TLS handshake included; then it is answered 408 (or closed, in TLS).",
        between(0.1, 3600),
    ),
    Option(
        "run_interval",
        "RUN_INTERVAL_SECONDS",
        "--run-interval",
        float,
        0.0,
        "Service mode: repeat the comparison every this many seconds (0 = once).",
        between(0, 86_400),
    ),
)

#: The comparison commands only: which receiver, over which link.
COMPARE_ONLY_OPTIONS: Final = (
    Option(
        "external",
        "IMGBENCH_EXTERNAL_RECEIVER",
        "--external-receiver",
        parse_bool,
        False,
        "Use the receiver at RECEIVER_HOST and its ports instead of starting one.",
    ),
    Option(
        "link",
        "IMGBENCH_LINK",
        "--link",
        parse_link_text,
        "",
        "Run the receiver and the transmitter on two emulated hosts joined by this link,"
        " e.g. rtt=40ms,rate=100mbit,clock-offset=1000s (keys: rtt, rate,"
        " jitter, loss, clock-offset, mtu (1500), queue, seed; README 'Over a network')."
        " Needs root; empty = loopback.",
    ),
    Option(
        "tcp_slow_start_after_idle",
        "IMGBENCH_TCP_SLOW_START_AFTER_IDLE",
        "--tcp-slow-start-after-idle",
        choice("on", "off"),
        "on",
        "With --link: net.ipv4.tcp_slow_start_after_idle on both lab hosts (per network"
        " namespace; on = Linux's default: after an idle RTO the congestion window restarts"
        " from the initial window). Ignored on loopback, where the machine's value is recorded.",
    ),
)

TRANSMITTER_OPTIONS: Final = (
    *TARGET_OPTIONS,
    *WORKLOAD_OPTIONS,
    *PUSH_OPTIONS,
    *TRANSPORT_OPTIONS,
    OUTPUT,
    *SERVICE_OPTIONS,
    *SECURITY_OPTIONS,
    *OBSERVE_OPTIONS,
)

COMPARE_OPTIONS: Final = (
    *WORKLOAD_OPTIONS,
    *PUSH_OPTIONS,
    *TRANSPORT_OPTIONS,
    OUTPUT,
    *COMPARE_ONLY_OPTIONS,
    *TARGET_OPTIONS,
    *SECURITY_OPTIONS,
    *OBSERVE_OPTIONS,
)

#: Workload settings a ``POST /runs`` body may override (by field name). Not the
#: image path or the output directory: an API client must not choose which local
#: file is read or where results are written.
RUN_OVERRIDES: Final = (
    *(o for o in WORKLOAD_OPTIONS if o.name != "image"),
    *PUSH_OPTIONS,
    *TRANSPORT_OPTIONS,
)

#: compare/sweep start their own receiver on free ports unless told to use an
#: external one: there the receiver's address and ports only apply with that flag.
EXTERNAL_ONLY: Final = frozenset(o.name for o in TARGET_OPTIONS)

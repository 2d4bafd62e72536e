"""Options both services read: observability, transport, and where the receiver listens.

Each is one :class:`~imgbench.config.option.Option`, defined once here and
joined into the receiver's and the transmitter's tables
(:mod:`imgbench.config.receiver_options`, :mod:`imgbench.config.transmitter_options`),
so the two sides cannot drift apart on a flag, a variable or a default.

Settings that must be the same on both services go here, each group a tuple of
its own joined into both tables, with a settings part of its own in
:mod:`imgbench.config.settings`: so do TLS and the bearer token
(:data:`SECURITY_OPTIONS`, ``SecuritySettings``).
"""

from __future__ import annotations

from typing import Final

from imgbench.config.option import (
    MIB,
    Option,
    between,
    choice,
    grpc_frame_size,
    parse_bool,
    parse_optional_path,
    parse_size,
    port,
    readable_file,
)
from imgbench.security.token import check_token

#: Logging and telemetry switches, the same flags on every command.
OBSERVE_OPTIONS: Final = (
    Option(
        "log_format",
        "IMGBENCH_LOG_FORMAT",
        "--log-format",
        choice("auto", "json", "console"),
        "auto",
        "Log renderer: console in a terminal, JSON otherwise (auto).",
    ),
    Option(
        "log_level",
        "IMGBENCH_LOG_LEVEL",
        "--log-level",
        choice("debug", "info", "warning", "error"),
        "info",
        "Minimum log level; per-image lines are debug.",
    ),
    Option(
        "telemetry",
        "IMGBENCH_TELEMETRY",
        "--telemetry",
        parse_bool,
        True,
        "Spans and per-image metrics (off: neither is created; error counters, run records,"
        " checksums and logs stay).",
    ),
    Option(
        "grpc_instrumentation",
        "IMGBENCH_GRPC_INSTRUMENTATION",
        "--grpc-instrumentation",
        parse_bool,
        False,
        "Add opentelemetry-instrumentation-grpc's RPC spans. Off by default: they cost"
        " about 0.1-0.2 ms per call on each side inside the timed window, with no"
        " WebSocket equivalent; per-image traces span both services without them.",
    ),
)

MAX_MESSAGE: Final = Option(
    "max_message_bytes",
    "IMGBENCH_MAX_MESSAGE_BYTES",
    "--max-message-bytes",
    parse_size,
    64 * MIB,
    "Largest message either transport accepts, equal on both (bytes; 64MiB).",
    between(1024, 2**31 - 1),
)

#: Transport settings, the same on both services: the message limit (equal on both
#: transports), and those that matter on a real link (the receiver's side of HTTP/2
#: flow control is the one that limits an upload). Defaults are the libraries' own
#: (grpcio's C core, websockets), except the receiver's WebSocket queue, kept small
#: on purpose (backpressure, bounded memory).
TRANSPORT_OPTIONS: Final = (
    MAX_MESSAGE,
    Option(
        "grpc_bdp_probe",
        "IMGBENCH_GRPC_BDP_PROBE",
        "--grpc-bdp-probe",
        parse_bool,
        True,
        "gRPC: grpc.http2.bdp_probe on both sides: HTTP/2 PINGs estimate the"
        " bandwidth-delay product and grow the flow-control windows to it (grpcio's default)."
        " The receiver's window is then grpc's own (up to 1 GiB, no setting caps it), and so"
        ' is grpc core\'s receive memory per open stream (README "Bad input").',
    ),
    Option(
        "grpc_lookahead_bytes",
        "IMGBENCH_GRPC_LOOKAHEAD_BYTES",
        "--grpc-lookahead-bytes",
        parse_size,
        0,
        "gRPC: grpc.http2.lookahead_bytes on both sides, the initial per-stream"
        " flow-control window (bytes; 0 = grpcio's default, 64 KiB; with BDP probing on,"
        " the probe retunes it). With BDP probing off it is the receiver's window W: grpc"
        " core holds at most W + 2 MiB per open stream, and a stream's throughput is at"
        " most W / RTT.",
        between(0, 2**31 - 1),
    ),
    Option(
        "grpc_max_frame_size",
        "IMGBENCH_GRPC_MAX_FRAME_SIZE",
        "--grpc-max-frame-size",
        parse_size,
        0,
        "gRPC: grpc.http2.max_frame_size on both sides, the largest HTTP/2 DATA frame"
        " each side accepts (bytes; 0 = grpcio's default, 16384).",
        grpc_frame_size,
    ),
    Option(
        "ws_write_limit",
        "IMGBENCH_WS_WRITE_LIMIT",
        "--ws-write-limit",
        parse_size,
        32 * 1024,
        "WebSocket: websockets' write_limit, the send buffer's high-water mark: send()"
        " waits until the buffer drains below it (bytes; websockets' default 32 KiB).",
        between(0, 2**31 - 1),
    ),
    Option(
        "ws_max_queue",
        "IMGBENCH_WS_MAX_QUEUE",
        "--ws-max-queue",
        int,
        2,
        "WebSocket: websockets' max_queue on the receiver, messages buffered before it"
        " stops reading the socket (TCP backpressure instead of memory growth; worst case"
        " max_queue x the message limit per connection).",
        between(1, 1024),
    ),
)


def token_problem(value: str) -> str | None:
    """The token's problem (:func:`~imgbench.security.token.check_token`); empty is no token."""
    return check_token(value) if value else None


#: TLS and the bearer token, the same settings on both services (README "Security").
#: The files' contents are checked when the service starts (imgbench.security.tls).
SECURITY_OPTIONS: Final = (
    Option(
        "tls",
        "IMGBENCH_TLS",
        "--tls",
        parse_bool,
        False,
        "TLS on every connection: wss://, gRPC over TLS and HTTPS for the HTTP APIs, TLS 1.3"
        " (gRPC: see README 'Security'). Implied by IMGBENCH_TLS_CERT or IMGBENCH_TLS_CA."
        " imgbench compare --tls without a certificate makes a throw-away CA and certificate.",
    ),
    Option(
        "tls_cert",
        "IMGBENCH_TLS_CERT",
        "--tls-cert",
        parse_optional_path,
        None,
        "PEM certificate (chain) this service presents when it listens (receiver; transmitter"
        " in push or service mode), and as a client with IMGBENCH_TLS_CLIENT_AUTH.",
        readable_file,
    ),
    Option(
        "tls_key",
        "IMGBENCH_TLS_KEY",
        "--tls-key",
        parse_optional_path,
        None,
        "PEM private key of IMGBENCH_TLS_CERT (unencrypted; keep it readable by the service only).",
        readable_file,
    ),
    Option(
        "tls_ca",
        "IMGBENCH_TLS_CA",
        "--tls-ca",
        parse_optional_path,
        None,
        "PEM CA bundle a client verifies the server against (empty: the system store), and"
        " with IMGBENCH_TLS_CLIENT_AUTH the CA client certificates must chain to.",
        readable_file,
    ),
    Option(
        "tls_client_auth",
        "IMGBENCH_TLS_CLIENT_AUTH",
        "--tls-client-auth",
        parse_bool,
        False,
        "Mutual TLS: servers require a client certificate signed by IMGBENCH_TLS_CA, clients"
        " present IMGBENCH_TLS_CERT (set it on both services).",
    ),
    Option(
        "token",
        "IMGBENCH_TOKEN",
        "--token",
        str,
        "",
        "Shared bearer token: when set, required on the WebSocket handshake, in gRPC"
        " metadata and on every HTTP endpoint but /healthz and /metrics, and sent by this"
        " service as a client (16+ characters; the flag shows in ps: prefer the variable or"
        " IMGBENCH_TOKEN_FILE). Empty: no authentication.",
        token_problem,
    ),
    Option(
        "token_file",
        "IMGBENCH_TOKEN_FILE",
        "--token-file",
        parse_optional_path,
        None,
        "File holding the bearer token (surrounding whitespace ignored), instead of"
        " IMGBENCH_TOKEN (e.g. a Kubernetes or compose secret).",
        readable_file,
    ),
)

#: The receiver's ports: where it listens, and where the transmitter connects.
RECEIVER_PORTS: Final = (
    Option("ws_port", "RECEIVER_PORT", "--port", int, 8765, "Receiver WebSocket port.", port),
    Option(
        "grpc_port", "RECEIVER_GRPC_PORT", "--grpc-port", int, 50051, "Receiver gRPC port.", port
    ),
    Option(
        "http_port",
        "RECEIVER_HTTP_PORT",
        "--http-port",
        int,
        9101,
        "Receiver HTTP port: /healthz, /metrics, /runs/<run id>, /stats.",
        port,
    ),
)

"""The receiver's options: where it listens, and every limit it enforces.

The table :data:`RECEIVER_OPTIONS` is what ``imgbench receiver`` (and
``python -m receiver``) accepts; :class:`~imgbench.config.settings.ReceiverSettings`
reads its defaults from it. The options shared with the transmitter come from
:mod:`imgbench.config.shared_options`.
"""

from __future__ import annotations

from typing import Final

from imgbench.config.option import MIB, Option, between, parse_optional_path, parse_size
from imgbench.config.shared_options import (
    OBSERVE_OPTIONS,
    RECEIVER_PORTS,
    SECURITY_OPTIONS,
    TRANSPORT_OPTIONS,
)

RECEIVER_OPTIONS: Final = (
    Option(
        "bind",
        "RECEIVER_BIND",
        "--bind",
        str,
        "127.0.0.1",
        "Address the receiver listens on (0.0.0.0 in containers).",
    ),
    *RECEIVER_PORTS,
    *TRANSPORT_OPTIONS,
    Option(
        "max_image_bytes",
        "RECEIVER_MAX_IMAGE_BYTES",
        "--max-image-bytes",
        parse_size,
        512 * MIB,
        "Largest image a chunked gRPC upload may announce; the receiver holds it in memory"
        " (at most RECEIVER_MAX_UPLOAD_BUFFER_BYTES).",
        between(1, 2**40),
    ),
    Option(
        "max_uploads",
        "RECEIVER_MAX_UPLOADS",
        "--max-uploads",
        int,
        4,
        "Chunked gRPC uploads (Receiver/Upload) in progress at once; more are refused"
        " with RESOURCE_EXHAUSTED (uploads_busy).",
        between(1, 10_000),
    ),
    Option(
        "max_upload_buffer_bytes",
        "RECEIVER_MAX_UPLOAD_BUFFER_BYTES",
        "--max-upload-buffer-bytes",
        parse_size,
        512 * MIB,
        "Bytes all chunked uploads in progress may hold together (each reserves its"
        " announced size when its header arrives; beyond: RESOURCE_EXHAUSTED, uploads_busy).",
        between(1, 2**40),
    ),
    Option(
        "upload_idle_timeout",
        "RECEIVER_UPLOAD_IDLE_TIMEOUT",
        "--upload-idle-timeout",
        float,
        30.0,
        "Seconds a chunked upload may go without a chunk before it is ended"
        " (DEADLINE_EXCEEDED, upload_stalled) and its reservation released.",
        between(0.1, 3600),
    ),
    Option(
        "max_connections",
        "RECEIVER_MAX_CONNECTIONS",
        "--max-connections",
        int,
        256,
        "Connections each port serves at once: open WebSocket connections (beyond: the"
        " handshake is answered 503), HTTP API connections (503), gRPC connections (grpc"
        " core closes further ones: the client sees UNAVAILABLE, uncounted) and gRPC calls"
        " in progress (beyond: RESOURCE_EXHAUSTED, connections_full).",
        between(1, 100_000),
    ),
    Option(
        "handshake_timeout",
        "RECEIVER_HANDSHAKE_TIMEOUT",
        "--handshake-timeout",
        float,
        10.0,
        "Seconds a new connection may take to complete its opening (TLS handshake"
        " included): the WebSocket handshake, the HTTP/2 preface and settings on gRPC,"
        " the whole request on the HTTP API; then it is closed.",
        between(0.1, 3600),
    ),
    Option(
        "grpc_idle_timeout",
        "RECEIVER_GRPC_IDLE_TIMEOUT",
        "--grpc-idle-timeout",
        float,
        120.0,
        "Seconds a gRPC connection may go without a call in progress before grpc core"
        " closes it (GOAWAY, grpc.max_connection_idle_ms; checked once per timeout +-10 %%:"
        " 1 to 2 timeouts after its last call, one after opening if it never calls),"
        " freeing its RECEIVER_MAX_CONNECTIONS slot; a transmitter reconnects before its"
        " next image, outside the timed window.",
        between(0.1, 86_400),
    ),
    Option(
        "ping_interval",
        "RECEIVER_PING_INTERVAL",
        "--ping-interval",
        float,
        20.0,
        "Seconds between the receiver's keepalive pings on an open connection: WebSocket"
        " pings, HTTP/2 PINGs on gRPC (grpc.keepalive_time_ms).",
        between(1, 86_400),
    ),
    Option(
        "ping_timeout",
        "RECEIVER_PING_TIMEOUT",
        "--ping-timeout",
        float,
        60.0,
        "Seconds the receiver waits for a keepalive ping's answer before closing the"
        " connection as dead (WebSocket pong; gRPC: grpc.keepalive_timeout_ms and"
        " grpc.http2.ping_timeout_ms).",
        between(1, 86_400),
    ),
    Option(
        "max_runs",
        "RECEIVER_MAX_RUNS",
        "--max-runs",
        int,
        64,
        "Run ids kept in memory for /runs. A new run evicts the longest-finished run, or"
        " a run idle for RECEIVER_RUN_IDLE_TIMEOUT; a live run is never evicted: when every"
        " slot holds one, the new run is refused (runs_full).",
        between(1, 10_000),
    ),
    Option(
        "max_records_per_run",
        "RECEIVER_MAX_RECORDS_PER_RUN",
        "--max-records-per-run",
        int,
        2000,
        "Records (protocol, mode, repetition) one run id may hold; more are refused"
        " (records_full). 2000 = 2 protocols x the largest IMGBENCH_REPEAT.",
        between(1, 100_000),
    ),
    Option(
        "run_idle_timeout",
        "RECEIVER_RUN_IDLE_TIMEOUT",
        "--run-idle-timeout",
        float,
        120.0,
        "Seconds without an image after which an unfinished run counts as abandoned and"
        " may be evicted to make room (later messages for it are refused: run_evicted).",
        between(1, 86_400),
    ),
    Option(
        "max_in_flight",
        "RECEIVER_MAX_IN_FLIGHT",
        "--max-in-flight",
        int,
        64,
        "Images the receiver processes at once; further messages wait (backpressure).",
        between(1, 100_000),
    ),
    Option(
        "max_subscriptions",
        "RECEIVER_MAX_SUBSCRIPTIONS",
        "--max-subscriptions",
        int,
        4,
        "Push subscriptions (connections to a transmitter's push server) open at once;"
        " further POST /v1/subscriptions are refused with 429.",
        between(1, 1000),
    ),
    Option(
        "log_burst",
        "RECEIVER_LOG_BURST",
        "--log-burst",
        int,
        10,
        "Warnings of one kind (a refusal reason, disconnects, checksum mismatches) logged per"
        " RECEIVER_LOG_WINDOW; the rest are counted in imgbench_log_lines_suppressed_total"
        " and summed up in one line.",
        between(1, 1_000_000),
    ),
    Option(
        "log_window",
        "RECEIVER_LOG_WINDOW",
        "--log-window",
        float,
        10.0,
        "Seconds over which RECEIVER_LOG_BURST applies.",
        between(0.1, 86_400),
    ),
    Option(
        "save_dir",
        "RECEIVER_SAVE_DIR",
        "--save-dir",
        parse_optional_path,
        None,
        "Write each received image here, after acknowledging (off when empty).",
    ),
    *SECURITY_OPTIONS,
    *OBSERVE_OPTIONS,
)

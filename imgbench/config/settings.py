"""Typed settings, built once at the edge from flags and environment variables.

Every setting has an environment variable and a command-line flag; a flag
overrides the variable, which overrides the default. Values are parsed and
validated here, so a bad value stops the program at start-up with a
:class:`~imgbench.errors.ConfigError` that names the setting and says why,
instead of failing half-way through a run.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from imgbench.config.thresholds import Threshold, parse_thresholds
from imgbench.errors import ConfigError
from imgbench.security.token import check_token
from imgbench.wire import MODES
from imgbench.wire.names import PUSH_MODE

MIB: Final = 1024 * 1024

Parser = Callable[[str], Any]
Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Option:
    """One setting: attribute name, environment variable, flag, parser, check."""

    name: str
    env: str
    flag: str
    parse: Parser
    default: Any
    help: str
    check: Check | None = None
    #: The flag may be given several times (values joined by commas, as in the env var).
    multiple: bool = False

    @property
    def label(self) -> str:
        return f"{self.env} ({self.flag})"

    @property
    def metavar(self) -> str:
        """What ``--help`` shows for the value: the allowed values, or a name for it."""
        choices = getattr(self.parse, "choices", None)
        if choices:
            return "{" + ",".join(choices) + "}"
        if self.parse is parse_bool:
            return "BOOL"
        return self.name.upper()


# Parsers and checks -------------------------------------------------------


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected one of 1/0, true/false, yes/no, on/off, got {text!r}")


def parse_size(text: str) -> int:
    """Bytes from ``123``, ``64KiB``, ``16MiB``, ``1GiB`` (binary units) or ``5MB``."""
    units = {
        "kib": 1024,
        "mib": MIB,
        "gib": 1024 * MIB,
        "kb": 1000,
        "mb": 10**6,
        "gb": 10**9,
        "b": 1,
    }
    raw = text.strip().lower()
    for unit in sorted(units, key=len, reverse=True):
        if raw.endswith(unit):
            return int(float(raw[: -len(unit)].strip()) * units[unit])
    return int(raw)


def parse_protocols(text: str) -> tuple[str, ...]:
    items = tuple(p.strip().lower() for p in text.split(",") if p.strip())
    if not items:
        raise ValueError("at least one protocol is needed")
    for item in items:
        if item not in MODES:
            raise ValueError(f"unknown protocol {item!r} (choose from {', '.join(MODES)})")
    if len(set(items)) != len(items):
        raise ValueError("a protocol is listed twice")
    return items


def parse_optional_path(text: str) -> Path | None:
    return Path(text).expanduser() if text.strip() else None


def parse_link_text(text: str) -> str:
    """A link SPEC, checked (:func:`imgbench.lab.spec.parse_link` raises a ConfigError
    naming ``link.<key>``) and kept as written; empty means no lab."""
    from imgbench.lab.spec import parse_link

    value = text.strip()
    if value:
        parse_link(value)
    return value


def choice(*values: str) -> Parser:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in values:
            raise ValueError(f"choose from {', '.join(values)}, got {text!r}")
        return value

    parse.choices = values  # type: ignore[attr-defined]  # read by Option.metavar
    return parse


def port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port 0..65535 (0 = any free port)"


def between(low: float, high: float) -> Check:
    return lambda v: None if low <= v <= high else f"must be within {low}..{high}"


def writable_dir(value: Path) -> str | None:
    """A directory that exists and is writable, or can be created where it would go.

    Checked before a run starts, so a comparison never ends with nowhere to write.
    Nothing is created here.
    """
    path = value.expanduser().absolute()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot write results under {path}: {probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"cannot write results under {path}: {probe} is not writable"
    return None


def existing_file(value: Path | None) -> str | None:
    """A readable, non-empty regular file (an image to send), or None."""
    if value is None:
        return None
    if value.is_dir():
        return f"{value} is a directory, not a file"
    if not value.exists():
        return f"file {value} does not exist"
    if not value.is_file():
        return f"{value} is not a regular file"
    if not os.access(value, os.R_OK):
        return f"file {value} is not readable"
    if value.stat().st_size == 0:
        return f"file {value} is empty: there is nothing to send"
    return None


# Shared options ------------------------------------------------------------

LOG_OPTIONS: Final = (
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


def grpc_frame_size(value: int) -> str | None:
    if value == 0 or 16384 <= value <= 16_777_215:
        return None
    return "must be 0 (grpcio's default, 16384) or 16384..16777215 bytes (HTTP/2's range)"


#: Transport settings that matter on a real link, the same on both services (the
#: receiver's side of HTTP/2 flow control is the one that limits an upload).
#: Defaults are the libraries' own (grpcio's C core, websockets), except the
#: receiver's WebSocket queue, kept small on purpose (backpressure, bounded memory).
TRANSPORT_OPTIONS: Final = (
    Option(
        "grpc_bdp_probe",
        "IMGBENCH_GRPC_BDP_PROBE",
        "--grpc-bdp-probe",
        parse_bool,
        True,
        "gRPC: grpc.http2.bdp_probe on both sides: HTTP/2 PINGs estimate the"
        " bandwidth-delay product and grow the flow-control windows to it (grpcio's default).",
    ),
    Option(
        "grpc_lookahead_bytes",
        "IMGBENCH_GRPC_LOOKAHEAD_BYTES",
        "--grpc-lookahead-bytes",
        parse_size,
        0,
        "gRPC: grpc.http2.lookahead_bytes on both sides, the initial per-stream"
        " flow-control window (bytes; 0 = grpcio's default, 64 KiB; with BDP probing on,"
        " the probe retunes it).",
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

def readable_file(value: Path | None) -> str | None:
    """A readable regular file (a certificate, key, CA bundle, token file), or None."""
    if value is None:
        return None
    if value.is_dir():
        return f"{value} is a directory, not a file"
    if not value.exists():
        return f"file {value} does not exist"
    if not os.access(value, os.R_OK):
        return f"file {value} is not readable"
    return None


def token_problem(value: str) -> str | None:
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
    MAX_MESSAGE,
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
    *TRANSPORT_OPTIONS,
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
    *LOG_OPTIONS,
)

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
    MAX_MESSAGE,
    *TRANSPORT_OPTIONS,
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
    Option(
        "output",
        "IMGBENCH_OUTPUT",
        "--output",
        Path,
        Path("results"),
        "Directory for results (a subdirectory per run).",
        writable_dir,
    ),
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
        "run_interval",
        "RUN_INTERVAL_SECONDS",
        "--run-interval",
        float,
        0.0,
        "Service mode: repeat the comparison every this many seconds (0 = once).",
        between(0, 86_400),
    ),
)

TRANSMITTER_OPTIONS: Final = (
    *TARGET_OPTIONS,
    *WORKLOAD_OPTIONS,
    *SERVICE_OPTIONS,
    *SECURITY_OPTIONS,
    *LOG_OPTIONS,
)

COMPARE_OPTIONS: Final = (
    *WORKLOAD_OPTIONS,
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
    *TARGET_OPTIONS,
    *SECURITY_OPTIONS,
    *LOG_OPTIONS,
)


#: How ``compare`` and ``sweep`` report: stdout format and pass/fail thresholds.
REPORT_OPTIONS: Final = (
    Option(
        "format",
        "IMGBENCH_FORMAT",
        "--format",
        choice("text", "json"),
        "text",
        "stdout: text (headline and tables) or json (one JSON document, see"
        " schemas/compare.schema.json; progress and logs go to stderr).",
    ),
    Option(
        "thresholds",
        "IMGBENCH_THRESHOLDS",
        "--threshold",
        parse_thresholds,
        (),
        "Check after the run, e.g. websocket/binary:p90<5ms or grpc:ratio<1.2 (repeatable;"
        " comma separated in the env var; grammar in README). Exit 99 when one fails.",
        multiple=True,
    ),
)


@dataclass(frozen=True)
class ReportSettings:
    """How a comparison is reported (not part of the measured workload)."""

    format: str = REPORT_OPTIONS[0].default
    thresholds: tuple[Threshold, ...] = REPORT_OPTIONS[1].default


#: Workload settings a ``POST /runs`` body may override (by field name). Not the
#: image path or the output directory: an API client must not choose which local
#: file is read or where results are written.
RUN_OVERRIDES: Final = tuple(
    o for o in WORKLOAD_OPTIONS if o.name not in ("image", "output")
)


def override_workload(base: TransmitterSettings, body: Mapping[str, Any]) -> TransmitterSettings:
    """``base`` with the workload settings in ``body`` (field name -> value) replaced.

    Values are parsed and checked like the environment variable's text; an
    unknown name or a bad value raises :class:`ConfigError` naming the setting.
    """
    allowed = {o.name: o for o in RUN_OVERRIDES}
    for key in body:
        if key not in allowed:
            raise ConfigError(
                str(key), f"not a workload setting (one of {', '.join(sorted(allowed))})"
            )
    values: dict[str, Any] = {}
    for key, given in body.items():
        text = ",".join(map(str, given)) if isinstance(given, list) else str(given)
        try:
            values.update(resolve([allowed[key]], argparse.Namespace(**{key: text}), {}))
        except ConfigError as exc:
            raise ConfigError(key, exc.reason) from exc
    return replace(base, **values)


def report_settings(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> ReportSettings:
    return ReportSettings(**resolve(REPORT_OPTIONS, args, _env(environ)))


# Building ------------------------------------------------------------------


#: compare/sweep start their own receiver on free ports unless told to use an
#: external one: there the receiver's address and ports only apply with that flag.
EXTERNAL_ONLY: Final = frozenset({"receiver_host", "ws_port", "grpc_port", "http_port"})


def add_arguments(
    parser: argparse.ArgumentParser,
    options: Sequence[Option],
    *,
    only_with_external: frozenset[str] = frozenset(),
) -> None:
    """Add one flag per option; defaults stay None so the env var can apply.

    ``--help`` shows each option's allowed values (or a name) as metavar, its
    environment variable and its real default; options named in
    ``only_with_external`` say they apply only with ``--external-receiver``.
    """
    for opt in options:
        # Boolean flags work bare (--serve) and with a value (--serve=false).
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if opt.parse is parse_bool else {}
        if opt.multiple:
            extra["action"] = "append"
        parser.add_argument(
            opt.flag,
            dest=opt.name,
            default=None,
            metavar=opt.metavar,
            help=(
                f"{opt.help} Only with --external-receiver (a local receiver takes free"
                f" ports). [env {opt.env}, default {_show(opt.default)} with"
                " --external-receiver]"
                if opt.name in only_with_external
                else f"{opt.help} [env {opt.env}, default {_show(opt.default)}]"
            ),
            **extra,
        )


def resolve(
    options: Sequence[Option], args: argparse.Namespace | None, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Values of ``options``: flag, else environment, else default; parsed and checked."""
    values: dict[str, Any] = {}
    for opt in options:
        raw = getattr(args, opt.name, None) if args is not None else None
        if isinstance(raw, list):  # a repeatable flag: its values, comma-joined
            raw = ",".join(raw)
        if raw is None:
            raw = environ.get(opt.env)
        if raw is None:
            value = opt.default
        else:
            try:
                value = opt.parse(str(raw))
            except (ValueError, TypeError) as exc:
                raise ConfigError(opt.label, f"cannot parse {raw!r}: {exc}") from exc
        if opt.check is not None and value is not None:
            problem = opt.check(value)
            if problem:
                shown = repr(str(value) if isinstance(value, Path) else value)
                raise ConfigError(opt.label, f"{problem}, got {shown}")
        values[opt.name] = value
    return values


def _show(value: Any) -> str:
    if value == ():
        return "none"
    if isinstance(value, tuple):
        return ",".join(value)
    return "none" if value is None else str(value)


# Typed settings --------------------------------------------------------------


def _defaults(*options: Option) -> dict[str, Any]:
    """Each option's default by field name: the one place a default is written."""
    out: dict[str, Any] = {}
    for opt in options:
        if out.setdefault(opt.name, opt.default) != opt.default:
            raise AssertionError(f"two defaults for {opt.name}")
    return out


_OBSERVE: Final = _defaults(*LOG_OPTIONS)
_TRANSPORT: Final = _defaults(*TRANSPORT_OPTIONS)
_SECURITY: Final = _defaults(*SECURITY_OPTIONS)
_RECEIVER: Final = _defaults(*RECEIVER_OPTIONS)
_TRANSMITTER: Final = _defaults(*TRANSMITTER_OPTIONS, *COMPARE_OPTIONS)


@dataclass(frozen=True)
class ObserveSettings:
    """Logging and telemetry switches, shared by every command.

    Field defaults come from the option tables above (:func:`_defaults`), so
    each default is written once; a test checks every field has its option.
    """

    log_format: str = _OBSERVE["log_format"]
    log_level: str = _OBSERVE["log_level"]
    telemetry: bool = _OBSERVE["telemetry"]
    grpc_instrumentation: bool = _OBSERVE["grpc_instrumentation"]


@dataclass(frozen=True)
class TransportSettings(ObserveSettings):
    """Transport settings both services apply (:data:`TRANSPORT_OPTIONS`)."""

    grpc_bdp_probe: bool = _TRANSPORT["grpc_bdp_probe"]
    grpc_lookahead_bytes: int = _TRANSPORT["grpc_lookahead_bytes"]
    grpc_max_frame_size: int = _TRANSPORT["grpc_max_frame_size"]
    ws_write_limit: int = _TRANSPORT["ws_write_limit"]
    ws_max_queue: int = _TRANSPORT["ws_max_queue"]
    # Security (:data:`SECURITY_OPTIONS`); the token never appears in a repr.
    tls: bool = _SECURITY["tls"]
    tls_cert: Path | None = _SECURITY["tls_cert"]
    tls_key: Path | None = _SECURITY["tls_key"]
    tls_ca: Path | None = _SECURITY["tls_ca"]
    tls_client_auth: bool = _SECURITY["tls_client_auth"]
    token: str = field(default=_SECURITY["token"], repr=False)
    token_file: Path | None = _SECURITY["token_file"]

    @property
    def tls_on(self) -> bool:
        """TLS on every connection: asked for, or implied by a certificate or CA."""
        return self.tls or self.tls_cert is not None or self.tls_ca is not None

    def grpc_options(self) -> list[tuple[str, int]]:
        """grpcio channel/server arguments for the HTTP/2 settings (unset = grpcio's own)."""
        options = [("grpc.http2.bdp_probe", int(self.grpc_bdp_probe))]
        if self.grpc_lookahead_bytes:
            options.append(("grpc.http2.lookahead_bytes", self.grpc_lookahead_bytes))
        if self.grpc_max_frame_size:
            options.append(("grpc.http2.max_frame_size", self.grpc_max_frame_size))
        return options


@dataclass(frozen=True)
class ReceiverSettings(TransportSettings):
    bind: str = _RECEIVER["bind"]
    ws_port: int = _RECEIVER["ws_port"]
    grpc_port: int = _RECEIVER["grpc_port"]
    http_port: int = _RECEIVER["http_port"]
    max_message_bytes: int = _RECEIVER["max_message_bytes"]
    max_image_bytes: int = _RECEIVER["max_image_bytes"]
    max_uploads: int = _RECEIVER["max_uploads"]
    max_upload_buffer_bytes: int = _RECEIVER["max_upload_buffer_bytes"]
    upload_idle_timeout: float = _RECEIVER["upload_idle_timeout"]
    max_runs: int = _RECEIVER["max_runs"]
    max_records_per_run: int = _RECEIVER["max_records_per_run"]
    run_idle_timeout: float = _RECEIVER["run_idle_timeout"]
    max_in_flight: int = _RECEIVER["max_in_flight"]
    max_subscriptions: int = _RECEIVER["max_subscriptions"]
    log_burst: int = _RECEIVER["log_burst"]
    log_window: float = _RECEIVER["log_window"]
    save_dir: Path | None = _RECEIVER["save_dir"]


@dataclass(frozen=True)
class TransmitterSettings(TransportSettings):
    receiver_host: str = _TRANSMITTER["receiver_host"]
    ws_port: int = _TRANSMITTER["ws_port"]
    grpc_port: int = _TRANSMITTER["grpc_port"]
    http_port: int = _TRANSMITTER["http_port"]
    images: int = _TRANSMITTER["images"]
    delay: float = _TRANSMITTER["delay"]
    warmup: int = _TRANSMITTER["warmup"]
    image: Path | None = _TRANSMITTER["image"]
    protocols: tuple[str, ...] = _TRANSMITTER["protocols"]
    in_flight: int = _TRANSMITTER["in_flight"]
    repeat: int = _TRANSMITTER["repeat"]
    ws_mode: str = _TRANSMITTER["ws_mode"]
    grpc_mode: str = _TRANSMITTER["grpc_mode"]
    direction: str = _TRANSMITTER["direction"]
    push_host: str = _TRANSMITTER["push_host"]
    push_ws_port: int = _TRANSMITTER["push_ws_port"]
    push_grpc_port: int = _TRANSMITTER["push_grpc_port"]
    chunk_bytes: int = _TRANSMITTER["chunk_bytes"]
    compression: bool = _TRANSMITTER["compression"]
    max_message_bytes: int = _TRANSMITTER["max_message_bytes"]
    connect_timeout: float = _TRANSMITTER["connect_timeout"]
    image_timeout: float = _TRANSMITTER["image_timeout"]
    output: Path = _TRANSMITTER["output"]
    serve: bool = _TRANSMITTER["serve"]
    bind: str = _TRANSMITTER["bind"]
    api_port: int = _TRANSMITTER["api_port"]
    run_interval: float = _TRANSMITTER["run_interval"]
    external: bool = _TRANSMITTER["external"]
    link: str = _TRANSMITTER["link"]
    tcp_slow_start_after_idle: str = _TRANSMITTER["tcp_slow_start_after_idle"]

    def mode_of(self, protocol: str) -> str:
        if self.direction == "push":
            return PUSH_MODE  # one shape per protocol
        return self.ws_mode if protocol == "websocket" else self.grpc_mode

    def public(self) -> dict[str, Any]:
        """JSON-friendly settings, printed and saved with every result.

        Only those that apply: the service-mode settings (API address and port,
        run interval) only in service mode.
        """
        out: dict[str, Any] = {}
        skip = set() if self.serve else {o.name for o in SERVICE_OPTIONS}
        for f in fields(self):
            if f.name in skip:
                continue
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else value
        out["protocols"] = list(self.protocols)
        out["token"] = bool(self.token)  # whether one was used, never the secret
        out["tls"] = self.tls_on
        return out


def receiver_settings(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> ReceiverSettings:
    cfg = ReceiverSettings(**_with_token(resolve(RECEIVER_OPTIONS, args, _env(environ))))
    if cfg.max_image_bytes > cfg.max_upload_buffer_bytes:
        raise ConfigError(
            "RECEIVER_MAX_UPLOAD_BUFFER_BYTES (--max-upload-buffer-bytes)",
            f"must be at least RECEIVER_MAX_IMAGE_BYTES ({cfg.max_image_bytes}),"
            f" got {cfg.max_upload_buffer_bytes}",
        )
    _distinct_ports(cfg.ws_port, cfg.grpc_port, cfg.http_port)
    return cfg


def _distinct_ports(*ports: int) -> None:
    """Two services on one port cannot both listen: refused before anything binds.

    ``ports`` in the order of :data:`RECEIVER_PORTS`; 0 (any free port) may repeat.
    """
    seen: dict[int, Option] = {}
    for opt, value in zip(RECEIVER_PORTS, ports, strict=True):
        if value and value in seen:
            raise ConfigError(opt.label, f"must differ from {seen[value].label}, both are {value}")
        seen.setdefault(value, opt)


def transmitter_settings(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    options: Sequence[Option] = TRANSMITTER_OPTIONS,
) -> TransmitterSettings:
    return TransmitterSettings(**_with_token(resolve(options, args, _env(environ))))


def _with_token(values: dict[str, Any]) -> dict[str, Any]:
    """Read ``token_file`` into ``token`` (and refuse both, or an unusable token)."""
    path = values.get("token_file")
    if path is None:
        return values
    label = next(o.label for o in SECURITY_OPTIONS if o.name == "token_file")
    if values.get("token"):
        raise ConfigError(label, "give IMGBENCH_TOKEN or IMGBENCH_TOKEN_FILE, not both")
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(label, f"cannot read {path}: {exc}") from exc
    problem = check_token(token)
    if problem:
        raise ConfigError(label, f"the token in {path} {problem}")
    return {**values, "token": token}


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ

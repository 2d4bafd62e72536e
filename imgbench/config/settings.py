"""The typed settings: frozen dataclasses whose defaults are read from the option tables.

A field's default is a lookup in its option table (:func:`_defaults`), never a
second literal: each default is written once, in its
:class:`~imgbench.config.option.Option`. Tests check that every field has
exactly one option with the same default and that no field writes a literal.

Both services: :class:`ObserveSettings` (logs, telemetry),
:class:`TransportSettings` (message limit, HTTP/2 and WebSocket buffers) and
:class:`SecuritySettings` (TLS, the bearer token).
:class:`ReceiverSettings` adds the receiver's address and limits.
:class:`TransmitterSettings` is composed of parts, so each consumer takes only
the part it needs::

    TransmitterSettings
    ├── observe    ObserveSettings    logs, telemetry              (shared)
    ├── transport  TransportSettings  message limit, HTTP/2, WS    (shared)
    ├── security   SecuritySettings   TLS, bearer token            (shared)
    ├── target     TargetSettings     where the receiver listens
    ├── workload   WorkloadSettings   what is sent, how, how long to wait
    ├── push       PushSettings       the transmitter's push servers
    ├── output     Path               where results are written
    ├── service    ServiceSettings    the long-lived HTTP service
    └── compare    CompareSettings    compare/sweep: which receiver, which link

A group of settings shared by both services (as TLS and the token are) is a
class of its own here, a base of :class:`ReceiverSettings` and a part of
:class:`TransmitterSettings`; its options are in :mod:`imgbench.config.shared_options`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Final

from imgbench.config.option import Option
from imgbench.config.receiver_options import RECEIVER_OPTIONS
from imgbench.config.report_options import REPORT_OPTIONS
from imgbench.config.shared_options import (
    OBSERVE_OPTIONS,
    SECURITY_OPTIONS,
    TRANSPORT_OPTIONS,
)
from imgbench.config.thresholds import Threshold
from imgbench.config.transmitter_options import (
    COMPARE_ONLY_OPTIONS,
    COMPARE_OPTIONS,
    PUSH_OPTIONS,
    SERVICE_OPTIONS,
    TARGET_OPTIONS,
    TRANSMITTER_OPTIONS,
    WORKLOAD_OPTIONS,
)


def _defaults(*options: Option) -> dict[str, Any]:
    """Each option's default by field name: the one place a default is written."""
    out: dict[str, Any] = {}
    for opt in options:
        if out.setdefault(opt.name, opt.default) != opt.default:
            raise AssertionError(f"two defaults for {opt.name}")
    return out


_OBSERVE: Final = _defaults(*OBSERVE_OPTIONS)
_TRANSPORT: Final = _defaults(*TRANSPORT_OPTIONS)
_SECURITY: Final = _defaults(*SECURITY_OPTIONS)
_RECEIVER: Final = _defaults(*RECEIVER_OPTIONS)
_TARGET: Final = _defaults(*TARGET_OPTIONS)
_WORKLOAD: Final = _defaults(*WORKLOAD_OPTIONS)
_PUSH: Final = _defaults(*PUSH_OPTIONS)
_SERVICE: Final = _defaults(*SERVICE_OPTIONS)
_COMPARE: Final = _defaults(*COMPARE_ONLY_OPTIONS)
#: Both command tables at once: one name never has two defaults across them.
_TRANSMITTER: Final = _defaults(*TRANSMITTER_OPTIONS, *COMPARE_OPTIONS)
_REPORT: Final = _defaults(*REPORT_OPTIONS)


# Both services ------------------------------------------------------------------


@dataclass(frozen=True)
class ObserveSettings:
    """Logging and telemetry switches, shared by every command."""

    log_format: str = _OBSERVE["log_format"]
    log_level: str = _OBSERVE["log_level"]
    telemetry: bool = _OBSERVE["telemetry"]
    grpc_instrumentation: bool = _OBSERVE["grpc_instrumentation"]


@dataclass(frozen=True)
class TransportSettings:
    """Transport settings both services apply (:data:`TRANSPORT_OPTIONS`)."""

    max_message_bytes: int = _TRANSPORT["max_message_bytes"]
    grpc_bdp_probe: bool = _TRANSPORT["grpc_bdp_probe"]
    grpc_lookahead_bytes: int = _TRANSPORT["grpc_lookahead_bytes"]
    grpc_max_frame_size: int = _TRANSPORT["grpc_max_frame_size"]
    ws_write_limit: int = _TRANSPORT["ws_write_limit"]
    ws_max_queue: int = _TRANSPORT["ws_max_queue"]

    def grpc_options(self) -> list[tuple[str, int]]:
        """grpcio channel/server arguments for the HTTP/2 settings (unset = grpcio's own)."""
        options = [("grpc.http2.bdp_probe", int(self.grpc_bdp_probe))]
        if self.grpc_lookahead_bytes:
            options.append(("grpc.http2.lookahead_bytes", self.grpc_lookahead_bytes))
        if self.grpc_max_frame_size:
            options.append(("grpc.http2.max_frame_size", self.grpc_max_frame_size))
        return options


@dataclass(frozen=True)
class SecuritySettings:
    """TLS and the bearer token (:data:`SECURITY_OPTIONS`); the token never appears in a
    repr (``token_file`` is read into ``token`` when the settings are resolved)."""

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


# The receiver ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiverSettings(SecuritySettings, TransportSettings, ObserveSettings):
    """The receiver's settings (:data:`RECEIVER_OPTIONS`), the shared ones included."""

    bind: str = _RECEIVER["bind"]
    ws_port: int = _RECEIVER["ws_port"]
    grpc_port: int = _RECEIVER["grpc_port"]
    http_port: int = _RECEIVER["http_port"]
    max_image_bytes: int = _RECEIVER["max_image_bytes"]
    max_uploads: int = _RECEIVER["max_uploads"]
    max_upload_buffer_bytes: int = _RECEIVER["max_upload_buffer_bytes"]
    upload_idle_timeout: float = _RECEIVER["upload_idle_timeout"]
    max_connections: int = _RECEIVER["max_connections"]
    handshake_timeout: float = _RECEIVER["handshake_timeout"]
    grpc_idle_timeout: float = _RECEIVER["grpc_idle_timeout"]
    ping_interval: float = _RECEIVER["ping_interval"]
    ping_timeout: float = _RECEIVER["ping_timeout"]
    max_runs: int = _RECEIVER["max_runs"]
    max_records_per_run: int = _RECEIVER["max_records_per_run"]
    run_idle_timeout: float = _RECEIVER["run_idle_timeout"]
    max_in_flight: int = _RECEIVER["max_in_flight"]
    max_subscriptions: int = _RECEIVER["max_subscriptions"]
    log_burst: int = _RECEIVER["log_burst"]
    log_window: float = _RECEIVER["log_window"]
    save_dir: Path | None = _RECEIVER["save_dir"]


# The transmitter's parts ------------------------------------------------------------


@dataclass(frozen=True)
class TargetSettings:
    """Where the transmitter finds the receiver (its address and three ports)."""

    receiver_host: str = _TARGET["receiver_host"]
    ws_port: int = _TARGET["ws_port"]
    grpc_port: int = _TARGET["grpc_port"]
    http_port: int = _TARGET["http_port"]

    @classmethod
    def loopback(cls, ports: Mapping[str, int]) -> TargetSettings:
        """A receiver on 127.0.0.1 with the ports it announced (websocket, grpc, http)."""
        return cls(
            receiver_host="127.0.0.1",
            ws_port=ports["websocket"],
            grpc_port=ports["grpc"],
            http_port=ports["http"],
        )


@dataclass(frozen=True)
class WorkloadSettings:
    """What is sent (image, count, schedule, protocols and modes, direction) and how
    long the transmitter waits for a connection and for each ack."""

    images: int = _WORKLOAD["images"]
    delay: float = _WORKLOAD["delay"]
    warmup: int = _WORKLOAD["warmup"]
    image: Path | None = _WORKLOAD["image"]
    protocols: tuple[str, ...] = _WORKLOAD["protocols"]
    in_flight: int = _WORKLOAD["in_flight"]
    repeat: int = _WORKLOAD["repeat"]
    ws_mode: str = _WORKLOAD["ws_mode"]
    grpc_mode: str = _WORKLOAD["grpc_mode"]
    direction: str = _WORKLOAD["direction"]
    chunk_bytes: int = _WORKLOAD["chunk_bytes"]
    compression: bool = _WORKLOAD["compression"]
    connect_timeout: float = _WORKLOAD["connect_timeout"]
    image_timeout: float = _WORKLOAD["image_timeout"]


@dataclass(frozen=True)
class PushSettings:
    """The push direction: where the transmitter's own servers listen."""

    push_host: str = _PUSH["push_host"]
    push_ws_port: int = _PUSH["push_ws_port"]
    push_grpc_port: int = _PUSH["push_grpc_port"]


@dataclass(frozen=True)
class ServiceSettings:
    """The transmitter as a long-lived HTTP service (``--serve``)."""

    serve: bool = _SERVICE["serve"]
    bind: str = _SERVICE["bind"]
    api_port: int = _SERVICE["api_port"]
    api_max_connections: int = _SERVICE["api_max_connections"]
    api_handshake_timeout: float = _SERVICE["api_handshake_timeout"]
    run_interval: float = _SERVICE["run_interval"]


@dataclass(frozen=True)
class CompareSettings:
    """The comparison commands' own: an external receiver or a local one, and the link."""

    external: bool = _COMPARE["external"]
    link: str = _COMPARE["link"]
    tcp_slow_start_after_idle: str = _COMPARE["tcp_slow_start_after_idle"]


@dataclass(frozen=True)
class TransmitterSettings:
    """The transmitter's settings, one part per concern (module docstring).

    Setting names are unique across the parts, so :meth:`values` and
    :meth:`updated` can address a setting by its name alone (as the option
    tables, a ``POST /runs`` body and the saved results do).
    """

    observe: ObserveSettings = field(default_factory=ObserveSettings)
    transport: TransportSettings = field(default_factory=TransportSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    target: TargetSettings = field(default_factory=TargetSettings)
    workload: WorkloadSettings = field(default_factory=WorkloadSettings)
    push: PushSettings = field(default_factory=PushSettings)
    output: Path = _TRANSMITTER["output"]
    service: ServiceSettings = field(default_factory=ServiceSettings)
    compare: CompareSettings = field(default_factory=CompareSettings)

    def values(self) -> dict[str, Any]:
        """Every setting by name, the parts flattened (in part order)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if is_dataclass(value):
                out.update((g.name, getattr(value, g.name)) for g in fields(value))
            else:
                out[f.name] = value
        return out

    def updated(self, **changes: Any) -> TransmitterSettings:
        """A copy with the settings named in ``changes`` replaced, each in its part.

        An unknown name raises ``TypeError``, as :func:`dataclasses.replace` does.
        """
        unknown = sorted(set(changes) - set(self.values()))
        if unknown:
            raise TypeError(f"not a transmitter setting: {', '.join(unknown)}")
        parts: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if is_dataclass(value) and not isinstance(value, type):
                mine = {g.name: changes[g.name] for g in fields(value) if g.name in changes}
                if mine:
                    parts[f.name] = replace(value, **mine)
            elif f.name in changes:
                parts[f.name] = changes[f.name]
        return replace(self, **parts)

    def public(self) -> dict[str, Any]:
        """JSON-friendly settings by name, printed and saved with every result.

        Only those that apply: the service-mode settings (API address and port,
        run interval) only in service mode.
        """
        skip = set() if self.service.serve else {f.name for f in fields(ServiceSettings)}
        out = {
            name: str(value) if isinstance(value, Path) else value
            for name, value in self.values().items()
            if name not in skip
        }
        out["protocols"] = list(self.workload.protocols)
        out["token"] = bool(self.security.token)  # whether one was used, never the secret
        out["tls"] = self.security.tls_on
        return out


# Reporting ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportSettings:
    """How a comparison is reported (not part of the measured workload)."""

    format: str = _REPORT["format"]
    thresholds: tuple[Threshold, ...] = _REPORT["thresholds"]
    details: bool = _REPORT["details"]

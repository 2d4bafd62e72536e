"""Tracing set-up: one OpenTelemetry tracer provider per service, ``traceparent`` helpers.

Each service builds its own :class:`TracerProvider` (not the global one), so a
test can host both services in one process and still tell their spans apart.

Configuration follows the OpenTelemetry SDK's own environment variables, read
the way ``opentelemetry.sdk._configuration`` reads them (the README lists them):

* export: OTLP when ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (and neither ``OTEL_SDK_DISABLED=true``
  nor ``OTEL_TRACES_EXPORTER=none``), over the protocol of
  ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``,
  else ``grpc`` (the Python SDK's default); ``http/protobuf`` uses the OTLP/HTTP
  exporter. The exporters themselves read the remaining ``OTEL_EXPORTER_OTLP_*``
  variables (headers, timeout, compression, certificates).
* resource: the built-in service name and ``service.version`` rank lowest;
  ``OTEL_RESOURCE_ATTRIBUTES`` overrides them and ``OTEL_SERVICE_NAME``
  overrides both, as the specification ranks them (``Resource.create`` merges
  explicit attributes *over* the environment, so they are merged under it here).
* sampling: ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``.

An unusable value raises :class:`~imgbench.errors.ConfigError` naming the
variable (the CLI exits 2) instead of the SDK's warning-and-default.
A failed export is logged once, with the exporter's reason; later failures are
counted and summarised when the provider shuts down.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind

from imgbench import __version__
from imgbench.errors import ConfigError
from imgbench.observe.logs import get_logger
from imgbench.wire.names import (
    GRPC_SERVICE,
    PUSH_MODE,
    PUSH_SERVICE,
    SEND_METHOD,
    SEND_STREAM_METHOD,
    SUBSCRIBE_METHOD,
    UPLOAD_METHOD,
)

#: ``OTEL_EXPORTER_OTLP_PROTOCOL`` values and the exporter module each selects.
PROTOCOLS: Final = ("grpc", "http/protobuf")
#: ``OTEL_TRACES_SAMPLER`` values (the SDK's built-in samplers).
SAMPLERS: Final = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
#: ``OTEL_TRACES_EXPORTER`` values honoured ("otlp" is the specification's default).
EXPORTERS: Final = ("otlp", "none")
#: The loggers through which the OTLP exporters report each failed batch.
_EXPORTER_LOGGERS: Final = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http",
)


def otlp_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when the standard variables ask for OTLP span export.

    Raises :class:`ConfigError` for an ``OTEL_TRACES_EXPORTER`` other than
    ``otlp`` or ``none``.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = [
        n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()
    ]
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise ConfigError(
            "OTEL_TRACES_EXPORTER",
            f"{','.join(unknown)!r} is not supported (supported: {', '.join(EXPORTERS)})",
        )
    if not names or "none" in names:
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def otlp_protocol(environ: Mapping[str, str] | None = None) -> str:
    """The OTLP protocol for traces: the traces variable, else the generic one, else grpc."""
    env = os.environ if environ is None else environ
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = env.get(name, "").strip()
        if value:
            if value not in PROTOCOLS:
                raise ConfigError(
                    name, f"{value!r} is not supported (supported: {', '.join(PROTOCOLS)})"
                )
            return value
    return "grpc"


def otlp_endpoint(environ: Mapping[str, str] | None = None) -> str:
    """Where spans go, for log lines (the exporter resolves it the same way)."""
    env = os.environ if environ is None else environ
    signal = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if signal:
        return signal
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    # OTLP/HTTP appends the signal path to the generic endpoint; gRPC does not.
    if base and otlp_protocol(env) == "http/protobuf":
        return base.rstrip("/") + "/v1/traces"
    return base


def sampler(environ: Mapping[str, str] | None = None) -> Sampler:
    """The sampler named by ``OTEL_TRACES_SAMPLER`` (+``_ARG``); default parent-based always-on."""
    env = os.environ if environ is None else environ
    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if name not in SAMPLERS:
        raise ConfigError("OTEL_TRACES_SAMPLER", f"{name!r} is not one of {', '.join(SAMPLERS)}")
    if name.endswith("traceidratio"):
        raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or "1.0"
        try:
            ratio = float(raw)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError("OTEL_TRACES_SAMPLER_ARG", f"{raw!r} is not a probability in [0, 1]")
        return (
            TraceIdRatioBased(ratio) if name == "traceidratio" else ParentBasedTraceIdRatio(ratio)
        )
    fixed: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "parentbased_always_on": DEFAULT_ON,
        "parentbased_always_off": DEFAULT_OFF,
    }
    return fixed[name]


def service_resource(default_service_name: str) -> Resource:
    """The resource: SDK defaults < built-in name and version < OTEL_RESOURCE_ATTRIBUTES
    < OTEL_SERVICE_NAME.

    ``Resource.create(attrs)`` merges ``attrs`` over what the environment says,
    so the built-in defaults go in first and the environment detector's result
    is merged over them (the SDK's ``OTELResourceDetector`` already ranks
    ``OTEL_SERVICE_NAME`` over a ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``).
    """
    builtin = Resource.create({SERVICE_NAME: default_service_name, SERVICE_VERSION: __version__})
    return builtin.merge(OTELResourceDetector().detect())


class _ExporterLines(logging.Filter):
    """Keeps the OTLP exporters' per-batch failure lines out of the logs.

    One instance for the process, installed while any :class:`ReportingExporter`
    lives. An exporter logs from the thread that exports, so each line's text is
    kept per thread: the reason the exporting :class:`ReportingExporter` reports.
    """

    def __init__(self) -> None:
        super().__init__()
        self._reasons = threading.local()
        self._users = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self._reasons.last = record.getMessage()[:500]
            return False
        return True

    def reason(self) -> str:
        """The last failure line logged by an exporter on the calling thread ("" if none)."""
        return str(getattr(self._reasons, "last", ""))

    def acquire(self) -> None:
        with self._lock:
            self._users += 1
            if self._users == 1:
                for name in _EXPORTER_LOGGERS:
                    logging.getLogger(name).addFilter(self)

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                for name in _EXPORTER_LOGGERS:
                    logging.getLogger(name).removeFilter(self)


_EXPORTER_LINES: Final = _ExporterLines()


class ReportingExporter(SpanExporter):
    """Wraps a span exporter: logs the first failed export once, clearly; counts the rest.

    Thread-safe (the batch processor exports from its own thread). ``failed_spans``
    and ``exported_spans`` are cumulative counts.
    """

    def __init__(self, inner: SpanExporter, *, endpoint: str, protocol: str) -> None:
        self._inner = inner
        self._endpoint = endpoint
        self._protocol = protocol
        self._lock = threading.Lock()
        self._failing = False
        self.failed_batches = 0
        self.failed_spans = 0
        self.exported_spans = 0
        self._reason = ""
        _EXPORTER_LINES.acquire()
        self._released = False
        self._log = get_logger("imgbench.observe.tracing")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception as exc:  # an exporter must not take the service down
            self._reason = self._reason or f"{type(exc).__name__}: {exc}"
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._reason = self._reason or _EXPORTER_LINES.reason()
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.exported_spans += len(spans)
                if self._failing:
                    self._failing = False
                    self._log.info(
                        "tracing: span export works again",
                        endpoint=self._endpoint,
                        protocol=self._protocol,
                        spans_lost_so_far=self.failed_spans,
                    )
                return result
            first = self.failed_batches == 0
            self.failed_batches += 1
            self.failed_spans += len(spans)
            self._failing = True
        if first:
            self._log.error(
                "tracing: spans could not be exported; they are dropped (logged once,"
                " counted until shutdown)",
                endpoint=self._endpoint,
                protocol=self._protocol,
                reason=self._reason or "the exporter reported a failure",
                spans=len(spans),
            )
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()
        with self._lock:
            released, self._released = self._released, True
        if not released:
            _EXPORTER_LINES.release()
        if self.failed_spans:
            self._log.warning(
                "tracing: spans lost",
                endpoint=self._endpoint,
                protocol=self._protocol,
                failed_spans=self.failed_spans,
                failed_batches=self.failed_batches,
                exported_spans=self.exported_spans,
            )

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def otlp_exporter(environ: Mapping[str, str] | None = None) -> ReportingExporter:
    """The OTLP span exporter of the configured protocol, in a :class:`ReportingExporter`."""
    protocol = otlp_protocol(environ)
    inner: SpanExporter
    # The library's exporters with a cheaper encoder (the same request).
    if protocol == "http/protobuf":
        from imgbench.observe.otlp import FastOTLPHttpSpanExporter

        inner = FastOTLPHttpSpanExporter()
    else:
        from imgbench.observe.otlp import FastOTLPSpanExporter

        inner = FastOTLPSpanExporter()
    return ReportingExporter(inner, endpoint=otlp_endpoint(environ), protocol=protocol)


def tracer_provider(
    default_service_name: str, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A provider for one service.

    ``exporter`` (tests pass an in-memory one) wins; otherwise OTLP when
    configured by the standard variables; otherwise spans are created (trace ids
    still reach logs and exemplars) but not exported. Raises
    :class:`ConfigError` for an unusable ``OTEL_*`` value.
    """
    resource = service_resource(default_service_name)
    name = str(resource.attributes.get(SERVICE_NAME, default_service_name))
    provider = TracerProvider(resource=resource, sampler=sampler())
    log = get_logger("imgbench.observe.tracing")
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    elif otlp_configured():
        otlp = otlp_exporter()
        provider.add_span_processor(BatchSpanProcessor(otlp))
        log.info(
            "tracing: exporting spans over OTLP",
            service_name=name,
            protocol=otlp_protocol(),
            endpoint=otlp_endpoint(),
            sampler=provider.sampler.get_description(),
        )
    else:
        log.info(
            "tracing: no exporter, spans are not exported (set OTEL_EXPORTER_OTLP_ENDPOINT)",
            service_name=name,
        )
    return provider


#: gRPC service and method per mode (semantic conventions: ``rpc.method`` without the service).
_GRPC_METHODS: Final = {
    "unary": (GRPC_SERVICE, SEND_METHOD),
    "stream": (GRPC_SERVICE, SEND_STREAM_METHOD),
    "chunked": (GRPC_SERVICE, UPLOAD_METHOD),
    PUSH_MODE: (PUSH_SERVICE, SUBSCRIBE_METHOD),
}


def span_kinds(mode: str) -> tuple[SpanKind, SpanKind]:
    """Kinds of the (send, receive) image spans for ``mode``.

    Uploads are request/ack exchanges with the receiver as the server: CLIENT and
    SERVER. In push mode the transmitter serves a subscription and pushes images
    down it to a subscribed receiver: PRODUCER and CONSUMER, so that no viewer draws
    the receiver as the server of a connection it opened.
    """
    if mode == PUSH_MODE:
        return SpanKind.PRODUCER, SpanKind.CONSUMER
    return SpanKind.CLIENT, SpanKind.SERVER


def span_attributes(
    protocol: str, mode: str, *, address: str | None = None, port: int | None = None
) -> dict[str, str | int]:
    """Semantic-convention attributes of an image exchange over ``protocol``.

    WebSocket: ``network.protocol.name=websocket``. gRPC: ``rpc.system=grpc`` with
    ``rpc.service``/``rpc.method``, carried by HTTP/2 (``network.protocol.name=http``,
    version 2). ``server.address``/``server.port`` name the endpoint that listens: the
    receiver's, or the transmitter's push server in push mode.
    """
    attrs: dict[str, str | int] = {}
    if protocol == "grpc":
        attrs["rpc.system"] = "grpc"
        if mode in _GRPC_METHODS:
            attrs["rpc.service"], attrs["rpc.method"] = _GRPC_METHODS[mode]
        attrs["network.protocol.name"] = "http"
        attrs["network.protocol.version"] = "2"
    else:
        attrs["network.protocol.name"] = protocol
    attrs["network.transport"] = "tcp"
    if address:
        attrs["server.address"] = address
    if port:
        attrs["server.port"] = port
    return attrs


def traceparent(span: trace.Span) -> str:
    """W3C ``traceparent`` of ``span`` ("" when the span is not recording a valid context)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def context_from_traceparent(value: str) -> Any:
    """An OpenTelemetry context whose parent is the remote span in ``value`` (or None)."""
    if not value:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": value})

"""Tracing set-up: one OpenTelemetry tracer provider per service, ``traceparent`` helpers.

Each service builds its own :class:`TracerProvider` (not the global one), so a
test can host both services in one process and still tell their spans apart.
Spans are exported over OTLP/gRPC when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, honouring the standard
``OTEL_*`` variables; otherwise nothing is exported and one log line says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from imgbench.observe.logs import get_logger


def otlp_configured(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def tracer_provider(
    default_service_name: str, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A provider for one service.

    ``exporter`` (tests pass an in-memory one) wins; otherwise OTLP/gRPC when
    configured by the standard variables; otherwise spans are created (trace ids
    still reach logs and exemplars) but not exported.
    """
    name = os.environ.get("OTEL_SERVICE_NAME") or default_service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    log = get_logger("imgbench.observe.tracing")
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    elif otlp_configured():
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("tracing: exporting spans over OTLP", service_name=name)
    else:
        log.info(
            "tracing: no exporter, spans are not exported (set OTEL_EXPORTER_OTLP_ENDPOINT)",
            service_name=name,
        )
    return provider


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

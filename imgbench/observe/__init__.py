"""Observability, set up once per process at the edge: logs, traces, metrics.

:mod:`imgbench.observe.logs` configures structlog (JSON or console) with trace
ids on every line; :mod:`imgbench.observe.tracing` builds each service's
OpenTelemetry tracer provider and carries ``traceparent``;
:mod:`imgbench.observe.metrics` defines the Prometheus metrics of both services.
"""

from __future__ import annotations

from imgbench.observe.logs import configure_logging, get_logger
from imgbench.observe.metrics import ReceiverMetrics, TransmitterMetrics, new_registry
from imgbench.observe.tracing import context_from_traceparent, traceparent, tracer_provider

__all__ = [
    "ReceiverMetrics",
    "TransmitterMetrics",
    "configure_logging",
    "context_from_traceparent",
    "get_logger",
    "new_registry",
    "traceparent",
    "tracer_provider",
]

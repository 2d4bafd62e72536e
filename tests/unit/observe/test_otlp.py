"""The fast OTLP encoder builds exactly the library's request, for every kind of span."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar
from unittest import mock

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TraceState

from imgbench.observe import otlp
from imgbench.observe.tracing import (
    context_from_traceparent,
    otlp_exporter,
    span_attributes,
    traceparent,
)


def _provider(
    resource: Resource | None = None, limits: SpanLimits | None = None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=resource or Resource.create({"service.name": "imgbench-test"}),
        span_limits=limits,
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def _image_spans(provider: TracerProvider) -> None:
    """A run span, a send span linked to it, and a receive span under a remote parent,
    with the attributes the services set (every scalar type)."""
    tracer = provider.get_tracer("imgbench.transmitter", "1.0", schema_url="https://x/1.0")
    with tracer.start_as_current_span("websocket run", attributes={"imgbench.images": 10}) as run:
        link = Link(run.get_span_context(), attributes={"imgbench.kind": "run"})
        with tracer.start_as_current_span(
            "send image",
            context=Context(),
            kind=SpanKind.CLIENT,
            links=[link],
            attributes={
                **span_attributes("grpc", "unary", address="127.0.0.1", port=50051),
                "imgbench.run_id": "20261202T080000Z-abcdef12",
                "imgbench.sequence": 0,
                "imgbench.warmup": False,
                "imgbench.bytes": 1 << 20,
            },
        ) as send:
            parent = traceparent(send)
    receiver = provider.get_tracer("imgbench.receiver")
    span = receiver.start_span(
        "receive image",
        context=context_from_traceparent(parent),
        kind=SpanKind.SERVER,
        start_time=time.time_ns() - 1000,
        attributes={
            "imgbench.transmission_s": 0.00123,
            "imgbench.negative": -5,
            "imgbench.zero": -0.0,
            "imgbench.empty": "",
            "imgbench.checksum_ok": True,
            "imgbench.raw": b"\x00\xff",
            "imgbench.list": ["a", "b"],
            "imgbench.huge": 1 << 70,  # out of int64: the library drops it, so must we
            "": "no key",
            "imgbench.unicode": "défaut ✓",
        },
    )
    span.set_status(Status(StatusCode.ERROR, "checksum mismatch"))
    span.end()
    other = provider.get_tracer("imgbench.transmitter", "1.0", schema_url="https://x/1.0")
    with other.start_as_current_span("probe", kind=SpanKind.PRODUCER):  # an equal scope
        pass
    state = trace.SpanContext(
        trace_id=0x1234,
        span_id=0x5678,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
        trace_state=TraceState([("vendor", "value")]),
    )
    ctx = trace.set_span_in_context(trace.NonRecordingSpan(state))
    with receiver.start_as_current_span("consume", context=ctx, kind=SpanKind.CONSUMER):
        pass


def _spans() -> list[ReadableSpan]:
    provider, memory = _provider()
    _image_spans(provider)
    spans = list(memory.get_finished_spans())
    # A second provider with an equal resource: merged into one ResourceSpans, as the library does.
    again, memory2 = _provider()
    again.get_tracer("imgbench.transmitter").start_span("late").end()
    return spans + list(memory2.get_finished_spans())


def test_the_request_equals_the_librarys_for_the_services_spans() -> None:
    spans = _spans()
    fast = otlp.translate(spans)
    assert fast == encode_spans(spans)
    assert len(fast.resource_spans) == 1  # the equal resources merged
    assert fast.SerializeToString() == encode_spans(spans).SerializeToString()
    # Again, now from the key/value cache: still the same.
    assert otlp.translate(spans) == encode_spans(spans)


def test_distinct_resources_and_dropped_counts() -> None:
    limits = SpanLimits(max_span_attributes=2, max_links=1, max_link_attributes=1)
    one, memory = _provider(Resource.create({"service.name": "a"}), limits)
    two, memory2 = _provider(Resource.create({"service.name": "b"}))
    tracer = one.get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        context = root.get_span_context()
    tracer.start_span(
        "many",
        attributes={"a": 1, "b": 2, "c": 3},
        links=[Link(context, {"x": 1, "y": 2}), Link(context)],
    ).end()
    two.get_tracer("t").start_span("other").end()
    spans = list(memory.get_finished_spans()) + list(memory2.get_finished_spans())
    assert spans[1].dropped_attributes == 1 and spans[1].dropped_links == 1
    assert otlp.translate(spans) == encode_spans(spans)
    assert len(otlp.translate(spans).resource_spans) == 2


def test_a_span_with_events_goes_through_the_library() -> None:
    provider, memory = _provider()
    with (
        pytest.raises(ValueError, match="lost"),
        provider.get_tracer("t").start_as_current_span("fails"),
    ):
        raise ValueError("lost")  # recorded as an exception event on the span
    spans = list(memory.get_finished_spans())
    assert spans[0].events
    assert otlp.encode_request(spans) is None
    assert otlp.translate(spans) == encode_spans(spans)


def test_the_cache_stays_bounded() -> None:
    provider, memory = _provider()
    tracer = provider.get_tracer("t")
    for i in range(otlp.CACHE_ENTRIES + 10):
        tracer.start_span("s", attributes={"imgbench.sequence": i}).end()
    spans = list(memory.get_finished_spans())
    assert otlp.translate(spans) == encode_spans(spans)
    assert len(otlp._pair_cache) <= otlp.CACHE_ENTRIES


def test_the_grpc_exporter_uses_the_fast_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    exporter = otlp_exporter()
    inner = exporter._inner
    assert isinstance(inner, otlp.FastOTLPSpanExporter)
    spans = _spans()
    assert inner._translate_data(spans) == encode_spans(spans)
    exporter.shutdown()


class _Collector(http.server.BaseHTTPRequestHandler):
    """A local OTLP/HTTP endpoint that keeps each request and answers ``status``."""

    protocol_version = "HTTP/1.1"
    requests: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        type(self).requests.append((self.path, headers, body))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, type[_Collector]]]:
    handler = type("Handler", (_Collector,), {"requests": [], "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_http_exporter_posts_the_librarys_request_encoded_fast(
    monkeypatch: pytest.MonkeyPatch, collector: tuple[str, type[_Collector]]
) -> None:
    url, handler = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    exporter = otlp_exporter()
    inner = exporter._inner
    assert isinstance(inner, otlp.FastOTLPHttpSpanExporter)
    spans = _spans()
    encoded = mock.Mock(wraps=otlp.encode_request)
    monkeypatch.setattr(otlp, "encode_request", encoded)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert encoded.call_count == 1  # the fast encoder, not the library's
    ((path, headers, body),) = handler.requests
    assert path == "/v1/traces" and headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceRequest.FromString(body) == encode_spans(spans)
    # A batch with span events goes through the library: still its request.
    provider, memory = _provider()
    with (
        pytest.raises(ValueError, match="lost"),
        provider.get_tracer("t").start_as_current_span("fails"),
    ):
        raise ValueError("lost")
    with_events = list(memory.get_finished_spans())
    assert exporter.export(with_events) == SpanExportResult.SUCCESS
    assert ExportTraceServiceRequest.FromString(handler.requests[1][2]) == encode_spans(with_events)
    # A refused export (400: not retried) is a failure, as with the library.
    handler.status = 400
    assert exporter.export(spans) == SpanExportResult.FAILURE
    assert len(handler.requests) == 3
    exporter.shutdown()
    assert inner.export(spans) == SpanExportResult.FAILURE  # shut down: the library's answer
    assert len(handler.requests) == 3


def test_float_attributes_under_odd_keys_and_extreme_values() -> None:
    provider, memory = _provider()
    tracer = provider.get_tracer("t")
    for attributes in (
        {"": 2.5, "imgbench.inf": float("inf"), "imgbench.tiny": -1e-300},
        {"imgbench.inf": float("-inf"), "imgbench.tiny": 5e-324, "": 0.0},
    ):
        tracer.start_span("floats", attributes=attributes).end()
        link = Link(trace.SpanContext(1, 2, False), attributes=attributes)
        tracer.start_span("link", links=[link]).end()
    spans = list(memory.get_finished_spans())
    assert otlp.translate(spans) == encode_spans(spans)
    assert otlp.translate(spans) == encode_spans(spans)  # again, from the prefix cache

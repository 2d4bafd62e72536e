"""The benchmark's OTLP sink (benchmarks/baseline.py) takes what the services export.

The telemetry step exports over OTLP/HTTP (``benchmarks.telemetry.OTLP_PROTOCOL``);
were the sink to refuse it, "telemetry on" would measure failed exports. Real
exporters (the services' own, of both protocols) against the real baseline process.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks.baseline import baseline_process, sink_stats
from imgbench.observe import otlp
from imgbench.observe.tracing import otlp_exporter


def _spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "imgbench-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("imgbench.transmitter")
    for sequence in range(3):
        tracer.start_span("send image", attributes={"imgbench.sequence": sequence}).end()
    return list(memory.get_finished_spans())


def _raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        return conn.recv(4096)


async def test_the_sink_counts_exports_over_http_and_grpc(monkeypatch: pytest.MonkeyPatch) -> None:
    spans = _spans()
    size = len(otlp.encode_request(spans) or b"")
    assert size > 0
    async with baseline_process() as base:
        before = await sink_stats(base["grpc"])
        for protocol, port in (("http/protobuf", base["otlp_http"]), ("grpc", base["grpc"])):
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
            exporter = otlp_exporter()
            try:
                results = [await asyncio.to_thread(exporter.export, spans) for _ in range(2)]
            finally:
                await asyncio.to_thread(exporter.shutdown)
            assert results == [SpanExportResult.SUCCESS] * 2, protocol
        after = await sink_stats(base["grpc"])
        assert after["otlp_exports"] - before["otlp_exports"] == 4
        assert after["otlp_bytes"] - before["otlp_bytes"] == 4 * size
        # Anything but a POST to /v1/traces is refused, not counted.
        refused = await asyncio.to_thread(
            _raw_request, base["otlp_http"], b"GET /v1/metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert refused.startswith(b"HTTP/1.1 400 ")
        assert await sink_stats(base["grpc"]) == after

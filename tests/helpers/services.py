"""Test helpers: a real receiver on loopback ports, and a transmitter harness for it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from imgbench.config.settings import ReceiverSettings, TransmitterSettings
from imgbench.observe.metrics import ReceiverMetrics, TransmitterMetrics
from receiver.server import ReceiverServer
from transmitter.runner import Harness


def memory_tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@dataclass
class LiveReceiver:
    server: ReceiverServer
    spans: InMemorySpanExporter

    @property
    def metrics(self) -> ReceiverMetrics:
        return self.server.metrics

    def transmitter_settings(self, **overrides: object) -> TransmitterSettings:
        """Settings pointing at this receiver: 3 images, no delay, 1 warm-up by default."""
        defaults: dict[str, object] = {
            "receiver_host": "127.0.0.1",
            "ws_port": self.server.ports["websocket"],
            "grpc_port": self.server.ports["grpc"],
            "http_port": self.server.ports["http"],
            "images": 3,
            "delay": 0.0,
            "warmup": 1,
            "connect_timeout": 5.0,
            "image_timeout": 20.0,
            "max_message_bytes": self.server.settings.max_message_bytes,
        }
        return TransmitterSettings().updated(**{**defaults, **overrides})


async def start_receiver(**overrides: object) -> LiveReceiver:
    provider, exporter = memory_tracing()
    settings = replace(
        ReceiverSettings(ws_port=0, grpc_port=0, http_port=0),
        **overrides,  # type: ignore[arg-type]
    )
    server = ReceiverServer(settings, tracing=provider)
    await server.start()
    return LiveReceiver(server, exporter)


@dataclass
class LiveTransmitter:
    harness: Harness
    metrics: TransmitterMetrics
    tracing: TracerProvider
    spans: InMemorySpanExporter


def make_transmitter(settings: TransmitterSettings) -> LiveTransmitter:
    provider, exporter = memory_tracing()
    metrics = TransmitterMetrics()
    harness = Harness(settings, provider.get_tracer("test.transmitter"), metrics)
    return LiveTransmitter(harness, metrics, provider, exporter)

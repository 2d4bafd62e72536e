"""Test helpers: a real receiver on loopback ports (in this process or its own), and a
transmitter harness for it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

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
class ReceiverProcess:
    """A receiver running as its own process (``python -m receiver``): its memory is its own."""

    proc: subprocess.Popen[bytes]
    #: The bound ports from its ready file: ``websocket``, ``grpc``, ``http``.
    ports: dict[str, int]

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"


@contextmanager
def receiver_process(
    ready_dir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    stderr: Path | None = None,
    ready_timeout: float = 30.0,
) -> Iterator[ReceiverProcess]:
    """Start ``python -m receiver`` on free loopback ports, wait for its ready file, and
    stop it (SIGTERM, then SIGKILL after 15 s) on leaving, whatever happened.

    ``args`` are extra command-line flags; ``env`` is added to this process's
    environment; ``stderr`` (default: discarded) is a file for the receiver's stderr
    (grpc core's traces go there). Blocks up to ``ready_timeout`` seconds; fails if the
    receiver exits or is not ready by then.
    """
    ready = ready_dir / "ready.json"
    ready.unlink(missing_ok=True)
    with open(stderr if stderr is not None else os.devnull, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "receiver", "--port", "0", "--grpc-port", "0",
             "--http-port", "0", "--log-level", "error", *args],
            env={**os.environ, **(env or {}), "IMGBENCH_READY_FILE": str(ready)},
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + ready_timeout
        while not ready.exists():
            assert proc.poll() is None, "receiver exited"
            assert time.monotonic() < deadline, "receiver not ready"
            time.sleep(0.05)
        yield ReceiverProcess(proc, json.loads(ready.read_text()))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (all bound at once, so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()

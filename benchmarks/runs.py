"""One run of a variant: the real harness or a bare pair, and what they share.

Receivers always run in processes of their own: the imgbench receiver through
:func:`transmitter.compare.local_receiver`, exactly as ``imgbench compare``
starts it, and the references through :func:`benchmarks.baseline.baseline_process`.
The variants being compared run interleaved within each repetition (their
order rotates, :func:`rotate`), so drift on a noisy machine hits all alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from benchmarks.baseline import (
    BareClient,
    BareGrpcClient,
    BareGrpclibClient,
    BarePicowsClient,
    BareWebSocketClient,
    RawTcpClient,
    StreamsTcpClient,
)
from benchmarks.plan import Plan
from imgbench.config.settings import TargetSettings, TransmitterSettings
from imgbench.measure.results import NS, ProtocolRun, Sample
from imgbench.observe.metrics import TransmitterMetrics
from imgbench.runtime import resources
from imgbench.wire import HeadTemplate, digest
from transmitter.compare import local_receiver
from transmitter.image import Image
from transmitter.runner import Harness, new_run_id
from transmitter.senders import GrpcSender, Payload, make_sender

#: The imgbench modes measured, as (protocol, mode) and their label.
HARNESS_MODES = {
    "websocket/binary": ("websocket", "binary"),
    "grpc/unary": ("grpc", "unary"),
    "grpc/stream": ("grpc", "stream"),
}
BARE = ("bare websockets", "bare grpc unary", "bare grpc stream")
#: Second library per protocol, measured when installed (the ``bench`` extra).
OTHER_BARE = {
    "bare picows": "picows",
    "bare grpclib unary": "grpclib",
    "bare grpclib stream": "grpclib",
}
#: The gRPC sender as it was before the prebuilt message (one join per send).
JOIN = "grpc/unary join (before)"
#: The baseline every ratio is taken against: zero-copy asyncio sockets.
RAW = "raw tcp"
#: The other reading of "a minimal asyncio sender/receiver": streams, library defaults.
STREAMS = "tcp streams"

Log = Callable[[str], None]


def make_image(size: int) -> Image:
    """Incompressible bytes of exactly ``size`` (the same payload for every variant)."""
    data = os.urandom(size)
    return Image(f"random-{size}", data, digest(data), "application/octet-stream")


def rotate(items: list[str], rep: int) -> list[str]:
    k = rep % len(items)
    out = items[k:] + items[:k]
    return out[::-1] if rep % 2 else out


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (or with None, unset) environment variables for a child process start."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


NO_OTLP = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": None,
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": None,
    "IMGBENCH_TELEMETRY": None,
}


@contextlib.asynccontextmanager
async def receiver(
    base: TransmitterSettings, log_path: Path, **env: str | None
) -> AsyncIterator[TransmitterSettings]:
    """An imgbench receiver process; yields transmitter settings pointing at it."""
    with environ(**env):
        starting = local_receiver(base, log_path)
        ports = await starting.__aenter__()
    try:
        local = TargetSettings.loopback(ports)
        yield replace(base, target=local)
    finally:
        await starting.__aexit__(None, None, None)


def base_settings(plan: Plan, **overrides: Any) -> TransmitterSettings:
    return TransmitterSettings().updated(
        **{
            "warmup": plan.warmup,
            "delay": plan.delay,
            "connect_timeout": 20.0,
            "image_timeout": 30.0,
            "log_level": "info",
            **overrides,
        }
    )


def with_mode(settings: TransmitterSettings, label: str) -> TransmitterSettings:
    protocol, mode = HARNESS_MODES[label]
    if protocol == "websocket":
        return settings.updated(protocols=(protocol,), ws_mode=mode)
    return settings.updated(protocols=(protocol,), grpc_mode=mode)


class _JoiningGrpcSender(GrpcSender):
    """The gRPC sender before the prebuilt message: header and image joined per send."""

    def _one_buffer(self, head: bytes, data: bytes) -> bytes:
        return b"".join((head, data))

    def prepare(self, template: HeadTemplate, data: bytes) -> Callable[[int], Payload]:
        return lambda send_ns: b"".join(template.parts(send_ns, data))


async def harness_run(
    settings: TransmitterSettings, label: str, image: Image, tracing: TracerProvider
) -> list[Sample]:
    """One imgbench protocol run through the real harness; its measured samples."""
    return (await protocol_run(settings, label, image, tracing)).samples


async def protocol_run(
    settings: TransmitterSettings, label: str, image: Image, tracing: TracerProvider
) -> ProtocolRun:
    """One imgbench protocol run through the real harness (samples and costs)."""
    join = label == JOIN
    settings = with_mode(settings, "grpc/unary" if join else label)
    harness = Harness(settings, tracing.get_tracer("imgbench.bench"), TransmitterMetrics())
    sender = (
        _JoiningGrpcSender(settings, tracing)
        if join
        else make_sender(settings.workload.protocols[0], settings, tracing)
    )
    return await harness.run_protocol(sender, image, new_run_id())


async def bare_run(
    client: BareClient, image: Image, images: int, warmup: int, delay: float
) -> list[float]:
    """Transmission times (s) of one reference run, defined as in the harness."""
    times, _, _ = await bare_run_costs(client, image, images, warmup, delay)
    return times


def process_cpu_s(pid: int) -> float:
    """CPU seconds of every thread of process ``pid`` so far (``/proc``, nanoseconds).

    The scheduler's own runtime counters (``schedstat``), the figure ``getrusage``
    reports for this process, read from outside.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / NS


async def bare_run_costs(
    client: BareClient,
    image: Image,
    images: int,
    warmup: int,
    delay: float,
    *,
    receiver_pid: int | None = None,
) -> tuple[list[float], float, float]:
    """Transmission times (s) of one reference run, defined as in the harness, and the
    CPU seconds of the measured images of this process and of ``receiver_pid`` (0 when
    not given), over the same window as the harness's costs: after the warm-ups, to
    the last ack."""
    await client.connect()
    try:
        for _ in range(warmup):
            await client.send(image.data)
            await asyncio.sleep(delay)
        rx_cpu = process_cpu_s(receiver_pid) if receiver_pid is not None else 0.0
        tx_cpu = resources.transport_cpu_seconds()
        times = []
        for i in range(images):
            if i:
                await asyncio.sleep(delay)
            start = time.monotonic_ns()
            received = await client.send(image.data)
            times.append((received - start) / NS)
        tx_cpu = resources.transport_cpu_seconds() - tx_cpu
        rx_cpu = process_cpu_s(receiver_pid) - rx_cpu if receiver_pid is not None else 0.0
        return times, tx_cpu, rx_cpu
    finally:
        await client.close()


def bare_client(name: str, ports: dict[str, int]) -> BareClient:
    if name == RAW:
        return RawTcpClient(ports["raw"])
    if name == STREAMS:
        return StreamsTcpClient(ports["streams"])
    if name == "bare websockets":
        return BareWebSocketClient(ports["websocket"])
    if name == "bare picows":
        return BarePicowsClient(ports["picows"])
    if name.startswith("bare grpclib"):
        return BareGrpclibClient(ports["grpclib"], name.rsplit(" ", 1)[1])
    return BareGrpcClient(ports["grpc"], name.rsplit(" ", 1)[1])


async def timed(name: str, step: Awaitable[dict[str, Any]], log: Log) -> dict[str, Any]:
    start = time.monotonic()
    log(f"{name} ...")
    result = await step
    result["elapsed_s"] = time.monotonic() - start
    return result

"""The three measurements: throughput against raw TCP, telemetry overhead, concurrency.

Every figure is measured over several repetitions and the median quoted; the
variants being compared run interleaved within each repetition (their order
rotates from one repetition to the next), so drift on a noisy machine hits
all of them alike. Receivers always run in processes of their own: the
imgbench receiver through :func:`transmitter.compare.local_receiver`, exactly
as ``imgbench compare`` starts it, and the references through
:func:`benchmarks.baseline.baseline_process`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from opentelemetry.sdk.trace import TracerProvider

from benchmarks.baseline import (
    BareClient,
    BareGrpcClient,
    BareGrpclibClient,
    BarePicowsClient,
    BareWebSocketClient,
    RawTcpClient,
    StreamsTcpClient,
    sink_stats,
)
from imgbench.config.settings import MIB, ReceiverSettings, TransmitterSettings
from imgbench.measure.results import NS, ProtocolRun, Sample
from imgbench.observe.metrics import TransmitterMetrics
from imgbench.observe.tracing import tracer_provider
from imgbench.runtime.http import get_json, request
from imgbench.wire import digest
from transmitter.compare import local_receiver
from transmitter.image import Image
from transmitter.runner import Harness, new_run_id
from transmitter.senders import GrpcSender, Payload, Sender, make_sender

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


@dataclass(frozen=True)
class Plan:
    """How much to measure: ``QUICK`` (under ~2 minutes) or ``FULL``."""

    name: str
    reps: int
    sizes: tuple[int, ...]
    images: dict[int, int]
    warmup: int
    delay: float
    overhead_reps: int
    overhead_images: int
    overhead_modes: tuple[str, ...]
    levels: tuple[int, ...]
    concurrency_images: int
    concurrency_reps: int
    concurrency_modes: tuple[str, ...]
    linearity_reps: int = 3
    linearity_images: int = 6
    #: Harness / bare pairs at 1 MiB (adjacent runs, ABBA), images per run.
    pair_reps: int = 24
    pair_images: int = 12


QUICK = Plan(
    name="quick",
    reps=3,
    sizes=(MIB, 8 * MIB),
    images={MIB: 15, 8 * MIB: 8},
    warmup=2,
    delay=0.01,
    overhead_reps=8,
    overhead_images=15,
    overhead_modes=("websocket/binary", "grpc/unary"),
    levels=(1, 4, 16, 64),
    concurrency_images=192,
    concurrency_reps=1,
    concurrency_modes=("websocket/binary", "grpc/unary"),
    linearity_reps=1,
    linearity_images=4,
    pair_reps=6,
    pair_images=8,
)
FULL = Plan(
    name="full",
    reps=7,
    sizes=(MIB, 8 * MIB),
    images={MIB: 40, 8 * MIB: 20},
    warmup=3,
    delay=0.01,
    # Many short interleaved pairs (a paired bootstrap needs pairs, not long runs):
    # 36 x 20 images per side, the same images as the former 12 x 60.
    overhead_reps=36,
    overhead_images=20,
    overhead_modes=("websocket/binary", "grpc/unary", "grpc/stream"),
    levels=(1, 4, 16, 64),
    concurrency_images=512,
    concurrency_reps=3,
    concurrency_modes=("websocket/binary", "grpc/unary", "grpc/stream"),
)


def make_image(size: int) -> Image:
    """Incompressible bytes of exactly ``size`` (the same payload for every variant)."""
    data = os.urandom(size)
    return Image(f"random-{size}", data, digest(data), "application/octet-stream")


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median: order statistics (binomial, n >= 6).

    The widest symmetric pair (k-th smallest, k-th largest) whose coverage
    ``1 - 2 P(Bin(n, 1/2) < k)`` still reaches ``confidence``.
    """
    from math import comb

    ordered = sorted(values)
    n = len(ordered)
    k, below = 1, 0.0
    while True:
        below += comb(n, k - 1) / 2**n  # P(Bin < k)
        nxt = below + comb(n, k) / 2**n
        if 1 - 2 * nxt < confidence or k >= n // 2:
            break
        k += 1
    return ordered[k - 1], ordered[n - k]


def paired_ratio_interval(
    on: list[float], off: list[float], confidence: float = 0.95, resamples: int = 4000
) -> tuple[float, float, float]:
    """sum(on) / sum(off) over paired runs, with a paired bootstrap percentile interval.

    Pairs (``on[i]``, ``off[i]``) were measured next to each other, so they are
    resampled together: the machine's load, which moves both, cancels within a
    pair. The ratio of sums weighs every image alike and lets a run that
    happened to hold a periodic cost (an OTLP export batch) count once, as it
    does in reality, instead of deciding a median. Seeded: the same data give
    the same interval.
    """
    if len(on) != len(off) or len(on) < 2:
        raise ValueError("need at least two on/off pairs of equal count")
    rng = random.Random(0)
    n = len(on)
    ratios = []
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        ratios.append(sum(on[i] for i in picks) / sum(off[i] for i in picks))
    ratios.sort()
    tail = (1 - confidence) / 2
    low = ratios[int(tail * resamples)]
    high = ratios[min(resamples - 1, int((1 - tail) * resamples))]
    return sum(on) / sum(off), low, high


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

TELEMETRY_OFF = {**NO_OTLP, "IMGBENCH_TELEMETRY": "off"}


@contextlib.asynccontextmanager
async def receiver(
    base: TransmitterSettings, log_path: Path, **env: str | None
) -> AsyncIterator[TransmitterSettings]:
    """An imgbench receiver process; yields transmitter settings pointing at it."""
    with environ(**env):
        starting = local_receiver(base, log_path)
        ports = await starting.__aenter__()
    try:
        yield replace(
            base,
            receiver_host="127.0.0.1",
            ws_port=ports["websocket"],
            grpc_port=ports["grpc"],
            http_port=ports["http"],
        )
    finally:
        await starting.__aexit__(None, None, None)


def base_settings(plan: Plan, **overrides: Any) -> TransmitterSettings:
    return replace(
        TransmitterSettings(
            warmup=plan.warmup,
            delay=plan.delay,
            connect_timeout=20.0,
            image_timeout=30.0,
            log_level="info",
        ),
        **overrides,
    )


def with_mode(settings: TransmitterSettings, label: str) -> TransmitterSettings:
    protocol, mode = HARNESS_MODES[label]
    if protocol == "websocket":
        return replace(settings, protocols=(protocol,), ws_mode=mode)
    return replace(settings, protocols=(protocol,), grpc_mode=mode)


class _JoiningGrpcSender(GrpcSender):
    """The gRPC sender before the prebuilt message: header and image joined per send."""

    def _one_buffer(self, head: bytes, data: bytes) -> bytes:
        return b"".join((head, data))


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
        else make_sender(settings.protocols[0], settings, tracing)
    )
    return await harness.run_protocol(sender, image, new_run_id())


async def bare_run(
    client: BareClient, image: Image, images: int, warmup: int, delay: float
) -> list[float]:
    """Transmission times (s) of one reference run, defined as in the harness."""
    await client.connect()
    try:
        for _ in range(warmup):
            await client.send(image.data)
            await asyncio.sleep(delay)
        times = []
        for i in range(images):
            if i:
                await asyncio.sleep(delay)
            start = time.monotonic_ns()
            received = await client.send(image.data)
            times.append((received - start) / NS)
        return times
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


# -- 1. throughput against raw TCP ----------------------------------------------


async def throughput(plan: Plan, base_ports: dict[str, int], out: Path, log: Log) -> dict[str, Any]:
    """Per-image throughput of every variant, and its ratio to raw TCP, per size."""
    settings = base_settings(plan)
    tracing = TracerProvider()  # spans created, not exported: `imgbench compare` by default
    others = [v for v, port in OTHER_BARE.items() if port in base_ports]
    variants = [RAW, STREAMS, *BARE, *others, *HARNESS_MODES, JOIN]
    iperf = await iperf3_gbit_s(log)
    results: dict[str, Any] = {}
    async with receiver(settings, out / "receiver-throughput.log", **NO_OTLP) as target:
        for size in plan.sizes:
            image = make_image(size)
            images = plan.images[size]
            per_rep: dict[str, list[float]] = {v: [] for v in variants}
            for rep in range(plan.reps):
                for variant in rotate(variants, rep):
                    if variant in HARNESS_MODES or variant == JOIN:
                        samples = await harness_run(
                            replace(target, images=images), variant, image, tracing
                        )
                        times = [s.transmission_s for s in samples]
                    else:
                        times = await bare_run(
                            bare_client(variant, base_ports),
                            image,
                            images,
                            plan.warmup,
                            plan.delay,
                        )
                    per_rep[variant].append(size / median(times) / 1e6)
                log(
                    f"  throughput {size // MIB} MiB rep {rep + 1}/{plan.reps}: "
                    + ", ".join(
                        f"{v} {per_rep[v][-1] / per_rep[RAW][-1]:.2f}" for v in variants[1:]
                    )
                    + f" (raw {per_rep[RAW][-1]:.0f} MB/s)"
                )
            results[str(size)] = {
                variant: {
                    "mb_s_per_rep": per_rep[variant],
                    "mb_s_median": median(per_rep[variant]),
                    "ratio_per_rep": [
                        x / raw for x, raw in zip(per_rep[variant], per_rep[RAW], strict=True)
                    ],
                    "ratio_median": median(
                        [x / raw for x, raw in zip(per_rep[variant], per_rep[RAW], strict=True)]
                    ),
                    "streams_ratio_median": median(
                        [x / b for x, b in zip(per_rep[variant], per_rep[STREAMS], strict=True)]
                    ),
                }
                for variant in variants
            }
    return {
        "images": {str(k): v for k, v in plan.images.items()},
        "iperf3_gbit_s": iperf,
        "sizes": results,
    }


async def iperf3_gbit_s(log: Log, seconds: int = 3) -> float | None:
    """Loopback TCP throughput by iperf3 (one stream, ``seconds`` long), None if absent."""
    import json
    import shutil

    if shutil.which("iperf3") is None:
        log("  iperf3 not installed (apt-get install iperf3): no socket-limit check")
        return None
    server = await asyncio.create_subprocess_exec(
        "iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", "52011",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await asyncio.sleep(0.5)
        client = await asyncio.create_subprocess_exec(
            "iperf3", "-c", "127.0.0.1", "-p", "52011", "-t", str(seconds), "-J",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(client.communicate(), seconds + 20)
        gbit = float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9
        log(f"  iperf3 loopback: {gbit:.1f} Gbit/s ({gbit * 1e3 / 8:.0f} MB/s)")
        return gbit
    except (TimeoutError, KeyError, ValueError) as exc:
        log(f"  iperf3 failed: {exc!r}")
        return None
    finally:
        if server.returncode is None:
            server.terminate()
            await server.wait()


# -- 2. telemetry overhead ------------------------------------------------------


async def overhead(plan: Plan, base_ports: dict[str, int], out: Path, log: Log) -> dict[str, Any]:
    """Median per-image time with all telemetry on divided by the same with it off.

    On: spans on both sides exported over OTLP/gRPC (BatchSpanProcessor) to the
    sink in the baseline process, per-image metrics, logs at info, checksum (the
    opt-in gRPC RPC-span interceptors stay at their default, off). Off:
    ``IMGBENCH_TELEMETRY=off`` on both sides (logs at info and the checksum stay:
    they are not switched off).
    """
    endpoint = f"http://127.0.0.1:{base_ports['grpc']}"
    otlp: dict[str, str | None] = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_TRACES_EXPORTER": None,
        "OTEL_SDK_DISABLED": None,
        "IMGBENCH_TELEMETRY": "on",
    }
    image = make_image(MIB)
    settings = base_settings(plan, images=plan.overhead_images)
    before = await sink_stats(base_ports["grpc"])
    with environ(**otlp):
        tracing_on = tracer_provider("imgbench-bench-transmitter")
    tracing_off = TracerProvider()
    per_rep: dict[str, dict[str, list[float]]] = {
        label: {"on": [], "off": [], "rt_on": [], "rt_off": [], "cpu_on": [], "cpu_off": []}
        for label in plan.overhead_modes
    }
    try:
        async with (
            receiver(settings, out / "receiver-telemetry-on.log", **otlp) as on,
            receiver(
                settings,
                out / "receiver-telemetry-off.log",
                **{**NO_OTLP, "IMGBENCH_TELEMETRY": "off"},
            ) as off,
        ):
            off = replace(off, telemetry=False)
            for rep in range(plan.overhead_reps):
                for label in plan.overhead_modes:
                    order = ["on", "off"] if rep % 4 in (0, 3) else ["off", "on"]
                    for which in order:
                        target, tracing = (on, tracing_on) if which == "on" else (off, tracing_off)
                        run = await protocol_run(target, label, image, tracing)
                        samples = run.samples
                        per_rep[label][which].append(median([s.transmission_s for s in samples]))
                        # CPU seconds of both processes per image (getrusage): what
                        # telemetry adds, without the wall clock's scheduling noise.
                        cpu = run.costs.get("transmitter_cpu_s", 0.0) + run.costs.get(
                            "receiver_cpu_s", 0.0
                        )
                        per_rep[label]["cpu_" + which].append(cpu / len(samples))
                        per_rep[label]["rt_" + which].append(
                            median([s.round_trip_s for s in samples])
                        )
                log(
                    f"  telemetry rep {rep + 1}/{plan.overhead_reps} (wall, cpu): "
                    + ", ".join(
                        f"{label} {per_rep[label]['on'][-1] / per_rep[label]['off'][-1]:.3f}"
                        f" {per_rep[label]['cpu_on'][-1] / per_rep[label]['cpu_off'][-1]:.3f}"
                        for label in plan.overhead_modes
                    )
                )
    finally:
        tracing_on.force_flush()
        tracing_on.shutdown()
    await asyncio.sleep(0.2)
    after = await sink_stats(base_ports["grpc"])
    modes = {}
    for label, r in per_rep.items():
        ratios = [a / b for a, b in zip(r["on"], r["off"], strict=True)]
        rt_ratios = [a / b for a, b in zip(r["rt_on"], r["rt_off"], strict=True)]
        cpu_ratios = [a / b for a, b in zip(r["cpu_on"], r["cpu_off"], strict=True)]
        total, low, high = paired_ratio_interval(r["cpu_on"], r["cpu_off"])
        modes[label] = {
            # Headline: total CPU on / off over all pairs, paired bootstrap interval.
            "cpu_ratio_total": total,
            "cpu_ratio_total_interval": [low, high],
            "cpu_per_image_on_s": r["cpu_on"],
            "cpu_per_image_off_s": r["cpu_off"],
            "cpu_ratio_per_rep": cpu_ratios,
            "cpu_ratio_median": median(cpu_ratios),
            "cpu_ratio_interval": median_interval(cpu_ratios),
            "ratio_interval": median_interval(ratios),
            "transmission_on_s": r["on"],
            "transmission_off_s": r["off"],
            "round_trip_on_s": r["rt_on"],
            "round_trip_off_s": r["rt_off"],
            "ratio_per_rep": ratios,
            "ratio_median": median(ratios),
            "round_trip_ratio_per_rep": rt_ratios,
            "round_trip_ratio_median": median(rt_ratios),
        }
    return {
        "image_bytes": MIB,
        "images": plan.overhead_images,
        "otlp_exports": after["otlp_exports"] - before["otlp_exports"],
        "otlp_bytes": after["otlp_bytes"] - before["otlp_bytes"],
        "modes": modes,
    }


# -- 3. concurrency and bounded memory ------------------------------------------------


@dataclass
class _StartTogether(Harness):
    """The real harness, but every transmitter of a level starts its measured
    images at the same moment, and the receiver's peak-RSS mark is left alone
    (the harness resets it around each run; here one level spans many runs)."""

    barrier: asyncio.Barrier | None = None
    _started: bool = field(default=False, init=False)

    async def _costs_snapshot(self) -> dict[str, Any]:
        if not self._started and self.barrier is not None:
            self._started = True
            await self.barrier.wait()
        return {}


async def _level(
    settings: TransmitterSettings, label: str, image: Image, level: int, per_tx: int
) -> dict[str, Any]:
    settings = replace(with_mode(settings, label), images=per_tx, warmup=1, delay=0.0)
    tracing = TracerProvider()
    metrics = TransmitterMetrics()
    barrier = asyncio.Barrier(level)
    await request("127.0.0.1", settings.http_port, "POST", "/stats/reset-peak", timeout=5)

    async def one() -> list[Sample]:
        harness = _StartTogether(
            settings, tracing.get_tracer("imgbench.bench"), metrics, barrier=barrier
        )
        sender = make_sender(settings.protocols[0], settings, tracing)
        try:
            return (await harness.run_protocol(sender, image, new_run_id())).samples
        except BaseException:
            await barrier.abort()
            raise

    outcomes = await asyncio.wait_for(
        asyncio.gather(*(one() for _ in range(level)), return_exceptions=True), 300
    )
    samples = [s for o in outcomes if isinstance(o, list) for s in o]
    errors = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    status, stats = await get_json("127.0.0.1", settings.http_port, "/stats", timeout=5)
    window = (
        (max(s.ack_ns for s in samples) - min(s.send_ns for s in samples)) / NS if samples else 0
    )
    return {
        "transmitters": level,
        "images": len(samples),
        "errors": errors[:5],
        "error_count": len(errors),
        "window_s": window,
        "aggregate_mb_s": sum(s.image_bytes for s in samples) / window / 1e6 if window else 0.0,
        "receiver_peak_rss_bytes": stats["peak_rss_bytes"] if status == 200 else None,
        "receiver_rss_bytes": stats["rss_bytes"] if status == 200 else None,
    }


async def concurrency(plan: Plan, out: Path, log: Log) -> dict[str, Any]:
    """Aggregate throughput and receiver peak RSS at each level of concurrent transmitters.

    Each mode gets a fresh receiver process, so its memory figures do not carry
    what an earlier mode left in the heap.
    """
    image = make_image(MIB)
    settings = base_settings(plan)
    results: dict[str, Any] = {}
    idle_rss: dict[str, int] = {}
    for label in plan.concurrency_modes:
        log_path = out / f"receiver-concurrency-{label.replace('/', '-')}.log"
        async with receiver(settings, log_path, **NO_OTLP) as target:
            status, idle = await get_json("127.0.0.1", target.http_port, "/stats", timeout=5)
            idle_rss[label] = idle["rss_bytes"] if status == 200 else 0
            levels: dict[int, list[dict[str, Any]]] = {n: [] for n in plan.levels}
            for rep in range(plan.concurrency_reps):
                order = list(plan.levels) if rep % 2 == 0 else list(plan.levels)[::-1]
                for n in order:
                    per_tx = max(4, plan.concurrency_images // n)
                    outcome = await _level(target, label, image, n, per_tx)
                    levels[n].append(outcome)
                    log(
                        f"  concurrency {label} x{n}: {outcome['aggregate_mb_s']:.0f} MB/s,"
                        f" peak RSS {(outcome['receiver_peak_rss_bytes'] or 0) / MIB:.0f} MiB,"
                        f" {outcome['error_count']} errors"
                    )
        summary = {
            str(n): {
                "aggregate_mb_s_median": median([r["aggregate_mb_s"] for r in runs]),
                "receiver_peak_rss_bytes_max": max(r["receiver_peak_rss_bytes"] or 0 for r in runs),
                "errors": sum(r["error_count"] for r in runs),
                "runs": runs,
            }
            for n, runs in levels.items()
        }
        best = max(v["aggregate_mb_s_median"] for v in summary.values())
        top = summary[str(max(plan.levels))]
        results[label] = {
            "levels": summary,
            "best_mb_s": best,
            "top_level_ratio": top["aggregate_mb_s_median"] / best if best else 0.0,
            "receiver_idle_rss_bytes": idle_rss[label],
        }
    return {
        "image_bytes": MIB,
        "images_per_level": plan.concurrency_images,
        "receiver_idle_rss_bytes": max(idle_rss.values()) if idle_rss else None,
        "max_in_flight": int(
            os.environ.get("RECEIVER_MAX_IN_FLIGHT", ReceiverSettings().max_in_flight)
        ),
        "modes": results,
    }


async def timed(name: str, step: Awaitable[dict[str, Any]], log: Log) -> dict[str, Any]:
    start = time.monotonic()
    log(f"{name} ...")
    result = await step
    result["elapsed_s"] = time.monotonic() - start
    return result


# -- 1b. harness / bare library, side by side in adjacent pairs -------------------

#: Label suffix of the harness as it was before the inline per-image timeout.
WAIT_FOR: Final = " wait_for (before)"
#: Each harness mode and the bare library pair it is held against.
HARNESS_PAIRS: Final = (
    ("websocket/binary", "bare websockets"),
    ("grpc/unary", "bare grpc unary"),
    ("grpc/stream", "bare grpc stream"),
)


class _WaitForSender:
    """A sender whose send runs through ``asyncio.wait_for``, as the harness did
    before ea0a0c1 (a new Task per send, started on a later loop iteration):
    the "before" of the inline per-image timeout, side by side in one run."""

    def __init__(self, inner: Sender) -> None:
        self._inner = inner
        self.protocol = inner.protocol
        self.mode = inner.mode

    async def connect(self, deadline: float, traceparent: str) -> None:
        await self._inner.connect(deadline, traceparent)

    async def send(self, payload: Payload) -> bytes:
        return await asyncio.wait_for(self._inner.send(payload), 3600)

    async def close(self) -> None:
        await self._inner.close()


async def _wait_for_run(
    settings: TransmitterSettings, label: str, image: Image, tracing: TracerProvider
) -> list[Sample]:
    settings = with_mode(settings, label)
    harness = Harness(settings, tracing.get_tracer("imgbench.bench"), TransmitterMetrics())
    sender = _WaitForSender(make_sender(settings.protocols[0], settings, tracing))
    return (await harness.run_protocol(sender, image, new_run_id())).samples


def paired_median_interval(
    ratios: list[float], confidence: float = 0.95, resamples: int = 4000
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of per-pair ratios (seeded)."""
    rng = random.Random(0)
    n = len(ratios)
    meds = sorted(
        statistics.median(ratios[rng.randrange(n)] for _ in range(n)) for _ in range(resamples)
    )
    tail = (1 - confidence) / 2
    return meds[int(tail * resamples)], meds[min(resamples - 1, int((1 - tail) * resamples))]


async def harness_pairs(
    plan: Plan, base_ports: dict[str, int], out: Path, log: Log, size: int = MIB
) -> dict[str, Any]:
    """Harness / bare throughput at ``size``, each pair measured back to back.

    In the throughput step ten other variants run between a mode and its bare
    library, and the load of a shared machine moves in between. Here each pair
    is adjacent (the harness, the harness with the pre-ea0a0c1 ``wait_for``, and
    the bare library, order rotating), runs are short, and there are many:
    the ratio of each pair is taken, and its median over pairs gets a paired
    bootstrap interval.
    """
    settings = base_settings(plan)
    tracing = TracerProvider()
    image = make_image(size)
    images = plan.pair_images
    per_pair: dict[str, list[float]] = {m: [] for m, _ in HARNESS_PAIRS}
    per_pair.update({m + WAIT_FOR: [] for m, _ in HARNESS_PAIRS})
    async with receiver(settings, out / "receiver-pairs.log", **NO_OTLP) as target:
        for rep in range(plan.pair_reps):
            for mode, bare in HARNESS_PAIRS:
                got: dict[str, float] = {}
                for which in rotate(["h", "b", "w"], rep):
                    if which in ("h", "w"):
                        run = harness_run if which == "h" else _wait_for_run
                        samples = await run(replace(target, images=images), mode, image, tracing)
                        times = [s.transmission_s for s in samples]
                    else:
                        times = await bare_run(
                            bare_client(bare, base_ports), image, images, plan.warmup, plan.delay
                        )
                    got[which] = median(times)
                per_pair[mode].append(got["b"] / got["h"])
                per_pair[mode + WAIT_FOR].append(got["b"] / got["w"])
            if rep % 4 == 3 or rep == plan.pair_reps - 1:
                log(
                    f"  harness/bare {size // MIB} MiB pairs {rep + 1}/{plan.pair_reps}: "
                    + ", ".join(f"{m} {median(r):.2f}" for m, r in per_pair.items())
                )
    return {
        "image_bytes": size,
        "images": images,
        "modes": {
            m: {
                "ratio_per_pair": r,
                "ratio_median": median(r),
                "ratio_interval": list(paired_median_interval(r)),
            }
            for m, r in per_pair.items()
        },
    }

"""Step 2: telemetry overhead, all on against ``IMGBENCH_TELEMETRY=off``, in CPU time.

Wall time cannot resolve 5 % on a shared 2-core machine, so the figure is the
CPU time both processes spend per image. Two *pipelines* run side by side, each
a transmitter process (``python -m benchmarks.telemetry --pipeline on|off``)
with a receiver process of its own:

* on: spans on both sides exported over OTLP (``BatchSpanProcessor``) to the
  sink in the baseline process, per-image metrics, logs at info, checksum
  (the opt-in gRPC RPC-span interceptors stay at their default, off); over
  :data:`OTLP_PROTOCOL`, OTLP/HTTP, as docker-compose.yml ships it;
* off: ``IMGBENCH_TELEMETRY=off`` on both sides (no spans, no per-image
  metrics; logs at info and the checksum stay).

Each pair is one protocol run on each pipeline *at the same time* (the parent
starts both and waits for both), so the machine's load, which moves from one
second to the next, falls on both runs of a pair alike. Every process serves
one variant only, so all of its CPU is attributable: the transmitter's own
(``getrusage``) and the receiver's (``/stats``, its HTTP API thread excluded),
read before connecting and after closing, so the span exports that the batch
processors run on their own threads every few seconds are counted where they
happen (only the few milliseconds between two runs are outside a window).
Per-image CPU is that over the run's images, warm-ups included. The figure is
total CPU on / total CPU off over all pairs, with a paired bootstrap interval
(:func:`benchmarks.intervals.paired_ratio_interval`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from benchmarks.baseline import sink_stats
from benchmarks.intervals import median, median_interval, paired_ratio_interval
from benchmarks.plan import FULL, Plan
from benchmarks.runs import (
    NO_OTLP,
    Log,
    base_settings,
    environ,
    make_image,
    protocol_run,
    receiver,
)
from imgbench.config.option import MIB
from imgbench.observe.logs import configure_logging
from imgbench.observe.tracing import tracer_provider
from imgbench.runtime import alloc, gcfreeze, resources
from imgbench.runtime.http import get_json

#: A pipeline that does not answer within this many seconds is stopped (a run is ~1 s).
RUN_TIMEOUT_S = 120.0


#: The OTLP protocols a pipeline can export over (``OTEL_EXPORTER_OTLP_PROTOCOL``).
OTLP_PROTOCOLS = ("grpc", "http/protobuf")
#: The one the overhead step measures: OTLP/HTTP, as docker-compose.yml ships it. Over
#: OTLP/gRPC the exporter's grpcio channel shares the gRPC transmitter's process with the
#: measured channel (README "Performance", telemetry, for the two side by side).
OTLP_PROTOCOL = "http/protobuf"


def otlp_environment(sink_port: int, protocol: str = "grpc") -> dict[str, str | None]:
    """Everything on: spans exported over OTLP (``protocol``) to the sink on ``sink_port``
    (the baseline's gRPC port for ``grpc``, its OTLP/HTTP port for ``http/protobuf``)."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": None,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": None,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_TRACES_EXPORTER": None,
        "OTEL_SDK_DISABLED": None,
        "IMGBENCH_TELEMETRY": "on",
    }


#: Telemetry off on both sides (no OTLP either).
OFF_ENVIRONMENT: dict[str, str | None] = {**NO_OTLP, "IMGBENCH_TELEMETRY": "off"}


async def _receiver_cpu_s(port: int) -> float:
    status, body = await get_json("127.0.0.1", port, "/stats", timeout=10)
    if status != 200:
        raise RuntimeError(f"receiver /stats answered {status}")
    return float(body["cpu_s"])


async def _serve_pipeline(
    which: str,
    sink_port: int,
    images: int,
    warmup: int,
    delay: float,
    log_path: Path,
    protocol: str = "grpc",
) -> None:
    """The child: one receiver process, one transmitter (this process); runs on request.

    Reads a mode label per line on stdin, runs one protocol run of it and writes
    one JSON line: CPU seconds of both processes over the whole run (connect to
    close), the images it sent (warm-ups included) and its median times.
    """
    on = which == "on"
    env = otlp_environment(sink_port, protocol) if on else OFF_ENVIRONMENT
    # settings.telemetry also reaches the receiver (as --telemetry, which wins over
    # IMGBENCH_TELEMETRY): before this module ran pipelines, the "off" receiver was
    # started with the default (on) and created spans and per-image metrics.
    settings = base_settings(FULL, images=images, warmup=warmup, delay=delay, telemetry=on)
    with environ(**env):
        tracing = tracer_provider("imgbench-bench-transmitter") if on else TracerProvider()
    image = make_image(MIB)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        async with receiver(settings, log_path, **env) as target:
            gcfreeze.freeze_after_startup()  # as the services do once started
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            while label := (await reader.readline()).decode().strip():
                if label == "quit":
                    break
                rx_before = await _receiver_cpu_s(target.target.http_port)
                tx_before = resources.transport_cpu_seconds()
                run = await protocol_run(target, label, image, tracing)
                tx = resources.transport_cpu_seconds() - tx_before
                rx = await _receiver_cpu_s(target.target.http_port) - rx_before
                sent = len(run.samples) + len(run.warmup_samples)
                line = {
                    "transmitter_cpu_s": tx,
                    "receiver_cpu_s": rx,
                    "images": sent,
                    "transmission_s": median([s.transmission_s for s in run.samples]),
                    "round_trip_s": median([s.round_trip_s for s in run.samples]),
                }
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
    finally:
        tracing.shutdown()


class _Pipeline:
    """The parent's handle on one pipeline child process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    async def run(self, label: str) -> dict[str, Any]:
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(label.encode() + b"\n")
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), RUN_TIMEOUT_S)
        if not line:
            raise RuntimeError(f"telemetry pipeline exited (code {await proc.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result


@contextlib.asynccontextmanager
async def pipeline(
    which: str, sink_port: int, plan: Plan, out: Path, protocol: str = "grpc"
) -> AsyncIterator[_Pipeline]:
    """Start a pipeline child (``which``: on or off; ``protocol``: the OTLP protocol of
    "on"), yield it ready; stop it on exit."""
    name = which if which == "off" else f"{which}-{protocol.replace('/', '-')}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.telemetry", "--pipeline", which,
        "--otlp-protocol", protocol,
        "--sink", str(sink_port), "--images", str(plan.overhead_images),
        "--warmup", str(plan.warmup), "--delay", str(plan.delay),
        "--log", str(out / f"receiver-telemetry-{name}.log"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = await asyncio.wait_for(proc.stdout.readline(), RUN_TIMEOUT_S)
        if ready.strip() != b"ready":
            raise RuntimeError(f"telemetry pipeline {which} did not start")
        yield _Pipeline(proc)
    finally:
        if proc.returncode is None and proc.stdin is not None:
            with contextlib.suppress(ConnectionError):
                proc.stdin.write(b"quit\n")
                await proc.stdin.drain()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def overhead(plan: Plan, base_ports: dict[str, int], out: Path, log: Log) -> dict[str, Any]:
    """CPU per image with all telemetry on over the same with it off, in concurrent pairs."""
    sink = base_ports["otlp_http"] if OTLP_PROTOCOL == "http/protobuf" else base_ports["grpc"]
    before = await sink_stats(base_ports["grpc"])
    keys = (
        "on",
        "off",
        "rt_on",
        "rt_off",
        "cpu_on",
        "cpu_off",
        "tx_on",
        "tx_off",
        "rx_on",
        "rx_off",
    )
    per_rep: dict[str, dict[str, list[float]]] = {
        label: {k: [] for k in keys} for label in plan.overhead_modes
    }
    async with (
        pipeline("on", sink, plan, out, OTLP_PROTOCOL) as on,
        pipeline("off", sink, plan, out) as off,
    ):
        for rep in range(plan.overhead_reps):
            for label in plan.overhead_modes:
                run_on, run_off = await asyncio.gather(on.run(label), off.run(label))
                got = {"on": run_on, "off": run_off}
                r = per_rep[label]
                for which, run in got.items():
                    n = run["images"]
                    r[which].append(run["transmission_s"])
                    r["rt_" + which].append(run["round_trip_s"])
                    r["tx_" + which].append(run["transmitter_cpu_s"] / n)
                    r["rx_" + which].append(run["receiver_cpu_s"] / n)
                    r["cpu_" + which].append((run["transmitter_cpu_s"] + run["receiver_cpu_s"]) / n)
            if rep % 5 == 4 or rep == plan.overhead_reps - 1:
                log(
                    f"  telemetry pairs {rep + 1}/{plan.overhead_reps} (cpu on/off so far): "
                    + ", ".join(
                        f"{label} {sum(r['cpu_on']) / sum(r['cpu_off']):.3f}"
                        for label, r in per_rep.items()
                    )
                )
    await asyncio.sleep(0.2)
    after = await sink_stats(base_ports["grpc"])
    modes = {}
    for label, r in per_rep.items():
        ratios = [a / b for a, b in zip(r["on"], r["off"], strict=True)]
        rt_ratios = [a / b for a, b in zip(r["rt_on"], r["rt_off"], strict=True)]
        cpu_ratios = [a / b for a, b in zip(r["cpu_on"], r["cpu_off"], strict=True)]
        total, low, high = paired_ratio_interval(r["cpu_on"], r["cpu_off"])
        tx_total, tx_low, tx_high = paired_ratio_interval(r["tx_on"], r["tx_off"])
        rx_total, rx_low, rx_high = paired_ratio_interval(r["rx_on"], r["rx_off"])
        modes[label] = {
            # Headline: total CPU on / off over all pairs, paired bootstrap interval.
            "cpu_ratio_total": total,
            "cpu_ratio_total_interval": [low, high],
            "cpu_per_image_on_s": r["cpu_on"],
            "cpu_per_image_off_s": r["cpu_off"],
            # Each side alone: where the overhead is.
            "transmitter_cpu_ratio": tx_total,
            "transmitter_cpu_ratio_interval": [tx_low, tx_high],
            "transmitter_cpu_per_image_on_s": r["tx_on"],
            "transmitter_cpu_per_image_off_s": r["tx_off"],
            "receiver_cpu_ratio": rx_total,
            "receiver_cpu_ratio_interval": [rx_low, rx_high],
            "receiver_cpu_per_image_on_s": r["rx_on"],
            "receiver_cpu_per_image_off_s": r["rx_off"],
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
        "warmup": plan.warmup,
        "method": "concurrent pipelines, whole-run CPU",
        "otlp_protocol": OTLP_PROTOCOL,
        "otlp_exports": after["otlp_exports"] - before["otlp_exports"],
        "otlp_bytes": after["otlp_bytes"] - before["otlp_bytes"],
        "modes": modes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", choices=("on", "off"), required=True)
    parser.add_argument("--sink", type=int, required=True, help="the OTLP sink's port")
    parser.add_argument("--otlp-protocol", choices=OTLP_PROTOCOLS, default="grpc")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.01)
    parser.add_argument("--log", type=Path, required=True, help="the receiver's log file")
    args = parser.parse_args(argv)
    # An entry point of its own: malloc tuned and logs at info, as the services do.
    alloc.keep_image_buffers()
    with args.log.with_name(args.log.stem + "-transmitter.log").open("w") as log_file:
        configure_logging("json", "info", stream=log_file)
        asyncio.run(
            _serve_pipeline(
                args.pipeline,
                args.sink,
                args.images,
                args.warmup,
                args.delay,
                args.log,
                args.otlp_protocol,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

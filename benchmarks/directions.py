"""Upload against push, per protocol, side by side in one run: the masking cost as a figure.

``python -m benchmarks.directions [--sizes sample,8MiB] [--images 30] [--repeat 4]``

One receiver process; for each image size and repetition the four runs
(WebSocket upload = binary, WebSocket push, gRPC upload = bidirectional stream
``Receiver/SendStream``, gRPC push = bidirectional stream ``Pusher/Subscribe``)
go through the real harness in a rotating order, so drift on a shared machine
spreads over all four. gRPC uploads use the stream mode so that the gRPC pair
differs only in which side is the server. Printed per size: the median
transmission time of each (samples of every repetition pooled, closed loop,
warm-ups excluded) and the ratio push / upload per protocol with its
percentile-bootstrap 95 % interval (the verdict's method, seed 0). Also the
CPU time per measured image of each process (``getrusage`` around the measured
images, median over repetitions): less sensitive than wall time to other load
on the machine, and where masking shows (the client masks, the server unmasks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from benchmarks.intervals import median
from benchmarks.runs import NO_OTLP, make_image, receiver, rotate
from imgbench.config.option import parse_size
from imgbench.config.settings import TransmitterSettings
from imgbench.measure.stats import bootstrap_ratio_ci
from imgbench.observe.logs import configure_logging
from imgbench.observe.metrics import TransmitterMetrics
from transmitter.image import Image, load_image
from transmitter.runner import Harness, new_run_id
from transmitter.senders import make_sender

#: label -> (protocol, direction); uploads of gRPC in the stream mode.
RUNS = {
    "websocket upload": ("websocket", "upload"),
    "websocket push": ("websocket", "push"),
    "grpc upload (stream)": ("grpc", "upload"),
    "grpc push": ("grpc", "push"),
}

UPLOADS = {"websocket": "websocket upload", "grpc": "grpc upload (stream)"}


def _image(size: str) -> Image:
    return load_image(None) if size == "sample" else make_image(parse_size(size))


async def measure(sizes: list[str], images: int, repeat: int, delay: float) -> dict[str, Any]:
    base = TransmitterSettings().updated(
        images=images,
        warmup=2,
        delay=delay,
        grpc_mode="stream",
        connect_timeout=20.0,
        image_timeout=60.0,
        log_level="warning",
    )
    tracing = TracerProvider()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="imgbench-dir-") as tmp:
        async with receiver(base, Path(tmp) / "receiver.log", **NO_OTLP) as target:
            for size in sizes:
                image = _image(size)
                times: dict[str, list[float]] = {label: [] for label in RUNS}
                # CPU ms per measured image of each process, one value per repetition.
                cpu: dict[str, dict[str, list[float]]] = {
                    label: {"transmitter": [], "receiver": []} for label in RUNS
                }
                for rep in range(repeat):
                    for label in rotate(list(RUNS), rep):
                        protocol, direction = RUNS[label]
                        s = target.updated(protocols=(protocol,), direction=direction)
                        harness = Harness(s, tracing.get_tracer("bench"), TransmitterMetrics())
                        run = await harness.run_protocol(
                            make_sender(protocol, s, tracing), image, new_run_id(), repetition=rep
                        )
                        times[label] += [x.transmission_s for x in run.samples]
                        for side in ("transmitter", "receiver"):
                            if f"{side}_cpu_s" in run.costs:
                                cpu[label][side].append(
                                    run.costs[f"{side}_cpu_s"] * 1000 / len(run.samples)
                                )
                out[size] = {"bytes": image.size, "times": times, "cpu_ms_per_image": cpu}
                del image
    return out


def table(result: dict[str, Any]) -> str:
    lines = []
    for size, data in result.items():
        times = data["times"]
        lines.append(f"{size} ({data['bytes']} B), median transmission time (ms), n per cell:")
        cpu = data["cpu_ms_per_image"]
        for label, values in times.items():
            tx, rx = cpu[label]["transmitter"], cpu[label]["receiver"]
            lines.append(
                f"  {label:<22} {median(values) * 1000:8.3f}  (n={len(values)})"
                f"  CPU ms/image: transmitter {median(tx) if tx else float('nan'):.3f},"
                f" receiver {median(rx) if rx else float('nan'):.3f}"
            )
        for protocol, upload in UPLOADS.items():
            push = f"{protocol} push"
            ci = bootstrap_ratio_ci(
                times[push], times[upload], resamples=10_000, confidence=0.95, seed=0
            )
            lines.append(
                f"  {protocol}: push / upload = {ci.ratio:.2f} (95% CI {ci.low:.2f}-{ci.high:.2f})"
            )
        ws_grpc = bootstrap_ratio_ci(
            times["websocket push"], times["grpc push"], resamples=10_000, confidence=0.95, seed=0
        )
        lines.append(
            f"  push: websocket / grpc = {ws_grpc.ratio:.2f}"
            f" (95% CI {ws_grpc.low:.2f}-{ws_grpc.high:.2f})"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.directions")
    parser.add_argument("--sizes", default="sample,8MiB", help="'sample' or sizes like 8MiB")
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--json", type=Path, default=None, help="also write the samples here")
    args = parser.parse_args()
    configure_logging("console", "warning")
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    result = asyncio.run(measure(sizes, args.images, args.repeat, args.delay))
    print(table(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Linearity in image size: time per MiB at 32 and ~64 MiB against 8 MiB, per protocol.

Each measurement runs in a child process (``python -m benchmarks.linearity
--child``) with a receiver of its own, so that the allocator configuration,
which is process-wide and set at start, can differ between the two variants
compared side by side in one run:

* ``default``: the services as shipped (:func:`imgbench.runtime.alloc.keep_image_buffers`);
* ``mmap 32 MiB (before)``: the configuration before the fix, reproduced with
  glibc's own environment tunables (mmap and trim thresholds at 32 MiB, top
  pad 0, mmap allowed). Setting any ``MALLOC_*_`` variable also makes
  ``keep_image_buffers`` stand aside, so this is exactly the old ``mallopt``.

The variants alternate within each repetition (order rotating), and every
figure is a ratio taken inside one child run: (median transmission time /
MiB at size) / (the same at 8 MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from benchmarks.baseline import BareGrpcClient, baseline_process
from benchmarks.intervals import median
from benchmarks.plan import FULL
from benchmarks.runs import (
    NO_OTLP,
    Log,
    bare_run,
    base_settings,
    make_image,
    receiver,
    rotate,
    with_mode,
)
from imgbench.config.option import MIB
from imgbench.observe.logs import configure_logging
from imgbench.observe.metrics import TransmitterMetrics
from imgbench.runtime import alloc
from transmitter.runner import Harness, new_run_id
from transmitter.senders import make_sender

#: The largest image whose ImageMessage fits the default 64 MiB message limit
#: with room for the header: the "64 MiB" point.
NEAR_64_MIB = 64 * MIB - 64 * 1024
MODES = ("websocket/binary", "grpc/unary", "grpc/stream")
#: Bare grpcio pairs (raw bytes, no protobuf, no telemetry) at the same sizes in
#: the same child: is a super-linearity imgbench's or grpcio's own?
BARE = ("bare grpc unary", "bare grpc stream")
#: The allocator before the fix, as glibc environment tunables.
BEFORE_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * MIB),
    "MALLOC_TRIM_THRESHOLD_": str(32 * MIB),
    "MALLOC_TOP_PAD_": "0",
}
VARIANTS = {"default": {}, "mmap 32 MiB (before)": BEFORE_ENV}
#: Target: time per MiB at each large size within this factor of 8 MiB's.
LINEAR_MAX = 1.2


async def _child(sizes: list[int], images: int, warmup: int, bare: bool) -> dict[str, Any]:
    """Measure every mode at every size with one receiver (and the bare grpcio pairs)."""
    settings = base_settings(FULL).updated(images=images, warmup=warmup, delay=0.05)
    tracing = TracerProvider()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="imgbench-lin-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            target = await stack.enter_async_context(
                receiver(settings, Path(tmp) / "receiver.log", **NO_OTLP)
            )
            ports = await stack.enter_async_context(baseline_process()) if bare else None
            for size in sizes:
                image = make_image(size)
                if ports is not None:
                    for label in BARE:
                        client = BareGrpcClient(ports["grpc"], label.rsplit(" ", 1)[1])
                        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                        times = await bare_run(client, image, images, warmup, 0.05)
                        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
                        result.setdefault(label, {})[str(size)] = {
                            "transmission_s": median(times),
                            "transmitter_peak_rss_bytes": None,
                            "receiver_peak_rss_bytes": None,
                            "transmitter_cpu_ms_per_mb": None,
                            "transmitter_faults_per_mib": faults / (size / MIB) / (images + warmup),
                        }
                for label in MODES:
                    s = with_mode(target, label)
                    harness = Harness(s, tracing.get_tracer("imgbench.bench"), TransmitterMetrics())
                    sender = make_sender(s.workload.protocols[0], s, tracing)
                    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                    run = await harness.run_protocol(sender, image, new_run_id())
                    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
                    result.setdefault(label, {})[str(size)] = {
                        "transmission_s": median([x.transmission_s for x in run.samples]),
                        "transmitter_peak_rss_bytes": run.costs.get("transmitter_peak_rss_bytes"),
                        "receiver_peak_rss_bytes": run.costs.get("receiver_peak_rss_bytes"),
                        "transmitter_cpu_ms_per_mb": run.costs.get("transmitter_cpu_ms_per_mb"),
                        # Warm-ups included: page faults are what the allocator fix removes.
                        "transmitter_faults_per_mib": faults / (size / MIB) / (images + warmup),
                    }
                del image
    return result


async def _run_child(
    env: dict[str, str], sizes: list[int], images: int, warmup: int, bare: bool
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="imgbench-lin-") as tmp:
        out = Path(tmp) / "out.json"
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        child_env.update(env)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.linearity",
            "--child",
            str(out),
            "--sizes",
            ",".join(map(str, sizes)),
            "--images",
            str(images),
            "--warmup",
            str(warmup),
            *(["--bare"] if bare else []),
            env=child_env,
        )
        if await proc.wait() != 0 or not out.exists():
            raise RuntimeError(f"linearity child failed (exit {proc.returncode})")
        data: dict[str, Any] = json.loads(out.read_text())
        return data


async def linearity(
    reps: int, images: int, warmup: int, log: Log, sizes: tuple[int, ...] | None = None
) -> dict[str, Any]:
    """Per variant and mode: time-per-MiB ratios of each size to 8 MiB, per repetition."""
    sizes = sizes or (8 * MIB, 32 * MIB, NEAR_64_MIB)
    base = sizes[0]
    raw: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for rep in range(reps):
        for variant in rotate(list(VARIANTS), rep):
            bare = variant == "default"
            got = await _run_child(VARIANTS[variant], list(sizes), images, warmup, bare)
            raw[variant].append(got)
            log(
                f"  linearity rep {rep + 1}/{reps} {variant}: "
                + ", ".join(
                    f"{label} "
                    + "/".join(f"{_per_mib(got[label], size, base):.2f}" for size in sizes[1:])
                    for label in (*MODES, *BARE)
                    if label in got
                )
            )
    out: dict[str, Any] = {"sizes": list(sizes), "images": images, "variants": {}}
    for variant, runs in raw.items():
        modes: dict[str, Any] = {}
        for label in (*MODES, *BARE):
            if any(label not in r for r in runs):
                continue
            per_size: dict[str, Any] = {}
            for size in sizes:
                ratios = [_per_mib(r[label], size, base) for r in runs]
                per_size[str(size)] = {
                    "ms_per_mib_per_rep": [
                        r[label][str(size)]["transmission_s"] * 1e3 / (size / MIB) for r in runs
                    ],
                    "ratio_to_8mib_per_rep": ratios,
                    "ratio_to_8mib_median": median(ratios),
                    "transmitter_faults_per_mib_median": median(
                        [r[label][str(size)]["transmitter_faults_per_mib"] for r in runs]
                    ),
                    "transmitter_cpu_ms_per_mb_median": median(
                        [r[label][str(size)]["transmitter_cpu_ms_per_mb"] or 0.0 for r in runs]
                    ),
                    "transmitter_peak_rss_bytes_max": max(
                        r[label][str(size)]["transmitter_peak_rss_bytes"] or 0 for r in runs
                    ),
                    "receiver_peak_rss_bytes_max": max(
                        r[label][str(size)]["receiver_peak_rss_bytes"] or 0 for r in runs
                    ),
                }
            modes[label] = per_size
        out["variants"][variant] = modes
    return out


def _per_mib(mode: dict[str, Any], size: int, base: int) -> float:
    """Time per byte at ``size`` over time per byte at ``base``."""
    return float(
        (mode[str(size)]["transmission_s"] / size) / (mode[str(base)]["transmission_s"] / base)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=Path, required=True, help="write the JSON result here")
    parser.add_argument("--sizes", required=True, help="comma-separated byte counts")
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--bare", action="store_true", help="also the bare grpcio pairs")
    args = parser.parse_args(argv)
    configure_logging("json", "warning", stream=sys.stderr)
    # The child is an entry point of its own: tune malloc like the CLI does (a
    # MALLOC_*_ variable, as in the "before" variant, makes this stand aside).
    # Without it the "default" transmitter ran with glibc's defaults.
    alloc.keep_image_buffers()
    sizes = [int(x) for x in args.sizes.split(",")]
    args.child.write_text(
        json.dumps(asyncio.run(_child(sizes, args.images, args.warmup, args.bare)))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

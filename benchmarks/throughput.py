"""Step 1: per-image throughput of every variant against the raw-TCP limit (and iperf3)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from benchmarks.intervals import median
from benchmarks.plan import Plan
from benchmarks.runs import (
    BARE,
    HARNESS_MODES,
    JOIN,
    NO_OTLP,
    OTHER_BARE,
    RAW,
    STREAMS,
    Log,
    bare_client,
    bare_run,
    base_settings,
    harness_run,
    make_image,
    receiver,
    rotate,
)
from imgbench.config.option import MIB


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
                            target.updated(images=images), variant, image, tracing
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

"""Step 2: telemetry overhead, all on against ``IMGBENCH_TELEMETRY=off``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from benchmarks.baseline import sink_stats
from benchmarks.intervals import median, median_interval, paired_ratio_interval
from benchmarks.plan import Plan
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
from imgbench.observe.tracing import tracer_provider


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
            off = off.updated(telemetry=False)
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

"""Step 3: concurrent transmitters against one receiver, and its bounded memory."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from benchmarks.intervals import median
from benchmarks.plan import Plan
from benchmarks.runs import NO_OTLP, Log, base_settings, make_image, receiver, with_mode
from imgbench.config.option import MIB
from imgbench.config.settings import ReceiverSettings, TransmitterSettings
from imgbench.measure.results import NS, Sample
from imgbench.observe.metrics import TransmitterMetrics
from imgbench.runtime.http import get_json, request
from transmitter.image import Image
from transmitter.runner import Harness, new_run_id
from transmitter.senders import make_sender


@dataclass
class _StartTogether(Harness):
    """The real harness, but every transmitter of a level starts its measured
    images at the same moment, and the receiver's peak-RSS mark is left alone
    (the harness resets it around each run; here one level spans many runs)."""

    barrier: asyncio.Barrier | None = None
    _started: bool = field(default=False, init=False)

    async def _costs_snapshot(self, *, start: bool) -> dict[str, Any]:
        if not self._started and self.barrier is not None:
            self._started = True
            await self.barrier.wait()
        return {}


async def _level(
    settings: TransmitterSettings, label: str, image: Image, level: int, per_tx: int
) -> dict[str, Any]:
    settings = with_mode(settings, label).updated(images=per_tx, warmup=1, delay=0.0)
    tracing = TracerProvider()
    metrics = TransmitterMetrics()
    barrier = asyncio.Barrier(level)
    await request("127.0.0.1", settings.target.http_port, "POST", "/stats/reset-peak", timeout=5)

    async def one() -> list[Sample]:
        harness = _StartTogether(
            settings, tracing.get_tracer("imgbench.bench"), metrics, barrier=barrier
        )
        sender = make_sender(settings.workload.protocols[0], settings, tracing)
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
    status, stats = await get_json("127.0.0.1", settings.target.http_port, "/stats", timeout=5)
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
            status, idle = await get_json("127.0.0.1", target.target.http_port, "/stats", timeout=5)
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

"""Step 1b: harness / bare library, side by side in adjacent pairs, at 1 and 8 MiB.

In the throughput step ten other variants run between a mode and its bare
library, and the load of a shared machine moves in between. Here each pair is
the harness mode and its bare library back to back (order ABBA over pairs),
runs are short and there are many; both sides run under the same conditions:
the sender in this process, the receiver in a process of its own (the
imgbench receiver as ``imgbench compare`` starts it; the bare servers in the
baseline process, which tunes malloc and freezes its start-up objects as the
receiver does), the same image, images, warm-ups and pause.

Two figures per pair, each a harness / bare ratio:

* **throughput**: bare median transmission time / harness median transmission
  time (the issue's target, >= 0.95), median over pairs with a bootstrap
  interval. Wall time: on a loaded 2-core machine it moves with what else runs;
* **CPU**: CPU time per image of both processes (sender and receiver, measured
  images only) bare / harness, total over all pairs with a paired bootstrap
  interval: the work each path does, which the machine's load moves far less.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from opentelemetry.sdk.trace import TracerProvider

from benchmarks.intervals import median, paired_median_interval, paired_ratio_interval
from benchmarks.plan import Plan
from benchmarks.runs import (
    NO_OTLP,
    Log,
    bare_client,
    bare_run_costs,
    base_settings,
    make_image,
    protocol_run,
    receiver,
)
from imgbench.config.option import MIB

#: Each harness mode and the bare library pair it is held against.
HARNESS_PAIRS: Final = (
    ("websocket/binary", "bare websockets"),
    ("grpc/unary", "bare grpc unary"),
    ("grpc/stream", "bare grpc stream"),
)
#: Image sizes of the pairs (the issue's target sizes).
PAIR_SIZES: Final = (MIB, 8 * MIB)


def _pair_median(r: dict[str, list[float]]) -> float:
    return median([b / h for h, b in zip(r["h"], r["b"], strict=True)])


async def harness_pairs(
    plan: Plan, base_ports: dict[str, int], out: Path, log: Log
) -> dict[str, Any]:
    """Harness / bare throughput and CPU per image, each pair measured back to back."""
    settings = base_settings(plan)
    tracing = TracerProvider()  # spans created, not exported: `imgbench compare` by default
    images = plan.pair_images
    sizes: dict[str, Any] = {}
    async with receiver(settings, out / "receiver-pairs.log", **NO_OTLP) as target:
        for size in PAIR_SIZES:
            image = make_image(size)
            got: dict[str, dict[str, list[float]]] = {
                m: {k: [] for k in ("h", "b", "h_cpu", "b_cpu", "h_tx", "b_tx")}
                for m, _ in HARNESS_PAIRS
            }
            for rep in range(plan.pair_reps):
                for mode, bare in HARNESS_PAIRS:
                    r = got[mode]
                    for which in ("h", "b") if rep % 4 in (0, 3) else ("b", "h"):
                        if which == "h":
                            run = await protocol_run(
                                target.updated(images=images), mode, image, tracing
                            )
                            times = [s.transmission_s for s in run.samples]
                            tx = run.costs.get("transmitter_cpu_s", 0.0)
                            rx = run.costs.get("receiver_cpu_s", 0.0)
                        else:
                            times, tx, rx = await bare_run_costs(
                                bare_client(bare, base_ports),
                                image,
                                images,
                                plan.warmup,
                                plan.delay,
                                receiver_pid=base_ports["pid"],
                            )
                        r[which].append(median(times))
                        r[which + "_cpu"].append((tx + rx) / len(times))
                        r[which + "_tx"].append(tx / len(times))
                if rep % 4 == 3 or rep == plan.pair_reps - 1:
                    log(
                        f"  harness/bare {size // MIB} MiB pairs {rep + 1}/{plan.pair_reps}"
                        " (throughput, cpu): "
                        + ", ".join(
                            f"{m} {_pair_median(r):.2f} {sum(r['b_cpu']) / sum(r['h_cpu']):.2f}"
                            for m, r in got.items()
                        )
                    )
            modes = {}
            for mode, r in got.items():
                ratios = [b / h for h, b in zip(r["h"], r["b"], strict=True)]
                cpu_total, cpu_low, cpu_high = paired_ratio_interval(r["b_cpu"], r["h_cpu"])
                modes[mode] = {
                    "bare": dict(HARNESS_PAIRS)[mode],
                    "ratio_per_pair": ratios,
                    "ratio_median": median(ratios),
                    "ratio_interval": list(paired_median_interval(ratios)),
                    "harness_transmission_s": r["h"],
                    "bare_transmission_s": r["b"],
                    "harness_cpu_per_image_s": r["h_cpu"],
                    "bare_cpu_per_image_s": r["b_cpu"],
                    # The sender's share (the rest is the receiver's).
                    "harness_transmitter_cpu_per_image_s": r["h_tx"],
                    "bare_transmitter_cpu_per_image_s": r["b_tx"],
                    "cpu_ratio_total": cpu_total,
                    "cpu_ratio_interval": [cpu_low, cpu_high],
                }
            sizes[str(size)] = {"modes": modes}
    return {"images": images, "pairs": plan.pair_reps, "sizes": sizes}

"""Step 1b: harness / bare library, side by side in adjacent pairs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

from opentelemetry.sdk.trace import TracerProvider

from benchmarks.intervals import median, paired_median_interval
from benchmarks.plan import Plan
from benchmarks.runs import (
    NO_OTLP,
    Log,
    bare_client,
    bare_run,
    base_settings,
    harness_run,
    make_image,
    receiver,
    rotate,
    with_mode,
)
from imgbench.config.option import MIB
from imgbench.config.settings import TransmitterSettings
from imgbench.measure.results import Sample
from imgbench.observe.metrics import TransmitterMetrics
from transmitter.image import Image
from transmitter.runner import Harness, new_run_id
from transmitter.senders import Payload, Sender, make_sender

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
    sender = _WaitForSender(make_sender(settings.workload.protocols[0], settings, tracing))
    return (await harness.run_protocol(sender, image, new_run_id())).samples


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
                        samples = await run(target.updated(images=images), mode, image, tracing)
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

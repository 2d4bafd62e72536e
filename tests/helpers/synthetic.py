"""Synthetic comparisons for the report tests: lognormal times, known medians."""

from __future__ import annotations

import math
import random

from imgbench.measure.results import Comparison, ProtocolRun, Sample

MS = 1_000_000


def comparison(
    medians_ms: dict[str, list[float]],
    *,
    images: int = 20,
    sigma: float = 0.2,
    seed: int = 0,
    run_id: str = "synthetic",
    image_bytes: int = 1_000_000,
    settings: dict[str, object] | None = None,
    versions: dict[str, str] | None = None,
) -> Comparison:
    """One run per repetition per label; ``medians_ms[label][i]`` is repetition i's median."""
    rng = random.Random(seed)
    c = Comparison(
        run_id=run_id,
        created_at="2026-01-01T00:00:00+00:00",
        settings=settings or {"images": images, "repeat": len(next(iter(medians_ms.values())))},
        versions=versions or {"imgbench": "0.1.0"},
        host={"machine": "x86_64"},
        image={"name": "synthetic.png", "bytes": image_bytes},
    )
    for label, per_rep in medians_ms.items():
        protocol, mode = label.split("/")
        for rep, median_ms in enumerate(per_rep):
            clock = (rep + 1) * 10_000 * MS
            samples = []
            for seq in range(images):
                tx = int(rng.lognormvariate(math.log(median_ms), sigma) * MS)
                samples.append(
                    Sample(seq, clock, clock, clock + tx, clock + tx + MS, image_bytes,
                           image_bytes + 30, True)
                )  # fmt: skip
                clock += tx + 2 * MS
            c.runs.append(
                ProtocolRun(
                    protocol=protocol, mode=mode, compression=False, images=images, warmup=0,
                    delay_s=0.0, in_flight=1, repetition=rep, position=0,
                    image_bytes=image_bytes, message_bytes=image_bytes + 30, samples=samples,
                )
            )  # fmt: skip
    return c

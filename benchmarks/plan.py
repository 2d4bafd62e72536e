"""How much each benchmark step measures: the ``QUICK`` and ``FULL`` plans."""

from __future__ import annotations

from dataclasses import dataclass

from imgbench.config.option import MIB


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
    # Many short pairs (a paired bootstrap needs pairs, not long runs); a pair runs
    # both pipelines at once (~1 s): 60 x 20 images per side.
    overhead_reps=60,
    overhead_images=20,
    overhead_modes=("websocket/binary", "grpc/unary", "grpc/stream"),
    levels=(1, 4, 16, 64),
    concurrency_images=512,
    concurrency_reps=3,
    concurrency_modes=("websocket/binary", "grpc/unary", "grpc/stream"),
)

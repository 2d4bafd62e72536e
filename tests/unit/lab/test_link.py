"""The forwarder's per-direction logic: loss, bottleneck pacing and queue, delay, order.

Driven with explicit times and a pipe standing in for the receiving TUN device,
so these check the arithmetic exactly; tests/integration/test_lab.py measures
the real link.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from imgbench.lab.link import Direction
from imgbench.lab.spec import LinkSpec
from imgbench.lab.timens import offsets_text


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    yield r, w
    os.close(r)
    os.close(w)


def _direction(spec: LinkSpec, out_fd: int, seed: int = 0) -> Direction:
    return Direction(spec, random.Random(seed), out_fd)


def test_rate_serialises_packets_back_to_back_then_adds_the_delay(pipe: tuple[int, int]) -> None:
    # 1250 bytes at 1 Mbit/s = 10 ms each; one-way delay 5 ms.
    d = _direction(LinkSpec(rtt=0.010, rate=1e6), pipe[1])
    for _ in range(3):
        d.ingress(b"x" * 1250, now=100.0)
    assert [at for at, _ in d.pipe] == pytest.approx([100.015, 100.025, 100.035])
    assert d.egress(100.020) == pytest.approx(100.025)
    assert os.read(pipe[0], 10_000) == b"x" * 1250
    assert d.egress(100.036) is None
    assert d.stats.delivered == 3 and d.stats.delivered_bytes == 3750


def test_an_idle_link_does_not_bank_credit(pipe: tuple[int, int]) -> None:
    d = _direction(LinkSpec(rate=1e6), pipe[1])
    d.ingress(b"x" * 1250, now=0.0)
    d.ingress(b"x" * 1250, now=50.0)  # long after the first finished
    assert [at for at, _ in d.pipe] == pytest.approx([0.010, 50.010])


def test_a_full_bottleneck_queue_tail_drops(pipe: tuple[int, int]) -> None:
    d = _direction(LinkSpec(rate=1e6, queue=4), pipe[1])
    for _ in range(6):
        d.ingress(b"x" * 1250, now=0.0)
    assert (d.stats.received, d.stats.dropped, len(d.pipe)) == (6, 2, 4)
    assert d.stats.max_queue == 4
    # Once the first two are serialised (20 ms), two more fit.
    for _ in range(3):
        d.ingress(b"x" * 1250, now=0.020)
    assert (d.stats.dropped, len(d.pipe)) == (3, 6)


def test_loss_is_seeded_and_near_its_probability(pipe: tuple[int, int]) -> None:
    def lost(seed: int) -> int:
        d = _direction(LinkSpec(loss=0.1), pipe[1], seed)
        for i in range(10_000):
            d.ingress(b"p", now=float(i))
        assert d.stats.lost + len(d.pipe) == 10_000
        return d.stats.lost

    assert lost(1) == lost(1)
    assert lost(1) != lost(2)
    assert 850 <= lost(1) <= 1150  # 10 % of 10 000, +- 5 standard deviations


def test_jitter_varies_delay_within_bounds_but_never_reorders(pipe: tuple[int, int]) -> None:
    d = _direction(LinkSpec(rtt=0.020, jitter=0.005), pipe[1])
    for i in range(2000):
        d.ingress(i.to_bytes(4, "big"), now=i * 0.001)
    times = [at for at, _ in d.pipe]
    assert times == sorted(times)
    assert [int.from_bytes(p, "big") for _, p in d.pipe] == list(range(2000))
    delays = [at - i * 0.001 for i, at in enumerate(times)]
    assert min(delays) >= 0.005 - 1e-12
    assert max(delays) <= 0.015 + 0.001  # +5 ms jitter, plus waiting behind a later one
    assert max(delays) - min(delays) > 0.008


def test_no_impairment_delivers_immediately(pipe: tuple[int, int]) -> None:
    d = _direction(LinkSpec(), pipe[1])
    d.ingress(b"abc", now=7.0)
    assert d.egress(7.0) is None
    assert os.read(pipe[0], 10) == b"abc"


@pytest.mark.parametrize(
    ("offset", "line"),
    [
        (1000.0, "monotonic 1000 0"),
        (-0.25, "monotonic -1 750000000"),
        (1.9999999999, "monotonic 2 0"),
        (0.000001, "monotonic 0 1000"),
    ],
)
def test_time_namespace_offsets_use_non_negative_nanoseconds(offset: float, line: str) -> None:
    text = offsets_text(offset)
    assert text.splitlines() == [line, line.replace("monotonic", "boottime")]


def test_a_late_delivery_is_counted_as_the_links_own_timing_error(pipe: tuple[int, int]) -> None:
    d = _direction(LinkSpec(rtt=0.010), pipe[1])
    d.ingress(b"a", now=0.0)
    d.ingress(b"b", now=0.001)
    assert d.egress(0.0052) == pytest.approx(0.006)  # 0.2 ms late: not counted
    assert d.egress(0.0085) is None  # 2.5 ms late
    assert (d.stats.late_packets, d.stats.late_max_us) == (1, 2500)

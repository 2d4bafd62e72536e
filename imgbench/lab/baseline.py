"""Measure what the emulated link really does, with the lab's own probes.

The lab's figures are only as good as its link, so the link is measured like
any other component: :func:`measure_link` runs a ping-style UDP probe and a
bulk TCP transfer between the two hosts of a running :class:`~imgbench.lab.Lab`;
:func:`measure_baseline` does it on an ideal link (``rtt=0``, unshaped, MTU
1500) and so reports the link's own cost: the round-trip time it adds by
forwarding in userspace, and the highest rate it sustains (its ceiling).

Definitions
-----------
- RTT: time from sending a 64-byte UDP probe on host a to receiving its echo
  from host b (a's CLOCK_MONOTONIC; includes both probe programs' own time,
  which run at real-time priority where allowed so that a loaded machine's CPU
  waits are not read as RTT: :data:`imgbench.lab.probe.INSTRUMENT_RT_PRIORITY`).
  ``rtt_min`` and ``rtt_median`` over the probes that came back.
- goodput: TCP payload bytes the sink on host b received per second, over the
  transfer after its first ``warmup`` seconds (skipping slow start), bit/s.
- ip_rate: goodput scaled to IP bytes on the link, ``goodput * mtu / mss``,
  the unit ``rate`` is configured in (full-sized segments, which a bulk
  transfer sends).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from dataclasses import dataclass

from imgbench.lab.errors import LabError
from imgbench.lab.hosts import Lab
from imgbench.lab.spec import LinkSpec

PROBE = [sys.executable, "-m", "imgbench.lab.probe"]
ECHO_PORT = 9000
SINK_PORT = 9001


@dataclass(frozen=True)
class RttProbe:
    """Round-trip times of one ping-style probe run, seconds."""

    rtts: tuple[float, ...]
    lost: int
    #: The ping ran at real-time priority (:data:`imgbench.lab.probe.INSTRUMENT_RT_PRIORITY`).
    realtime: bool = False

    @property
    def rtt_min(self) -> float:
        return min(self.rtts)

    @property
    def rtt_median(self) -> float:
        return statistics.median(self.rtts)


@dataclass(frozen=True)
class BulkProbe:
    """A bulk TCP transfer from host a to host b."""

    goodput: float  # bit/s of TCP payload, after warm-up
    ip_rate: float  # bit/s of IP packets (goodput * mtu / mss)
    total_bytes: int
    mss: int


@dataclass(frozen=True)
class LinkMeasurement:
    """What one probe run measured on a link (see the module docstring)."""

    rtt: RttProbe
    bulk: BulkProbe


async def _server(lab: Lab, argv: list[str]) -> asyncio.subprocess.Process:
    proc = await lab.spawn("b", argv)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30.0)
    if line.strip() != b"ready":
        raise LabError(f"probe server {argv[-3:]} failed to start")
    return proc


async def probe_rtt(
    lab: Lab, *, count: int = 50, interval: float = 0.02, size: int = 64, timeout: float = 2.0
) -> RttProbe:
    """Send ``count`` UDP probes ``interval`` seconds apart from a to b and back."""
    echo = await _server(lab, [*PROBE, "echo", "--port", str(ECHO_PORT)])
    try:
        code, out, err = await lab.run("a", [
            *PROBE, "ping", "--host", lab.address("b"), "--port", str(ECHO_PORT),
            "--count", str(count), "--interval", str(interval), "--size", str(size),
            "--timeout", str(timeout),
        ])  # fmt: skip
    finally:
        echo.kill()
        await echo.wait()
    if code != 0:
        raise LabError(f"ping probe failed: {err.strip()[-300:]}")
    result = json.loads(out)
    if not result["rtts"]:
        raise LabError(f"ping probe: none of {count} probes came back")
    return RttProbe(tuple(result["rtts"]), len(result["lost"]), bool(result.get("realtime")))


async def probe_bulk(lab: Lab, *, seconds: float = 3.0, warmup: float = 0.5) -> BulkProbe:
    """Send TCP bulk data from a to b for ``seconds``; goodput after ``warmup`` s."""
    sink = await _server(lab, [*PROBE, "sink", "--port", str(SINK_PORT)])
    try:
        code, _, err = await lab.run(
            "a",
            [*PROBE, "bulk", "--host", lab.address("b"), "--port", str(SINK_PORT),
             "--seconds", str(seconds)],
            timeout=seconds + 60,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(sink.communicate(), 30.0)
    finally:
        if sink.returncode is None:
            sink.kill()
            await sink.wait()
    if code != 0:
        raise LabError(f"bulk probe failed: {err.strip()[-300:]}")
    result = json.loads(out)
    samples = [(float(t), int(n)) for t, n in result["samples"]]
    after = [s for s in samples if s[0] >= warmup]
    if len(after) < 2 or after[-1][0] - after[0][0] <= 0:
        raise LabError(f"bulk probe: transfer too short to measure after {warmup:g} s warm-up")
    (t0, n0), (t1, n1) = after[0], after[-1]
    goodput = (n1 - n0) * 8 / (t1 - t0)
    mss = int(result["mss"])
    return BulkProbe(goodput, goodput * lab.spec.mtu / mss, int(result["bytes"]), mss)


async def measure_link(lab: Lab, *, pings: int = 50, bulk_seconds: float = 3.0) -> LinkMeasurement:
    """Probe a running lab's link: RTT (UDP echo) then rate (bulk TCP a -> b)."""
    rtt = await probe_rtt(lab, count=pings)
    bulk = await probe_bulk(lab, seconds=bulk_seconds)
    return LinkMeasurement(rtt, bulk)


async def measure_baseline(*, pings: int = 50, bulk_seconds: float = 3.0) -> LinkMeasurement:
    """The link's own cost: RTT at ``rtt=0`` and the unshaped rate at MTU 1500."""
    async with Lab(LinkSpec()) as lab:
        return await measure_link(lab, pings=pings, bulk_seconds=bulk_seconds)


def main() -> int:
    """``python -m imgbench.lab.baseline``: print the link's own baseline."""
    result = asyncio.run(measure_baseline())
    print(
        f"link baseline (rtt=0, unshaped, MTU 1500): "
        f"RTT min {result.rtt.rtt_min * 1e3:.3f} ms, median {result.rtt.rtt_median * 1e3:.3f} ms "
        f"({len(result.rtt.rtts)} probes, {result.rtt.lost} lost); "
        f"ceiling {result.bulk.ip_rate / 1e6:.0f} Mbit/s IP "
        f"({result.bulk.goodput / 1e6:.0f} Mbit/s TCP goodput)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

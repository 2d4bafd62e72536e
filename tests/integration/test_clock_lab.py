"""Clock correction across two emulated hosts whose CLOCK_MONOTONICs really differ.

The receiver runs on lab host ``b`` in a time namespace ``clock-offset`` seconds
ahead, the transmitter (``imgbench compare --external-receiver``) on host ``a``:
real sockets over the emulated link, nothing mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from imgbench.lab import Lab, LabUnavailable, LinkSpec, parse_link, preflight
from imgbench.measure.stats import summarize

from helpers.external_tools import tools_required

OFFSET_S = 1000.0
#: The receiver and the transmitter run at a higher CPU share (nice -10, as root): on
#: a loaded machine the clock probes' delays, hence the bound, and the images'
#: transmission times are otherwise mostly the two processes waiting for a CPU
#: (seen at load 12 on 2 cores: bounds of 21-44 ms, and a 4-image median of 31 ms
#: without an offset against 12 ms with one). Still time-shared: the figures stay
#: those of real programs, not of real-time ones.
PRIORITY = ["nice", "-n", "-10"]


@pytest.fixture(autouse=True)
def lab_available() -> None:
    """Skip (or fail under IMGBENCH_REQUIRE_TOOLS=1) when this machine cannot run a lab."""
    try:
        preflight(LinkSpec(clock_offset=1.0))
    except LabUnavailable as exc:
        if tools_required():
            pytest.fail(f"{exc}; IMGBENCH_REQUIRE_TOOLS=1 requires it", pytrace=False)
        pytest.skip(str(exc))


async def compare_across(spec: str, tmp: Path) -> dict[str, Any]:
    """results.json of a 4-image comparison, receiver on host b, transmitter on host a."""
    ready = tmp / "ready.json"
    async with Lab(parse_link(spec)) as lab:
        receiver = await lab.spawn(
            "b",
            [
                *PRIORITY,
                sys.executable,
                "-m",
                "receiver",
                "--bind",
                lab.address("b"),
                "--log-level",
                "warning",
            ],
            env={"IMGBENCH_READY_FILE": str(ready), "PATH": "/usr/bin:/bin"},
        )
        for _ in range(300):
            if ready.exists() or receiver.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert ready.exists(), await receiver.communicate()
        out = tmp / "out"
        code, stdout, stderr = await lab.run(
            "a",
            [*PRIORITY, sys.executable, "-m", "imgbench.cli", "compare", "--external-receiver",
             "--receiver-host", lab.address("b"), "--images", "4", "--delay", "0.1",
             "--warmup", "1", "--output", str(out), "--protocols", "websocket,grpc"],
            timeout=120,
        )  # fmt: skip
        assert code == 0, stdout + stderr
    (result,) = out.glob("*/results.json")
    data: dict[str, Any] = json.loads(result.read_text())
    return data


def medians(result: dict[str, Any]) -> dict[str, tuple[float, float, dict[str, Any], float]]:
    """Per protocol/mode: median transmission time, largest bound, clock, fastest image.

    Checks every sample on the way: a transmission time (corrected when the clocks
    differ) lies between 0 and the image's own round trip (scheduled send to Ack,
    on the transmitter's clock alone: exact), each widened by the sample's bound.
    This needs no second run, so load cannot fake or hide it; it catches an offset
    wrong by more than the gap between the transmission and the round trip (or the
    transmission itself): a result shifted by +5 ms failed it, +-2 ms did not, so it
    complements the check against the true offset rather than replacing it.
    """
    out = {}
    for run in result["runs"]:
        times = []
        for s in run["samples"]:
            t = s["transmission_ns"] if s["transmission_ns"] is not None else (
                s["receive_ns"] - s["scheduled_ns"])  # fmt: skip
            trip = s["ack_ns"] - s["scheduled_ns"]
            assert -s["bound_ns"] <= t <= trip + s["bound_ns"], (run["protocol"], s)
            times.append(t / 1e9)
        bound = max(s["bound_ns"] for s in run["samples"]) / 1e9
        label = f"{run['protocol']}/{run['mode']}"
        out[label] = (summarize(times).p50, bound, run["clock"], min(times))
    return out


async def test_offset_is_estimated_and_times_corrected_across_time_namespaces(
    tmp_path: Path,
) -> None:
    """The estimate contains the true offset, and every corrected time lies within its
    image's round trip, every time. How tight the bound is and how close the
    corrected times come to the no-offset run depend on the moment's load as well:
    a pair that misses those is measured once more (a loaded moment passes, a wrong
    correction does not), and the failure gives both tries."""
    misses = []
    for attempt in range(2):
        for name in ("offset", "plain"):
            (tmp_path / f"{name}{attempt}").mkdir()
        shifted = medians(
            await compare_across(f"clock-offset={OFFSET_S:g}s", tmp_path / f"offset{attempt}")
        )
        plain = medians(await compare_across("", tmp_path / f"plain{attempt}"))
        miss = []
        for label, (median, bound, clock, fastest) in shifted.items():
            # The estimate contains the true offset (the time namespace's, exact).
            assert clock["status"] == "corrected", clock
            assert abs(clock["offset_ns"] - OFFSET_S * 1e9) <= clock["bound_ns"], clock
            # Corrected times are positive.
            assert 0 < median < 1.0, (label, median)
            other, other_bound, other_clock, other_fastest = plain[label]
            assert other_clock["status"] == "shared", other_clock
            assert other_bound == 0
            # Within 20 ms on a loaded 2-core machine, and close to the same link
            # without an offset: the fastest image of each run (of 4, a median is
            # mostly CPU waits at load 14: 7.7 against 21.6 ms seen, bounds 0.5 ms).
            if clock["bound_ns"] >= 20_000_000:
                miss.append(f"{label}: bound {clock['bound_ns'] / 1e6:.1f} ms")
            if abs(fastest - other_fastest) > bound + max(0.005, 0.5 * other_fastest):
                miss.append(f"{label}: fastest {fastest * 1e3:.2f} ms (bound {bound * 1e3:.2f})"
                            f" vs {other_fastest * 1e3:.2f} ms without an offset; medians"
                            f" {median * 1e3:.2f} and {other * 1e3:.2f}")  # fmt: skip
        if not miss:
            return
        misses.append(f"try {attempt + 1} (load {os.getloadavg()[0]:.1f}): " + "; ".join(miss))
    pytest.fail(" | ".join(misses))

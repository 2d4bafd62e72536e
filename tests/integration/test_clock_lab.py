"""Clock correction across two emulated hosts whose CLOCK_MONOTONICs really differ.

The receiver runs on lab host ``b`` in a time namespace ``clock-offset`` seconds
ahead, the transmitter (``imgbench compare --external-receiver``) on host ``a``:
real sockets over the emulated link, nothing mocked.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from imgbench.lab import Lab, LabUnavailable, LinkSpec, parse_link, preflight
from imgbench.measure.stats import summarize

from helpers.external_tools import tools_required

OFFSET_S = 1000.0


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
            [sys.executable, "-m", "imgbench.cli", "compare", "--external-receiver",
             "--receiver-host", lab.address("b"), "--images", "4", "--delay", "0.1",
             "--warmup", "1", "--output", str(out), "--protocols", "websocket,grpc"],
            timeout=120,
        )  # fmt: skip
        assert code == 0, stdout + stderr
    (result,) = out.glob("*/results.json")
    data: dict[str, Any] = json.loads(result.read_text())
    return data


def medians(result: dict[str, Any]) -> dict[str, tuple[float, float, dict[str, Any]]]:
    """Per protocol/mode: median transmission time, largest bound, clock."""
    out = {}
    for run in result["runs"]:
        times = [
            (s["transmission_ns"] if s["transmission_ns"] is not None else
             s["receive_ns"] - s["scheduled_ns"]) / 1e9
            for s in run["samples"]
        ]  # fmt: skip
        bound = max(s["bound_ns"] for s in run["samples"]) / 1e9
        out[f"{run['protocol']}/{run['mode']}"] = (summarize(times).p50, bound, run["clock"])
    return out


async def test_offset_is_estimated_and_times_corrected_across_time_namespaces(
    tmp_path: Path,
) -> None:
    for name in ("offset", "plain"):
        (tmp_path / name).mkdir()
    shifted = medians(await compare_across(f"clock-offset={OFFSET_S:g}s", tmp_path / "offset"))
    plain = medians(await compare_across("", tmp_path / "plain"))
    for label, (median, bound, clock) in shifted.items():
        # The estimate contains the true offset (the time namespace's, exact).
        assert clock["status"] == "corrected", clock
        assert abs(clock["offset_ns"] - OFFSET_S * 1e9) <= clock["bound_ns"], clock
        assert clock["bound_ns"] < 20_000_000, clock  # within 20 ms on a loaded 2-core machine
        # Corrected times are positive and close to the same link without an offset.
        assert 0 < median < 1.0, (label, median)
        other, other_bound, other_clock = plain[label]
        assert other_clock["status"] == "shared", other_clock
        assert other_bound == 0
        assert abs(median - other) <= bound + max(0.005, 0.5 * other), (label, median, other, bound)

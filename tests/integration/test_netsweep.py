"""``imgbench netsweep --quick``: the CI-sized network sweep, for real.

Two labs (RTT 0 and 10 ms, 100 Mbit/s), 256 KiB images, both protocols. The
figures must respect the link: no image can cross faster than its
serialisation at the rate plus half the RTT, so the median is at least that,
and the throughput never exceeds the link rate. Skips without root/tools;
fails instead under ``IMGBENCH_REQUIRE_TOOLS=1``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imgbench.lab import LabUnavailable, LinkSpec, preflight

from helpers.external_tools import tools_required

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def lab_available() -> str:
    try:
        return preflight(LinkSpec()).ip
    except LabUnavailable as exc:
        if tools_required():
            pytest.fail(f"{exc}; IMGBENCH_REQUIRE_TOOLS=1 requires it", pytrace=False)
        pytest.skip(str(exc))


def test_quick_network_sweep_respects_the_link(lab_available: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imgbench.cli", "netsweep", "--quick", "--output", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out,) = tmp_path.iterdir()
    data = json.loads((out / "netsweep.json").read_text())
    cells = data["cells"]
    assert {(c["rtt_s"], c["label"]) for c in cells} == {
        (rtt, label) for rtt in (0.0, 0.01) for label in ("websocket/binary", "grpc/unary")
    }
    for c in cells:
        assert c["rate_bit_s"] == 100e6 and c["image_bytes"] == 256 * 1024 and c["images"] == 3
        floor = c["image_bytes"] * 8 / 100e6 + c["rtt_s"] / 2
        assert c["ci_low_s"] <= c["median_s"] <= c["ci_high_s"]
        assert c["median_s"] >= floor, c
        assert c["throughput_mb_s"] <= 12.5, c
    assert (out / "netsweep.md").is_file() and (out / "netsweep.png").stat().st_size > 1000
    # Each cell is an ordinary sweep result with its link recorded.
    results = sorted(out.glob("runs/*/size-*/results.json"))
    assert len(results) == 2
    assert all(json.loads(p.read_text())["link"]["forwarder"] for p in results)
    assert "median transmission ms" in proc.stdout

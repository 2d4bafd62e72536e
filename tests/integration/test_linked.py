"""``imgbench compare --link``: the real CLI between two lab hosts.

Receiver on host b, transmitter on host a, every byte across the emulated
link; the result records the link; Ctrl-C (SIGINT to the whole process group,
as a terminal sends it) leaves nothing behind, and a run right after works.
Skips without root/tools; fails instead under ``IMGBENCH_REQUIRE_TOOLS=1``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from imgbench.lab import LabUnavailable, LinkSpec, preflight
from imgbench.lab.hosts import list_namespaces

from helpers.external_tools import require_tool, tools_required

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "imgbench.cli"]


@pytest.fixture(autouse=True)
def lab_available() -> str:
    try:
        return preflight(LinkSpec(clock_offset=1.0)).ip
    except LabUnavailable as exc:
        if tools_required():
            pytest.fail(f"{exc}; IMGBENCH_REQUIRE_TOOLS=1 requires it", pytrace=False)
        pytest.skip(str(exc))


def _namespaces_of(ip: str, pid: int) -> list[str]:
    return [n for n in list_namespaces(ip) if re.match(rf"imgbench-{pid}-\d+-[ab]$", n)]


def _results(out: Path) -> dict:  # type: ignore[type-arg]
    (path,) = out.glob("*/results.json")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_ctrl_c_cleans_up_and_a_run_right_after_crosses_the_link_and_records_it(
    lab_available: str, tmp_path: Path
) -> None:
    # 1. Interrupted mid-run, as a terminal does it: SIGINT to the whole process group.
    interrupted = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [*CLI, "compare", "--link", "rtt=10ms", "--images", "200", "--delay", "0.1",
         "--output", str(interrupted)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not list(interrupted.glob("*/receiver.log")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(4)  # the transmitter on host a is sending by now
        assert _namespaces_of(lab_available, proc.pid), "the lab was not running"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert _namespaces_of(lab_available, proc.pid) == []
    for pattern in (["-s", str(proc.pid)], ["-f", str(interrupted)]):
        leftover = subprocess.run(["pgrep", *pattern], capture_output=True, text=True)
        assert leftover.stdout.strip() == "", f"processes of the interrupted run alive: {pattern}"

    # 2. Right after: a complete run over the link.
    out = tmp_path / "run"
    done = subprocess.run(
        [*CLI, "compare", "--link", "rtt=10ms", "--images", "2", "--delay", "0",
         "--output", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = _results(out)
    link = result["link"]
    assert link["spec"] == "rtt=10ms"
    assert link["settings"]["rtt_s"] == 0.01 and link["settings"]["mtu_bytes"] == 1500
    assert link["settings"]["rate_bit_s"] is None
    # A packet cannot come back before the configured RTT.
    assert link["measured"]["rtt_min_s"] >= 0.01
    assert link["ceiling"]["ip_rate_bit_s"] > 50e6
    assert link["tcp"]["slow_start_after_idle"] == {"a": 1, "b": 1}
    # Every image crossed the link: 3 images (1 warm-up) per protocol, a -> b.
    image_bytes = result["image"]["bytes"]
    assert link["forwarder"]["a_to_b"]["delivered_bytes"] > 6 * image_bytes
    for run in result["runs"]:
        # Round trips are on host a's clock alone: at least one RTT each.
        trips = [(s["ack_ns"] - s["send_ns"]) / 1e9 for s in run["samples"]]
        assert len(trips) == 2 and min(trips) >= 0.01, (run["protocol"], trips)
    assert result["settings"]["link"] == ""  # the child on host a runs no lab itself
    assert "link rtt=10ms: RTT measured" in done.stdout


def test_without_root_the_cli_exits_2_with_one_line() -> None:
    setpriv = require_tool("setpriv")
    # Not pytest's tmp_path: its parent (/tmp/pytest-of-root) is private to root,
    # so the unprivileged user would fail on the output path before the lab check.
    shared = Path(tempfile.mkdtemp(prefix="imgbench-nobody-"))
    try:
        shared.chmod(0o777)
        proc = subprocess.run(
            [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
             *CLI, "compare", "--link", "rtt=10ms", "--output", str(shared / "out")],
            cwd=REPO, capture_output=True, text=True, check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("imgbench: two-host lab unavailable: ")
        assert not (shared / "out").exists()
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_output_and_verdict_options_reach_the_child_on_host_a(tmp_path: Path) -> None:
    """--format json, --threshold and the rest apply over the link as on loopback:
    stdout is the child's one JSON document (the link's line goes to stderr), and a
    threshold no link of 2 ms RTT can meet fails with exit 99."""
    proc = subprocess.run(
        [*CLI, "compare", "--link", "rtt=2ms", "--images", "2", "--delay", "0",
         "--protocols", "websocket", "--output", str(tmp_path), "--format", "json",
         "--threshold", "websocket:p50<0.5ms"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 99, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)  # nothing else on stdout
    (check,) = doc["thresholds"]
    assert check["expression"] == "websocket:p50<0.5ms" and check["ok"] is False, check
    assert "link rtt=2ms: RTT measured" in proc.stderr
    assert "threshold failed: websocket:p50<0.5ms" in proc.stderr


def test_what_cannot_apply_in_the_lab_exits_2_naming_it(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CLI, "compare", "--link", "rtt=2ms", "--port", "9000", "--output", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "imgbench: invalid setting RECEIVER_PORT (--port): cannot apply with --link:"
        " the lab's receiver runs on host b (198.18.0.2) at free ports"
    )
    assert not any(tmp_path.iterdir()), "refused before anything was written"

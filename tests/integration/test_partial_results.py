"""A comparison failing part-way keeps what completed, marked incomplete, and still fails.

Real processes: a receiver, and ``imgbench compare`` against it; the receiver is
killed once the WebSocket run is complete on its side, i.e. during gRPC.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def test_receiver_killed_during_grpc_keeps_the_websocket_run(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    receiver = subprocess.Popen(
        [sys.executable, "-m", "receiver", "--port", "0", "--grpc-port", "0", "--http-port", "0",
         "--log-level", "error"],
        env={**os.environ, "IMGBENCH_READY_FILE": str(ready)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    compare: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert receiver.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        ports = json.loads(ready.read_text())
        out = tmp_path / "results"
        compare = subprocess.Popen(
            [sys.executable, "-m", "imgbench.cli", "compare", "--external-receiver", "true",
             "--receiver-host", "127.0.0.1", "--port", str(ports["websocket"]),
             "--grpc-port", str(ports["grpc"]), "--http-port", str(ports["http"]),
             "--protocols", "websocket,grpc", "--images", "10", "--delay", "0.3",
             "--warmup", "0", "--image-timeout", "5", "--connect-timeout", "5",
             "--output", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # Wait until the receiver holds a complete WebSocket run, then kill it (during gRPC).
        deadline = time.monotonic() + 60
        while True:
            assert compare.poll() is None, compare.communicate()
            assert time.monotonic() < deadline, "the WebSocket run never completed"
            run_ids = _get(ports["http"], "/runs")["run_ids"]
            records = _get(ports["http"], f"/runs/{run_ids[0]}")["protocols"] if run_ids else []
            if any(r["protocol"] == "websocket" and r["complete"] for r in records):
                break
            time.sleep(0.05)
        receiver.send_signal(signal.SIGKILL)
        _, stderr = compare.communicate(timeout=120)
    finally:
        if receiver.poll() is None:
            receiver.kill()
        receiver.wait()
        if compare is not None and compare.poll() is None:
            compare.kill()
    assert compare.returncode == 1, (compare.returncode, stderr)
    assert "Traceback" not in stderr, stderr
    assert "INCOMPLETE: 1 protocol run(s) completed" in stderr, stderr
    assert "run failed" in stderr
    print(stderr)
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["incomplete"].startswith("1 of 2 protocol runs completed; stopped by: ")
    (run,) = saved["runs"]
    assert run["protocol"] == "websocket" and len(run["samples"]) == 10
    # The partial result is a result: the report regenerates from it.
    again = subprocess.run(
        [sys.executable, "-m", "imgbench.cli", "report", str(run_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr

"""A transmitter against a real revision-1 receiver (the commit before clock probes):
the run completes and its figures are reported as uncorrected, on both transports."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imgbench import wire
from imgbench.config.settings import TransmitterSettings
from imgbench.observe.metrics import TransmitterMetrics
from transmitter.image import Image
from transmitter.runner import Harness
from transmitter.senders import make_sender

from helpers.services import memory_tracing

#: The last commit of main whose receiver speaks contract revision 1 (images only).
REVISION_1 = "fb4025e"
REPO = Path(__file__).resolve().parents[2]


def export_revision_1(into: Path) -> None:
    """The revision-1 receiver's sources, from git (skips when the history is missing)."""
    proc = subprocess.run(
        ["git", "-C", str(REPO), "archive", REVISION_1, "imgbench", "receiver"],
        capture_output=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"commit {REVISION_1} not in this clone (shallow?): {proc.stderr!r}")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(into, filter="data")


@pytest.fixture
async def old_receiver(tmp_path: Path) -> AsyncIterator[dict[str, int]]:
    await asyncio.to_thread(export_revision_1, tmp_path / "src")
    ready = tmp_path / "ready.json"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src"), "IMGBENCH_READY_FILE": str(ready)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "receiver", "--bind", "127.0.0.1", "--port", "0",
        "--grpc-port", "0", "--http-port", "0", "--log-level", "warning",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(300):
            if ready.exists() and ready.read_text().strip():
                break
            assert proc.returncode is None, "the revision-1 receiver exited"
            await asyncio.sleep(0.1)
        ports: dict[str, int] = json.loads(ready.read_text())
        yield ports
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize(
    ("protocol", "overrides"),
    [("websocket", {}), ("grpc", {}), ("grpc", {"grpc_mode": "stream"})],
)
async def test_a_revision_1_receiver_gives_uncorrected_figures(
    old_receiver: dict[str, int], protocol: str, overrides: dict[str, object]
) -> None:
    settings = TransmitterSettings().updated(
        receiver_host="127.0.0.1", ws_port=old_receiver["websocket"],
        grpc_port=old_receiver["grpc"], http_port=old_receiver["http"], images=3, delay=0.0,
        warmup=1, connect_timeout=10.0, image_timeout=20.0, **overrides,
    )  # fmt: skip
    provider, _ = memory_tracing()
    harness = Harness(settings, provider.get_tracer("t"), TransmitterMetrics())
    image = Image("x", b"x" * 1000, wire.digest(b"x" * 1000), "image/png")
    run = await harness.run_protocol(
        make_sender(protocol, settings, None), image, f"old-{protocol}"
    )
    assert len(run.samples) == 3
    assert run.clock["status"] == "uncorrected", run.clock
    assert "revision" in run.clock["why"] or "sha256" in run.clock["why"], run.clock
    assert all(s.transmission_ns is None and s.bound_ns == 0 for s in run.samples)

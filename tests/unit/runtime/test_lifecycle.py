"""The shared lifecycle: phases in order, stop on a real signal, handlers restored."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from imgbench.runtime.lifecycle import (
    READY_FILE_ENV,
    Lifecycle,
    ready_file,
    write_ready_file,
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_phases_run_in_order_and_a_signal_stops_the_main_loop(sig: signal.Signals) -> None:
    events: list[str] = []
    started = asyncio.Event()
    before = signal.getsignal(sig)

    async def start() -> None:
        events.append("start")

    async def background() -> None:
        events.append("background")
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("background cancelled")
            raise

    async def stop() -> None:
        events.append("stop")

    async def send_signal() -> None:
        await started.wait()
        os.kill(os.getpid(), sig)

    sender = asyncio.create_task(send_signal())
    await asyncio.wait_for(Lifecycle(start, stop, background=background).run(), 10)
    await sender
    assert events == ["start", "background", "background cancelled", "stop"]
    assert signal.getsignal(sig) == before  # handlers restored


async def test_a_finished_background_task_does_not_stop_the_service() -> None:
    events: list[str] = []

    async def noop() -> None:
        events.append("noop")

    lifecycle = Lifecycle(noop, noop, background=noop)
    task = asyncio.create_task(lifecycle.run())
    await asyncio.sleep(0.2)
    assert not task.done()
    lifecycle.request_stop()
    await asyncio.wait_for(task, 5)
    assert events == ["noop", "noop", "noop"]


def test_ready_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ready.json"
    assert ready_file({}) is None
    assert ready_file({READY_FILE_ENV: ""}) is None
    assert ready_file({READY_FILE_ENV: str(path)}) == path
    write_ready_file(path, {"pid": 1, "grpc": 2})
    assert json.loads(path.read_text()) == {"pid": 1, "grpc": 2}
    assert not path.with_suffix(".tmp").exists()

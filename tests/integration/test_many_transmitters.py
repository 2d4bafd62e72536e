"""Many honest transmitters against one receiver with default settings: nothing lost silently.

Every run is either complete on the receiver or refused with a reason the
transmitter raises (and the CLI prints); a live run is never evicted.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from websockets.asyncio.client import connect

from imgbench import wire
from imgbench.errors import ReceiverRefused
from transmitter.image import Image
from transmitter.runner import new_run_id
from transmitter.senders import make_sender

from helpers.services import LiveReceiver, make_transmitter, start_receiver

SMALL = Image("small", b"s" * 2000, wire.digest(b"s" * 2000), "image/png")


def _counter(receiver: LiveReceiver, name: str, **labels: str) -> float:
    value = receiver.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def _transmitter(
    receiver: LiveReceiver, barrier: asyncio.Barrier, run_id: str
) -> str | ReceiverRefused:
    """One honest transmitter: WebSocket then gRPC under one run id, like `imgbench transmitter`."""
    settings = receiver.transmitter_settings(images=3, warmup=1, delay=0.2)
    tx = make_transmitter(settings)
    await barrier.wait()
    try:
        for protocol in ("websocket", "grpc"):
            await tx.harness.run_protocol(make_sender(protocol, settings, None), SMALL, run_id)
    except ReceiverRefused as exc:
        return exc
    return run_id


@pytest.mark.parametrize("transmitters", [40, 100])
async def test_concurrent_transmitters_complete_or_are_refused_with_a_reason(
    transmitters: int,
) -> None:
    receiver = await start_receiver()  # default settings (RECEIVER_MAX_RUNS=64)
    max_runs = receiver.server.settings.max_runs
    try:
        barrier = asyncio.Barrier(transmitters)
        run_ids = [new_run_id() + f"-{i}" for i in range(transmitters)]
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(_transmitter(receiver, barrier, r) for r in run_ids)), 240
        )
        completed = [o for o in outcomes if isinstance(o, str)]
        refused = [o for o in outcomes if isinstance(o, ReceiverRefused)]
        assert len(completed) + len(refused) == transmitters
        for run_id in completed:
            records = receiver.server.core.run(run_id)
            assert [r["complete"] for r in records] == [True, True], run_id
            assert all(r["received"] == 3 for r in records)
        for exc in refused:
            assert "runs_full" in str(exc) or "run_evicted" in str(exc), str(exc)
        key = "imgbench_rejected_messages_total"
        refusals = sum(
            _counter(receiver, key, protocol=p, reason=r)
            for p in ("websocket", "grpc")
            for r in ("runs_full", "run_evicted")
        )
        assert refusals == len(refused)
        if transmitters <= max_runs:
            assert refused == []
        else:
            assert len(completed) >= max_runs
            assert refused, "more live runs than slots must refuse some"
        # Only finished runs were evicted to make room, never a live one.
        assert _counter(receiver, "imgbench_runs_evicted_total", state="abandoned") == 0
        # A legitimate run right afterwards still succeeds.
        fresh = new_run_id()
        assert await _transmitter(receiver, asyncio.Barrier(1), fresh) == fresh
    finally:
        await receiver.server.stop(grace=1.0)


async def test_full_receiver_refusal_is_printed_and_exits_non_zero() -> None:
    """The real CLI transmitter prints the receiver's reason and exits 1."""
    receiver = await start_receiver(max_runs=1)
    try:
        # One live run holds the only slot (a warm-up image of a 5-image run).
        url = f"ws://127.0.0.1:{receiver.server.ports['websocket']}/v1/images"
        meta = wire.ImageMeta(
            run_id="holder", protocol="websocket", mode="binary", sequence=0, total=5,
            send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC,
            content_type="image/png", sha256=wire.digest(b"x"), warmup=True,
        )  # fmt: skip
        async with connect(url, proxy=None) as ws:
            await ws.send(wire.encode_image(meta, b"x"))
            assert wire.decode_ack(await ws.recv(decode=False)).error == ""
        ports = receiver.server.ports
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "imgbench.cli", "transmitter",
            "--port", str(ports["websocket"]), "--grpc-port", str(ports["grpc"]),
            "--http-port", str(ports["http"]), "--images", "1", "--delay", "0",
            "--connect-timeout", "5", "--log-level", "error",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "IMGBENCH_OUTPUT": "/nonexistent-never-written"},
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 1
        text = err.decode()
        assert "runs_full" in text and "RECEIVER_MAX_RUNS" in text, text
        assert "Traceback" not in text
        assert receiver.server.core.run_ids() == ["holder"]
    finally:
        await receiver.server.stop(grace=1.0)

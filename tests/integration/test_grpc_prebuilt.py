"""gRPC sends reuse one prebuilt ImageMessage per image (no per-send copy), bytes intact."""

from __future__ import annotations

import os

import pytest

from imgbench.wire import digest
from transmitter.image import Image
from transmitter.runner import new_run_id
from transmitter.senders import GrpcSender, make_sender

from helpers.services import LiveReceiver, make_transmitter


@pytest.mark.parametrize("mode", ["unary", "stream"])
async def test_grpc_reuses_the_prebuilt_message_and_every_checksum_holds(
    live_receiver: LiveReceiver, mode: str
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 11)
    image = Image("random", data, digest(data), "application/octet-stream")
    settings = live_receiver.transmitter_settings(
        protocols=("grpc",), grpc_mode=mode, images=6, warmup=1
    )
    tx = make_transmitter(settings)
    sender = make_sender("grpc", settings, tx.tracing)
    assert isinstance(sender, GrpcSender)
    run = await tx.harness.run_protocol(sender, image, new_run_id())
    # Every image acknowledged with a verified checksum (the harness raises otherwise).
    assert len(run.samples) == 6
    assert all(s.checksum_ok and s.image_bytes == len(data) for s in run.samples)
    prebuilt = sender._buffers.prebuilt
    assert prebuilt is not None and prebuilt.data is data
    # Sent one after the other, the buffers built at the first (warm-up) send
    # serve every image: one for unary calls, two for a stream.
    assert prebuilt.builds == len(prebuilt._pool) == (2 if mode == "stream" else 1)

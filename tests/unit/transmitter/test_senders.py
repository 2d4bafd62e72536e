"""The WebSocket sender's framing against a real websockets server on loopback.

One frame per image message, as bare websockets sends it, built from the image laid
out once (no copy per send); every message is the ImageMessage of the send, field for
field.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve

from imgbench import wire
from imgbench.config.settings import TransmitterSettings
from transmitter.senders import WS_FRAGMENT_BYTES, WS_ONE_FRAME_MAX, WebSocketSender

from helpers.messages import image_meta

#: 1 MiB and 3 MiB + 17: one frame (the old 256 KiB fragments began above 256 KiB);
#: 17 MiB + 5: above WS_ONE_FRAME_MAX, in WS_FRAGMENT_BYTES fragments.
SIZES = (1024 * 1024, 3 * 1024 * 1024 + 17, WS_ONE_FRAME_MAX + 1024 * 1024 + 5)


class FrameCounter:
    """Counts the frames of each message and answers it with a valid Ack."""

    def __init__(self) -> None:
        self.frames: list[int] = []
        self.messages: list[bytes] = []

    async def handler(self, connection: ServerConnection) -> None:
        while True:
            parts = [part async for part in connection.recv_streaming(decode=False)]
            self.frames.append(len(parts))
            self.messages.append(b"".join(parts))
            meta, data = wire.decode_image(
                self.messages[-1], max_bytes=64 * 1024 * 1024, protocol="websocket", mode="binary"
            )
            await connection.send(
                wire.encode_ack(
                    sequence=meta.sequence,
                    receive_time_ns=time.monotonic_ns(),
                    bytes_received=len(data),
                    checksum_ok=wire.digest(data) == meta.sha256,
                    transmission_ns=0,
                    warmup=False,
                )
            )


@pytest.fixture
async def counter() -> AsyncIterator[tuple[FrameCounter, int]]:
    frames = FrameCounter()
    async with serve(frames.handler, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield frames, port


async def test_websocket_sends_each_image_as_one_frame_without_copying_it(
    counter: tuple[FrameCounter, int],
) -> None:
    frames, port = counter
    settings = TransmitterSettings().updated(ws_mode="binary")
    settings = settings.updated(receiver_host="127.0.0.1", ws_port=port, grpc_port=1, http_port=1)
    sender = WebSocketSender(settings)
    await sender.connect(time.monotonic() + 10, "")
    try:
        for size in SIZES:
            data = os.urandom(size)
            for sequence in range(3):
                meta = image_meta(sequence=sequence, sha256=wire.digest(data))
                # As the harness sends: laid out before the stamp, the send time written in.
                stamped = sender.prepare(wire.HeadTemplate.of(meta, data), data)
                ack = wire.decode_ack(await sender.send(stamped(meta.send_time_ns)))
                del stamped  # it holds the buffer it wrote
                assert ack.checksum_ok and ack.bytes_received == size
                got, payload = wire.decode_image(
                    frames.messages[-1], max_bytes=64 * 1024 * 1024, protocol="websocket",
                    mode="binary",
                )  # fmt: skip
                assert got == meta and payload == data
            prebuilt = sender._buffers.prebuilt
            # The image laid out once, at its first send; the header rewritten in place.
            assert prebuilt is not None and prebuilt.data is data and prebuilt.builds == 1
    finally:
        await sender.close()
    # One frame per message up to WS_ONE_FRAME_MAX, as bare websockets sends it; above,
    # WS_FRAGMENT_BYTES fragments, and websockets ends the message with an empty frame.
    big = -(-len(frames.messages[-1]) // WS_FRAGMENT_BYTES) + 1
    assert frames.frames[:6] == [1] * 6
    assert frames.frames[6:] == [big] * 3, frames.frames

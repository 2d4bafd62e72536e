"""The message limit means the same on both transports with compression on.

The limit is the decompressed message's size. An incompressible message of
exactly the limit (8 MiB) grows a little under deflate; websockets' ``max_size``
also applies to the compressed frame, so without headroom the WebSocket refused
it (1009) while gRPC accepted it. Real servers, real compressing clients.
"""

from __future__ import annotations

import dataclasses
import os
import time

import grpc
from websockets.asyncio.client import connect

from imgbench import wire
from imgbench.wire import names

from helpers.services import LiveReceiver, start_receiver

LIMIT = 8 * 1024 * 1024


def _message(run_id: str, protocol: str, total_bytes: int) -> bytes:
    """An ImageMessage of exactly ``total_bytes``, its image random (incompressible)."""
    meta = wire.ImageMeta(
        run_id=run_id, protocol=protocol, mode="binary" if protocol == "websocket" else "unary",
        sequence=0, total=1, send_time_ns=time.monotonic_ns(), clock=wire.Clock.CLOCK_MONOTONIC,
        content_type="application/octet-stream", sha256=bytes(32),
    )  # fmt: skip
    overhead = len(wire.encode_image(meta, b"x" * 1024)) - 1024
    for size in range(total_bytes - overhead - 8, total_bytes - overhead + 8):
        data = os.urandom(size)
        meta = dataclasses.replace(meta, sha256=wire.digest(data))
        raw = wire.encode_image(meta, data)
        if len(raw) == total_bytes:
            return raw
    raise AssertionError("could not hit the exact size")


def _oversized(live: LiveReceiver, protocol: str) -> float:
    value = live.metrics.registry.get_sample_value(
        "imgbench_rejected_messages_total", {"protocol": protocol, "reason": "oversized"}
    )
    return 0.0 if value is None else value


async def _send_ws(live: LiveReceiver, raw: bytes) -> wire.Ack:
    url = f"ws://127.0.0.1:{live.server.ports['websocket']}/v1/images"
    async with connect(url, proxy=None, compression="deflate", max_size=2**20) as ws:
        assert ws.protocol.extensions, "permessage-deflate was not negotiated"
        await ws.send(raw)
        return wire.decode_ack(await ws.recv(decode=False))


async def _send_grpc(live: LiveReceiver, raw: bytes) -> wire.Ack:
    options = [("grpc.max_send_message_length", 2 * LIMIT)]
    target = f"127.0.0.1:{live.server.ports['grpc']}"
    async with grpc.aio.insecure_channel(
        target, options=options, compression=grpc.Compression.Gzip
    ) as channel:
        try:
            reply = await channel.unary_unary(names.SEND, None, None)(raw)
        except grpc.aio.AioRpcError as exc:
            return wire.Ack(error=f"{exc.code().name}: {exc.details()}")
        return wire.decode_ack(reply)


async def test_an_incompressible_message_at_the_limit_passes_both_with_compression() -> None:
    live = await start_receiver(max_message_bytes=LIMIT)
    try:
        ws_ack = await _send_ws(live, _message("at-limit-ws", "websocket", LIMIT))
        grpc_ack = await _send_grpc(live, _message("at-limit-grpc", "grpc", LIMIT))
        assert ws_ack.error == "" and ws_ack.bytes_received > LIMIT - 1024, ws_ack.error
        assert grpc_ack.error == "" and grpc_ack.bytes_received > LIMIT - 1024, grpc_ack.error
        # One byte more is refused on both, the same way: an answer saying why, counted.
        ws_over = await _send_ws(live, _message("over-ws", "websocket", LIMIT + 1))
        grpc_over = await _send_grpc(live, _message("over-grpc", "grpc", LIMIT + 1))
        assert ws_over.error.startswith("oversized"), ws_over.error
        assert "RESOURCE_EXHAUSTED" in grpc_over.error, grpc_over.error
        assert _oversized(live, "websocket") == 1
        assert _oversized(live, "grpc") == 1
    finally:
        await live.server.stop(grace=1.0)

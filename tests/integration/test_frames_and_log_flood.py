"""WebSocket frame refusals in their own buckets, and a refusal flood that cannot flood the log.

Real sockets against a real receiver: an invalid UTF-8 text frame (websockets
closes 1007) and a protocol-breaking frame (close 1002) are refusals with
their own reason, not disconnects; 300 refused messages write at most
``RECEIVER_LOG_BURST`` warning lines, count the rest, and a legitimate run
right after still succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from imgbench import wire
from imgbench.observe.logs import configure_logging
from transmitter.image import load_image
from transmitter.senders import make_sender

from helpers.services import LiveReceiver, make_transmitter, start_receiver


def _value(live: LiveReceiver, name: str, **labels: str) -> float:
    value = live.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def _wait_closed(ws: ClientConnection) -> int | None:
    with contextlib.suppress(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code is not None
    return ws.close_code


async def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_invalid_utf8_text_frame_is_its_own_refusal_not_a_disconnect() -> None:
    live = await start_receiver()
    try:
        url = f"ws://127.0.0.1:{live.server.ports['websocket']}/v1/images/json"
        async with connect(url, proxy=None) as ws:
            # A text frame whose payload is not UTF-8 (websockets sends bytes as given).
            await ws.send(b'{"run_id": "\xff\xfe"}', text=True)
            assert await _wait_closed(ws) == 1007
        await _wait_for(
            lambda: (
                _value(
                    live,
                    "imgbench_rejected_messages_total",
                    protocol="websocket",
                    reason="invalid_utf8",
                )
                == 1
            )
        )
        assert _value(live, "imgbench_disconnects_total", protocol="websocket") == 0
    finally:
        await live.server.stop(grace=1.0)


async def test_protocol_breaking_frame_is_its_own_refusal_not_a_disconnect() -> None:
    live = await start_receiver()
    try:
        url = f"ws://127.0.0.1:{live.server.ports['websocket']}/v1/images"
        async with connect(url, proxy=None) as ws:
            # An unmasked client frame (RFC 6455 5.1: the server must close with 1002).
            ws.transport.write(b"\x82\x03abc")
            assert await _wait_closed(ws) == 1002
        await _wait_for(
            lambda: (
                _value(
                    live,
                    "imgbench_rejected_messages_total",
                    protocol="websocket",
                    reason="frame_error",
                )
                == 1
            )
        )
        assert _value(live, "imgbench_disconnects_total", protocol="websocket") == 0
    finally:
        await live.server.stop(grace=1.0)


async def test_a_refusal_flood_writes_a_bounded_log_and_counts_the_rest() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    flood = 300
    try:
        live = await start_receiver(log_burst=5, log_window=60.0)
        try:
            url = f"ws://127.0.0.1:{live.server.ports['websocket']}/v1/images"
            async with connect(url, proxy=None) as ws:
                for _ in range(flood):
                    await ws.send("not binary")  # a text frame on the binary endpoint
                    ack = wire.decode_ack(await ws.recv(decode=False))
                    assert ack.error.startswith("wrong_frame_type")
            # Still healthy: a legitimate run right after the flood succeeds.
            settings = live.transmitter_settings(images=2, warmup=0)
            tx = make_transmitter(settings)
            run = await tx.harness.run_protocol(
                make_sender("websocket", settings, None), load_image(None), "after-flood"
            )
            assert run.figures().images == 2
            rejected = _value(
                live,
                "imgbench_rejected_messages_total",
                protocol="websocket",
                reason="wrong_frame_type",
            )
            suppressed = _value(
                live, "imgbench_log_lines_suppressed_total", kind="wrong_frame_type"
            )
        finally:
            await live.server.stop(grace=1.0)
    finally:
        configure_logging("console", "warning")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    refused = [line for line in lines if line.get("event") == "message rejected"]
    summaries = [line for line in lines if line.get("event") == "similar warnings suppressed"]
    print(f"{flood} refusals -> {len(refused)} warning lines, {int(suppressed)} suppressed")
    assert rejected == flood  # the counter is exact
    assert len(refused) == 5
    assert suppressed == flood - 5
    # The shutdown flush sums up what was not written, in one line.
    assert [(s["kind"], s["suppressed"]) for s in summaries] == [("wrong_frame_type", flood - 5)]

"""Connection limits over real sockets: RECEIVER_MAX_CONNECTIONS, RECEIVER_HANDSHAKE_TIMEOUT,
RECEIVER_PING_INTERVAL / RECEIVER_PING_TIMEOUT, and WebSocket handshakes refused inside
websockets' parser (README "Bad input", "Configuration").

Each test starts a receiver with small limits (4 connections, 1 s to open, 1 s pings)
and checks the refusal a client sees, the counter, and that a client is served again
once a slot is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from imgbench import wire
from imgbench.config.settings import TransmitterSettings
from imgbench.errors import RunError
from imgbench.runtime.http import request
from imgbench.wire import names
from transmitter.image import load_image
from transmitter.senders import GrpcSender, Payload, make_sender
from transmitter.service import TransmitterService

from helpers.pki import Pki
from helpers.services import LiveReceiver, make_transmitter, start_receiver

LIMIT = 4
SEND_STREAM = f"/{names.GRPC_SERVICE}/{names.SEND_STREAM_METHOD}"
SEND = f"/{names.GRPC_SERVICE}/{names.SEND_METHOD}"
HANDSHAKE = (
    b"GET /v1/images HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@contextlib.asynccontextmanager
async def receiver(**overrides: object) -> AsyncIterator[LiveReceiver]:
    settings: dict[str, object] = {
        "max_connections": LIMIT, "handshake_timeout": 1.0, "ping_interval": 1.0,
        "ping_timeout": 1.0,
    }  # fmt: skip
    live = await start_receiver(**{**settings, **overrides})
    try:
        yield live
    finally:
        await live.server.stop(grace=1.0)


def count(live: LiveReceiver, name: str, **labels: str) -> float:
    return live.metrics.registry.get_sample_value(name, labels) or 0.0


def refusals(live: LiveReceiver, server: str, status: str) -> float:
    return count(live, "imgbench_http_refusals_total", server=server, status=status)


def rejected(live: LiveReceiver, protocol: str) -> float:
    return count(
        live, "imgbench_rejected_messages_total", protocol=protocol, reason="connections_full"
    )


async def eventually(check: object, timeout: float = 10.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached"
        await asyncio.sleep(0.05)


async def test_websocket_connections_beyond_the_limit_are_refused_503() -> None:
    async with receiver() as live:
        url = f"ws://127.0.0.1:{live.server.ports['websocket']}/v1/images"
        held: list[ClientConnection] = [await connect(url, proxy=None) for _ in range(LIMIT)]
        with pytest.raises(InvalidStatus) as info:
            await connect(url, proxy=None)
        assert info.value.response.status_code == 503
        assert b"RECEIVER_MAX_CONNECTIONS=4" in info.value.response.body
        assert refusals(live, "websocket", "503") == 1
        assert rejected(live, "websocket") == 1
        # A free slot is taken again once a connection closes.
        await held.pop().close()
        await eventually(lambda: len(live.server.ws_adapter.admitted) < LIMIT)
        held.append(await connect(url, proxy=None))
        for ws in held:
            await ws.close()


async def test_http_api_connections_beyond_the_limit_are_refused_503_and_idle_ones_408() -> None:
    async with receiver() as live:
        port = live.server.ports["http"]
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(LIMIT)]
        await asyncio.sleep(0.2)  # the HTTP thread has taken them
        status, _, body = await request("127.0.0.1", port, "GET", "/healthz", timeout=5)
        assert status == 503, body
        assert refusals(live, "api", "503") == 1
        # The idle ones are ended after RECEIVER_HANDSHAKE_TIMEOUT (1 s) with 408.
        started = time.monotonic()
        answers = [await asyncio.wait_for(reader.read(), 5) for reader, _ in idle]
        waited = time.monotonic() - started
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers
        assert waited < 4.0, waited
        assert refusals(live, "api", "408") == LIMIT
        for _, writer in idle:
            writer.close()
        status, _, _ = await request("127.0.0.1", port, "GET", "/healthz", timeout=5)
        assert status == 200


async def test_grpc_calls_beyond_the_limit_end_resource_exhausted() -> None:
    async with receiver() as live:
        target = f"127.0.0.1:{live.server.ports['grpc']}"
        release = asyncio.Event()

        async def nothing() -> AsyncIterator[bytes]:
            await release.wait()
            return
            yield b""  # an async generator that sends nothing until released

        async with grpc.aio.insecure_channel(target) as channel:
            stream = channel.stream_stream(SEND_STREAM)
            calls = [stream(nothing()) for _ in range(LIMIT)]
            await eventually(lambda: _calls(live) == LIMIT)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channel.unary_unary(SEND)(b"", timeout=5)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "connections_full" in (info.value.details() or "")
            assert rejected(live, "grpc") == 1
            release.set()
            for call in calls:
                async for _ in call:
                    pass
            await eventually(lambda: _calls(live) == 0)
            # Served again: a malformed message gets its own refusal, not connections_full.
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channel.unary_unary(SEND)(b"\xff", timeout=5)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _calls(live: LiveReceiver) -> int:
    """Calls in progress in the receiver's gRPC adapter (the ``_admit`` count)."""
    return live.server.grpc_adapter.calls


async def test_grpc_connections_beyond_the_limit_are_closed() -> None:
    async with receiver() as live:
        target = f"127.0.0.1:{live.server.ports['grpc']}"
        # A channel per connection: grpcio shares connections between channels of one
        # process unless each has its own subchannel pool.
        options = [("grpc.use_local_subchannel_pool", 1)]
        channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(LIMIT + 1)]
        try:
            for channel in channels[:LIMIT]:
                await asyncio.wait_for(channel.channel_ready(), 5)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channels[LIMIT].unary_unary(SEND)(b"\xff", timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            await channels[0].close()
            # Once a connection closes, the next one is served (after grpc's reconnect
            # backoff: wait for the channel to be ready).
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channels[LIMIT].unary_unary(SEND)(b"\xff", timeout=10, wait_for_ready=True)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # served
        finally:
            for channel in channels:
                await channel.close()


async def _closed_after(port: int, payload: bytes = b"") -> tuple[bytes, float]:
    """Open a socket, send ``payload``, and time until the receiver closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        if payload:
            writer.write(payload)
        data = await asyncio.wait_for(reader.read(), 10)
        return data, time.monotonic() - started
    finally:
        writer.close()


async def test_connections_that_never_open_are_closed_after_the_handshake_timeout() -> None:
    async with receiver() as live:
        (_, ws_wait), (grpc_data, grpc_wait) = await asyncio.gather(
            _closed_after(live.server.ports["websocket"]),
            _closed_after(live.server.ports["grpc"]),
        )
        # 1 s configured (the defaults were 10 s for WebSocket and 120 s for gRPC).
        assert 0.8 < ws_wait < 4.0, ws_wait
        assert 0.8 < grpc_wait < 4.0, grpc_wait
        assert b"handshake timeout" in grpc_data
        await eventually(lambda: refusals(live, "websocket", "408") == 1)


async def test_a_peer_that_stops_answering_pings_is_closed() -> None:
    async with receiver() as live:
        # The handshake completes, then the client never reads nor answers a ping.
        started = time.monotonic()
        data, _ = await _closed_after(live.server.ports["websocket"], HANDSHAKE)
        waited = time.monotonic() - started
        assert data.startswith(b"HTTP/1.1 101 ")
        # ping every 1 s, closed 1 s after an unanswered one: about 2 s (default: 80 s).
        assert 1.5 < waited < 6.0, waited


def _h2_frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload
    )


def _hpack_literal(name: bytes, value: bytes) -> bytes:
    """A header field literal without indexing and without Huffman (RFC 7541 6.2.2)."""
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


async def test_a_grpc_peer_that_never_acknowledges_pings_is_closed() -> None:
    """A raw HTTP/2 client opens a SendStream call, then never reads nor acknowledges a
    PING: grpc core ends the connection (GOAWAY ping_timeout) about
    RECEIVER_PING_INTERVAL + RECEIVER_PING_TIMEOUT later (1 s + 1 s here)."""
    async with receiver() as live:
        headers = b"".join(
            _hpack_literal(n, v)
            for n, v in (
                (b":method", b"POST"), (b":scheme", b"http"), (b":path", SEND_STREAM.encode()),
                (b":authority", b"x"), (b"content-type", b"application/grpc"), (b"te", b"trailers"),
            )
        )  # fmt: skip
        reader, writer = await asyncio.open_connection("127.0.0.1", live.server.ports["grpc"])
        started = time.monotonic()
        writer.write(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
            + _h2_frame(4, 0, 0)  # SETTINGS
            + _h2_frame(4, 1, 0)  # SETTINGS ACK
            + _h2_frame(1, 4, 1, headers)  # HEADERS, END_HEADERS: the call starts
        )
        await eventually(lambda: _calls(live) == 1)
        await asyncio.sleep(1.5)  # the PING is sent; it is never acknowledged
        data = await asyncio.wait_for(reader.read(-1), 10)  # until the receiver closes
        waited = time.monotonic() - started
        writer.close()
        assert b"ping_timeout" in data, data[-80:]
        assert waited < 8.0, waited
        await eventually(lambda: _calls(live) == 0)


@pytest.mark.parametrize(
    ("raw", "status", "answer"),
    [
        (b"\x00\xff garbage\r\n\r\n", "400", b""),  # websockets closes without an answer
        (b"GET /v1/images HTTP/1.1\r\nX: " + b"a" * 10_000 + b"\r\n\r\n", "431", b"HTTP/1.1 431"),
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n", "414", b"HTTP/1.1 414"),
        (b"GET /v1/images HTTP/1.0\r\n\r\n", "505", b"HTTP/1.1 505"),
    ],
)
async def test_handshakes_refused_while_parsing_are_counted(
    raw: bytes, status: str, answer: bytes
) -> None:
    async with receiver() as live:
        data, _ = await _closed_after(live.server.ports["websocket"], raw)
        assert data.startswith(answer), data[:80]
        await eventually(lambda: refusals(live, "websocket", status) == 1)
        # A socket closed without sending a byte made no request: not counted.
        _, writer = await asyncio.open_connection("127.0.0.1", live.server.ports["websocket"])
        writer.close()
        await asyncio.sleep(0.2)
        assert sum(refusals(live, "websocket", s) for s in ("400", "408", "414", "431", "505")) == 1
        # And the port still serves a real client.
        async with connect(
            f"ws://127.0.0.1:{live.server.ports['websocket']}/v1/images", proxy=None
        ) as ws:
            await ws.send(b"\xff")
            ack = wire.decode_ack(await ws.recv())  # type: ignore[arg-type]
            assert ack.error


@pytest.mark.parametrize("protocol", ["websocket", "grpc"])
async def test_the_transmitter_reports_a_full_receiver(protocol: str) -> None:
    """The real sender against a receiver whose slots are all taken: it gives up with the
    receiver's reason (WebSocket: after retrying until its connect deadline). gRPC: both
    call slots held over one connection, so the sender's connection is accepted and its
    call refused."""
    async with receiver(max_connections=1 if protocol == "websocket" else 2) as live:
        ws_url = f"ws://127.0.0.1:{live.server.ports['websocket']}/v1/images"
        release = asyncio.Event()

        async def nothing() -> AsyncIterator[bytes]:
            await release.wait()
            return
            yield b""

        async with contextlib.AsyncExitStack() as stack:
            if protocol == "websocket":
                await stack.enter_async_context(connect(ws_url, proxy=None))
            else:
                channel = await stack.enter_async_context(
                    grpc.aio.insecure_channel(f"127.0.0.1:{live.server.ports['grpc']}")
                )
                calls = [channel.stream_stream(SEND_STREAM)(nothing()) for _ in range(2)]
                await eventually(lambda: _calls(live) == 2)
            settings = live.transmitter_settings(images=1, warmup=0, connect_timeout=1.0)
            tx = make_transmitter(settings)
            with pytest.raises(RunError) as info:
                await tx.harness.run_protocol(
                    make_sender(protocol, settings, None), load_image(None), f"full-{protocol}"
                )
            message = str(info.value)
            assert "RECEIVER_MAX_CONNECTIONS" in message, message
            if protocol == "grpc":
                assert "connections_full" in message, message
                release.set()
                for call in calls:
                    async for _ in call:
                        pass


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_the_transmitter_service_api_has_the_same_limits(
    tmp_path: Path, pki: Pki, tls: bool
) -> None:
    """TRANSMITTER_MAX_CONNECTIONS and TRANSMITTER_HANDSHAKE_TIMEOUT: a connection beyond
    the limit is answered 503 at once, idle ones are ended after the timeout (408 in plain
    text; in TLS one that never finishes its handshake is closed), counted as the
    receiver's API counts them; then the API serves again."""
    files: dict[str, object] = (
        {"tls": True, "tls_cert": pki.good.cert, "tls_key": pki.good.key, "tls_ca": pki.good.ca}
        if tls
        else {}
    )
    settings = TransmitterSettings().updated(
        api_port=0, output=tmp_path, api_max_connections=LIMIT, api_handshake_timeout=1.0,
        **files,
    )  # fmt: skip
    service = TransmitterService(settings)
    await service.start()
    ctx = ssl.create_default_context(cafile=str(pki.good.ca)) if tls else None

    def api_refusals(status: str) -> float:
        return (
            service.metrics.registry.get_sample_value(
                "imgbench_http_refusals_total", {"server": "api", "status": status}
            )
            or 0.0
        )

    try:
        idle = [await asyncio.open_connection("127.0.0.1", service.port) for _ in range(LIMIT)]
        await asyncio.sleep(0.3)  # the HTTP thread has taken them (a TLS handshake waits)
        if not tls:
            status, _, body = await request("127.0.0.1", service.port, "GET", "/healthz", timeout=5)
            assert status == 503, body
            assert api_refusals("503") == 1
        started = time.monotonic()
        answers = [await asyncio.wait_for(reader.read(), 5) for reader, _ in idle]
        waited = time.monotonic() - started
        assert waited < 4.0, waited  # 1 s configured (before: a fixed 10 s)
        for _, writer in idle:
            writer.close()
        if not tls:
            assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers
            assert api_refusals("408") == LIMIT
        else:
            assert answers == [b""] * LIMIT  # closed: no TLS, no HTTP answer
        status, _, _ = await request(
            "127.0.0.1", service.port, "GET", "/healthz", timeout=5, tls=ctx
        )
        assert status == 200
    finally:
        await service.stop()


async def _h2_idle(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw HTTP/2 client that completes the opening (preface, SETTINGS, ACK) and then
    never makes a call: it holds one of grpc core's connection slots."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(4, 0, 0) + _h2_frame(4, 1, 0))
    await writer.drain()
    return reader, writer


class _StateAtSend(GrpcSender):
    """The real gRPC sender, noting its channel's state before each image (when the
    harness asks it to be ready) and as each message is handed to grpc."""

    before_image: list[grpc.ChannelConnectivity]
    at_send: list[grpc.ChannelConnectivity]

    async def ready(self, deadline: float) -> None:
        assert self._channel is not None
        self.before_image.append(self._channel.get_state())
        await super().ready(deadline)

    async def send(self, payload: Payload) -> bytes:
        assert self._channel is not None
        self.at_send.append(self._channel.get_state())
        return await super().send(payload)


async def test_idle_grpc_connections_are_closed_and_an_honest_run_reconnects() -> None:
    """RECEIVER_GRPC_IDLE_TIMEOUT (1.5 s here): two raw HTTP/2 clients that open and then
    idle fill RECEIVER_MAX_CONNECTIONS=2 (grpc core counts them before any token check);
    grpc core closes them (GOAWAY "connection idle") one timeout (+-10 %) after they
    opened, so the slots are free again. Then a unary run pausing 4.5 s between images
    completes with every image, each sent on a connection opened again before its timed
    window: grpc core checks once per timeout whether a call started since its last
    check, so a connection is closed 1 to 2 timeouts (+-10 %: at most 3.3 s) after its
    last call, i.e. in both pauses."""
    idle = 1.5
    async with receiver(max_connections=2, grpc_idle_timeout=idle) as live:
        port = live.server.ports["grpc"]
        started = time.monotonic()
        held = [await _h2_idle(port) for _ in range(2)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            # Both slots are taken: grpc core closes the connection (served, the call
            # would end INVALID_ARGUMENT instead).
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channel.unary_unary(SEND)(b"\xff", timeout=1.0)
            assert info.value.code() in (
                grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
            ), info.value  # fmt: skip
        for reader, writer in held:
            data = await asyncio.wait_for(reader.read(-1), 10)  # until grpc core closes it
            writer.close()
            assert b"connection idle" in data, data[-80:]
        waited = time.monotonic() - started
        assert 0.9 * idle - 0.1 < waited < 1.1 * idle + 1.5, waited  # before: never closed

        settings = live.transmitter_settings(
            protocols=("grpc",), grpc_mode="unary", images=2, warmup=1, delay=3 * idle
        )
        sender = _StateAtSend(settings, None)
        sender.before_image, sender.at_send = [], []
        run = await make_transmitter(settings).harness.run_protocol(
            sender, load_image(None), "idle-reconnect"
        )
        assert [s.sequence for s in run.samples] == [0, 1]
        assert all(s.checksum_ok for s in run.samples)
        received = {"protocol": "grpc", "mode": "unary", "direction": "upload"}
        assert count(live, "imgbench_images_received_total", **received) == 2
        assert count(live, "imgbench_disconnects_total", protocol="grpc") == 0
        ready = grpc.ChannelConnectivity.READY
        # The receiver closed the connection in both pauses (warm-up -> 0 -> 1) ...
        assert [state == ready for state in sender.before_image] == [True, False, False], (
            sender.before_image
        )
        # ... and every message (images and clock probes) went out on an open one: the
        # reconnects happened before the timed window, not inside the send.
        assert all(state == ready for state in sender.at_send), sender.at_send

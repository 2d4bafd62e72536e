"""The references the harness is measured against, in a process of their own.

``python -m benchmarks.baseline --ready FILE`` serves, on free loopback ports:

* a **raw TCP** receiver: ``8-byte little-endian length + payload`` in, a
  16-byte ack out (``receive-complete monotonic ns, length``). It receives
  into a reusable buffer with :class:`asyncio.BufferedProtocol` (no copy of
  the payload), so it is the asyncio socket limit on this machine;
* a **bare websockets** receiver and a **bare gRPC** receiver (unary ``Send``
  and bidirectional ``SendStream``, raw bytes, no serializers), library
  defaults except the size limits: the same 16-byte ack, no protobuf, no
  checksum, no telemetry. They show what the libraries cost on their own;
* a **bare picows** WebSocket receiver (a Cython library, PyPI ``picows``) and a
  **bare grpclib** receiver (a pure-Python gRPC over ``h2``, PyPI ``grpclib``),
  the second library per protocol, when installed (``pip install '.[bench]'``);
* an **OTLP trace sink**, over OTLP/gRPC (``TraceService/Export``) and over
  OTLP/HTTP (``POST /v1/traces``, ``application/x-protobuf``, HTTP/1.1 with
  keep-alive, as the SDK's exporter uses it), each answering an empty
  ``ExportTraceServiceResponse`` (full success), so that "telemetry on"
  exports spans over real OTLP without a collector, and counts what it got.

The clients below take the send-start stamp before writing the first byte and
return the receiver's receive-complete stamp, exactly like the harness's
transmission time (same host, so both read the same monotonic clock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import grpc
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from imgbench.runtime import alloc, gcfreeze

HEADER = struct.Struct("<Q")
ACK = struct.Struct("<qQ")
#: Size limit of the bare libraries (they default to 1 MiB / 4 MiB).
LIMIT = 64 * 1024 * 1024 + 1024 * 1024
SERVICE = "imgbench.bench.Bare"
OTLP_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", LIMIT),
    ("grpc.max_send_message_length", LIMIT),
]


# -- servers ---------------------------------------------------------------------


class _RawReceiver(asyncio.BufferedProtocol):
    """Length-prefixed messages received straight into one reusable buffer."""

    def __init__(self) -> None:
        self._buf = bytearray(1024 * 1024)
        self._view = memoryview(self._buf)
        self._pos = 0
        self._need = HEADER.size
        self._in_header = True
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get_buffer(self, sizehint: int) -> memoryview:
        # Never read past the current message: the ack depends on its end.
        return self._view[self._pos : self._need]

    def buffer_updated(self, nbytes: int) -> None:
        self._pos += nbytes
        if self._pos < self._need:
            return
        if self._in_header:
            (length,) = HEADER.unpack_from(self._buf)
            if length > LIMIT:
                assert self._transport is not None
                self._transport.close()
                return
            if length > len(self._buf):
                self._buf = bytearray(length)
                self._view = memoryview(self._buf)
            self._in_header, self._pos, self._need = False, 0, length
            if length:
                return
        stamp = time.monotonic_ns()
        assert self._transport is not None
        self._transport.write(ACK.pack(stamp, self._need))
        self._in_header, self._pos, self._need = True, 0, HEADER.size


async def _stream_receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The minimal asyncio version: streams, library defaults, ``readexactly``."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            (length,) = HEADER.unpack(await reader.readexactly(HEADER.size))
            data = await reader.readexactly(length)
            writer.write(ACK.pack(time.monotonic_ns(), len(data)))
    writer.close()


async def _ws_handler(connection: ServerConnection) -> None:
    with contextlib.suppress(Exception):
        async for message in connection:
            stamp = time.monotonic_ns()
            await connection.send(ACK.pack(stamp, len(message)))


def _unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return ACK.pack(time.monotonic_ns(), len(request))


async def _stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield ACK.pack(time.monotonic_ns(), len(request))


def _picows_server_listener() -> Any:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport

    class Listener(WSListener):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            elif frame.msg_type == WSMsgType.BINARY:  # one unfragmented frame per message
                stamp = time.monotonic_ns()
                size = len(frame.get_payload_as_memoryview())
                transport.send(WSMsgType.BINARY, ACK.pack(stamp, size))

    return Listener()


class _RawCodec:
    """grpclib codec for raw bytes (no protobuf), like grpcio without serializers."""

    __content_subtype__ = "proto"

    def encode(self, message: bytes, message_type: Any) -> bytes:
        return message

    def decode(self, data: bytes, message_type: Any) -> bytes:
        return data


def _raw_codec() -> Any:
    return _RawCodec()  # duck-typed: grpclib only calls encode/decode/__content_subtype__


class _GrpclibBare:
    """The same two methods as the grpcio reference, served by grpclib."""

    def __mapping__(self) -> dict[str, Any]:
        from grpclib.const import Cardinality, Handler

        return {
            f"/{SERVICE}/Send": Handler(self.send, Cardinality.UNARY_UNARY, bytes, bytes),
            f"/{SERVICE}/SendStream": Handler(
                self.send_stream, Cardinality.STREAM_STREAM, bytes, bytes
            ),
        }

    async def send(self, stream: Any) -> None:
        request = await stream.recv_message()
        await stream.send_message(ACK.pack(time.monotonic_ns(), len(request)))

    async def send_stream(self, stream: Any) -> None:
        async for request in stream:
            await stream.send_message(ACK.pack(time.monotonic_ns(), len(request)))


def _grpclib_config() -> Any:
    from grpclib.config import Configuration

    return Configuration(
        http2_connection_window_size=4 * 1024 * 1024, http2_stream_window_size=4 * 1024 * 1024
    )


class _Sink:
    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0

    def export(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        self.exports += 1
        self.bytes += len(request)
        return b""  # an empty ExportTraceServiceResponse

    def stats(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return json.dumps({"otlp_exports": self.exports, "otlp_bytes": self.bytes}).encode()

    async def serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """OTLP/HTTP: ``POST /v1/traces`` with a protobuf body, 200 and an empty response.

        Keep-alive as the exporter's ``requests`` session expects; anything else
        (another path or method, a chunked or unsized body) is answered with an
        error status and the connection closed, so a misconfigured exporter shows
        as failed exports, not as spans counted.
        """
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                request_line, *lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "-1"))
                ok = request_line.startswith("POST /v1/traces ") and length >= 0
                if ok:
                    body = await reader.readexactly(length)
                    self.exports += 1
                    self.bytes += len(body)
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                        b"Content-Length: 0\r\n\r\n"
                    )
                else:
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                if not ok or headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def serve_all(ready: Path) -> None:
    loop = asyncio.get_running_loop()
    raw = await loop.create_server(_RawReceiver, "127.0.0.1", 0)
    streams = await asyncio.start_server(_stream_receiver, "127.0.0.1", 0)
    ws = await serve(
        _ws_handler, "127.0.0.1", 0, max_size=LIMIT, compression=None, ping_interval=None
    )
    sink = _Sink()
    otlp_http = await asyncio.start_server(sink.serve_http, "127.0.0.1", 0)
    server = grpc.aio.server(options=GRPC_OPTIONS)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Send": grpc.unary_unary_rpc_method_handler(_unary),
                    "SendStream": grpc.stream_stream_rpc_method_handler(_stream),
                    "SinkStats": grpc.unary_unary_rpc_method_handler(sink.stats),
                },
            ),
            grpc.method_handlers_generic_handler(
                OTLP_SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(sink.export)}
            ),
        )
    )
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    extra: dict[str, int] = {}
    closers: list[Any] = []
    try:
        from picows import ws_create_server

        pws = await ws_create_server(
            lambda request: _picows_server_listener(), "127.0.0.1", 0, max_frame_size=LIMIT
        )
        extra["picows"] = pws.sockets[0].getsockname()[1]
        closers.append(pws.close)
    except ImportError:
        pass
    try:
        from grpclib.server import Server as GrpclibServer

        gl = GrpclibServer([_GrpclibBare()], codec=_raw_codec(), config=_grpclib_config())
        await gl.start("127.0.0.1", 0)
        listening: Any = gl._server
        extra["grpclib"] = listening.sockets[0].getsockname()[1]
        closers.append(gl.close)
    except ImportError:
        pass
    info = {
        **extra,
        "pid": os.getpid(),
        "raw": raw.sockets[0].getsockname()[1],
        "streams": streams.sockets[0].getsockname()[1],
        "websocket": next(iter(ws.sockets)).getsockname()[1],
        "grpc": grpc_port,
        "otlp_http": otlp_http.sockets[0].getsockname()[1],
    }
    # Start-up done, as in the imgbench receiver (imgbench.runtime.lifecycle).
    gcfreeze.freeze_after_startup()
    tmp = ready.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(ready)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    raw.close()
    streams.close()
    ws.close()
    otlp_http.close()
    for close in closers:
        close()
    await server.stop(1)


@contextlib.asynccontextmanager
async def baseline_process(timeout: float = 30.0) -> AsyncIterator[dict[str, int]]:
    """Start ``python -m benchmarks.baseline``; yield its ports; stop it."""
    with tempfile.TemporaryDirectory(prefix="imgbench-bench-") as tmp:
        ready = Path(tmp) / "ready.json"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.baseline", "--ready", str(ready)
        )
        try:
            deadline = time.monotonic() + timeout
            while not ready.exists():
                if proc.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("the baseline process did not start")
                await asyncio.sleep(0.05)
            yield {k: int(v) for k, v in json.loads(ready.read_text()).items()}
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


# -- clients ---------------------------------------------------------------------


class BareClient(Protocol):
    name: str

    async def connect(self) -> None: ...

    async def send(self, data: bytes) -> int:
        """Send one payload; return the receiver's receive-complete stamp (monotonic ns)."""

    async def close(self) -> None: ...


def _check_ack(ack: bytes, size: int) -> int:
    stamp, length = ACK.unpack(ack)
    if length != size:
        raise RuntimeError(f"baseline receiver got {length} of {size} bytes")
    return int(stamp)


class RawTcpClient:
    """Non-blocking socket + ``loop.sock_sendall``: no copy of the payload either."""

    name = "raw tcp"

    def __init__(self, port: int) -> None:
        self._port = port
        self._sock: socket.socket | None = None
        self._ack = bytearray(ACK.size)

    async def connect(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self._port))
        self._sock = sock

    async def send(self, data: bytes) -> int:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(self._sock, HEADER.pack(len(data)))
        await loop.sock_sendall(self._sock, data)
        view, got = memoryview(self._ack), 0
        while got < ACK.size:
            n = await loop.sock_recv_into(self._sock, view[got:])
            if not n:
                raise ConnectionError("raw receiver closed the connection")
            got += n
        return _check_ack(bytes(self._ack), len(data))

    async def close(self) -> None:
        if self._sock is not None:
            self._sock.close()


class StreamsTcpClient:
    """The minimal asyncio version: ``open_connection``, ``write``, ``drain``, ``readexactly``."""

    name = "tcp streams"

    def __init__(self, port: int) -> None:
        self._port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def connect(self) -> None:
        self._streams = await asyncio.open_connection("127.0.0.1", self._port)

    async def send(self, data: bytes) -> int:
        assert self._streams is not None
        reader, writer = self._streams
        writer.write(HEADER.pack(len(data)))
        writer.write(data)
        await writer.drain()
        return _check_ack(await reader.readexactly(ACK.size), len(data))

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()


class BareWebSocketClient:
    name = "bare websockets"

    def __init__(self, port: int) -> None:
        self._url = f"ws://127.0.0.1:{port}/"
        self._conn: ClientConnection | None = None

    async def connect(self) -> None:
        self._conn = await connect(self._url, compression=None, ping_interval=None, proxy=None)

    async def send(self, data: bytes) -> int:
        assert self._conn is not None
        await self._conn.send(data)
        ack = await self._conn.recv()
        assert isinstance(ack, bytes)
        return _check_ack(ack, len(data))

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


class BareGrpcClient:
    def __init__(self, port: int, mode: str) -> None:
        self.name = f"bare grpc {mode}"
        self._target = f"127.0.0.1:{port}"
        self._mode = mode
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None

    async def connect(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._target, options=GRPC_OPTIONS)
        await self._channel.channel_ready()
        if self._mode == "stream":
            stream = self._channel.stream_stream(f"/{SERVICE}/SendStream", None, None)
            self._call = stream()  # type: ignore[call-arg]  # write()/read() style
        else:
            self._call = self._channel.unary_unary(f"/{SERVICE}/Send", None, None)

    async def send(self, data: bytes) -> int:
        if self._mode == "stream":
            await self._call.write(data)
            ack = await self._call.read()
        else:
            ack = await self._call(data)
        return _check_ack(ack, len(data))

    async def close(self) -> None:
        if self._mode == "stream" and self._call is not None:
            await self._call.done_writing()
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self._call.read()
        if self._channel is not None:
            await self._channel.close(None)


class BarePicowsClient:
    """picows: one unfragmented binary frame per message, masked as RFC 6455 requires."""

    name = "bare picows"

    def __init__(self, port: int) -> None:
        self._url = f"ws://127.0.0.1:{port}/"
        self._transport: Any = None
        self._acks: asyncio.Queue[bytes] = asyncio.Queue()

    async def connect(self) -> None:
        from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

        acks = self._acks

        class Listener(WSListener):
            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                if frame.msg_type == WSMsgType.BINARY:
                    acks.put_nowait(frame.get_payload_as_bytes())

        self._transport, _ = await ws_connect(Listener, self._url, max_frame_size=LIMIT)

    async def send(self, data: bytes) -> int:
        from picows import WSMsgType

        self._transport.send(WSMsgType.BINARY, data)
        return _check_ack(await self._acks.get(), len(data))

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.send_close()
            self._transport.disconnect()


class BareGrpclibClient:
    def __init__(self, port: int, mode: str) -> None:
        self.name = f"bare grpclib {mode}"
        self._port = port
        self._mode = mode
        self._channel: Any = None
        self._stream: Any = None
        self._open: Any = None

    async def connect(self) -> None:
        from grpclib.client import Channel, StreamStreamMethod, UnaryUnaryMethod

        self._channel = Channel(
            "127.0.0.1", self._port, codec=_raw_codec(), config=_grpclib_config()
        )
        if self._mode == "stream":
            method = StreamStreamMethod(self._channel, f"/{SERVICE}/SendStream", bytes, bytes)
            self._open = method.open()
            self._stream = await self._open.__aenter__()
        else:
            self._stream = UnaryUnaryMethod(self._channel, f"/{SERVICE}/Send", bytes, bytes)

    async def send(self, data: bytes) -> int:
        if self._mode == "stream":
            await self._stream.send_message(data)
            ack = await self._stream.recv_message()
        else:
            ack = await self._stream(data)
        return _check_ack(ack, len(data))

    async def close(self) -> None:
        if self._open is not None:
            await self._stream.end()
            with contextlib.suppress(Exception):
                await self._open.__aexit__(None, None, None)
        if self._channel is not None:
            self._channel.close()


async def sink_stats(grpc_port: int) -> dict[str, int]:
    """What the OTLP sink has received so far."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        raw = await channel.unary_unary(f"/{SERVICE}/SinkStats", None, None)(b"", timeout=5)
    stats: dict[str, int] = json.loads(raw)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready", type=Path, required=True)
    # The same process-level tuning as the imgbench receiver (imgbench.cli.main), so that
    # harness / bare compares the libraries, not two allocator configurations.
    alloc.keep_image_buffers()
    asyncio.run(serve_all(parser.parse_args().ready))


if __name__ == "__main__":
    main()

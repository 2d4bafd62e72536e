"""Push senders: the transmitter is the server, the receiver the subscribed client.

The same :class:`~transmitter.senders.Sender` interface as the uploads, so the
same harness (:mod:`transmitter.runner`) drives the schedule, stamps the send
start before encoding, checks each Ack and builds the same samples:

* ``connect`` (not timed): start the push server on ``IMGBENCH_PUSH_HOST``,
  ask the receiver to subscribe (``POST /v1/subscriptions`` on its HTTP port,
  retried until the connect deadline) and wait until it has connected;
* ``send``: write one ImageMessage (mode ``push``) to the subscriber and
  return the Ack it sends back on the same connection, in order;
* ``close``: end the connection (WebSocket close 1000, gRPC status OK) and
  stop the server.

WebSocket: the transmitter runs a websockets server at
:data:`~imgbench.wire.names.WS_PUSH_PATH`; its frames to the client are not
masked (RFC 6455 5.1: only client-to-server frames are), the Acks coming back
are. gRPC: the transmitter serves ``imgbench.v1.Pusher/Subscribe``, a
bidirectional stream (images down, one Ack up per image), so the closed loop
and the round-trip time work exactly as with ``Receiver/SendStream``.

Limits are the uploads' ones, mirrored: the receiver (now the client) accepts
messages up to ``IMGBENCH_MAX_MESSAGE_BYTES`` (gRPC: plus the headroom, the
receiver core enforcing the exact limit), the transmitter accepts only Acks on
WebSocket (:data:`~transmitter.senders.ACK_LIMIT`) and the same gRPC limits as
the upload channel. Compression is the transmitter's choice in both
directions (``IMGBENCH_COMPRESSION``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable

import grpc
from opentelemetry.sdk.trace import TracerProvider
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from imgbench.config.settings import TransmitterSettings
from imgbench.errors import ImageLost, ReceiverRefused, ReceiverUnreachable
from imgbench.observe.logs import get_logger
from imgbench.runtime.http import request
from imgbench.security import guards
from imgbench.wire import HeadTemplate
from imgbench.wire.names import (
    GRPC_HEADROOM,
    PUSH_MODE,
    PUSH_SERVICE,
    SUBSCRIBE_METHOD,
    WS_PUSH_PATH,
)
from transmitter.prebuilt import OneBuffer
from transmitter.senders import (
    ACK_LIMIT,
    Payload,
    Sender,
    _OrderedAcks,
    send_ws_acked,
    tls_reason,
    transmitter_tls,
)

log = get_logger("transmitter")

#: The receiver's endpoint that makes it subscribe (see receiver/push.py).
SUBSCRIPTIONS_PATH = "/v1/subscriptions"


def make_push_sender(
    protocol: str,
    settings: TransmitterSettings,
    tracing: TracerProvider | None,
    refused: guards.Refused | None = None,
) -> Sender:
    """``refused(transport)`` is called when the push server refuses a client
    without the token (the caller counts it)."""
    if protocol == "websocket":
        return PushWebSocketSender(settings, refused)
    return PushGrpcSender(settings, tracing, refused)


def _refusal_logger(refused: guards.Refused | None) -> guards.Refused:
    def on_refused(transport: str) -> None:
        log.warning("push server refused a client: missing or wrong bearer token",
                    transport=transport)  # fmt: skip
        if refused is not None:
            refused(transport)

    return on_refused


def push_address(settings: TransmitterSettings) -> str:
    """``IMGBENCH_PUSH_HOST``, or the local address of the route to the receiver.

    A connected UDP socket sends nothing; the kernel just picks the source
    address it would use, which is an address the receiver can reach us at
    (on one host: 127.0.0.1).
    """
    if settings.push.push_host:
        return settings.push.push_host
    family, kind, proto, _, address = socket.getaddrinfo(
        settings.target.receiver_host, settings.target.http_port, type=socket.SOCK_DGRAM
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.connect(address)
        return str(probe.getsockname()[0])


def _host(address: str) -> str:
    """``address`` as the host part of a URL or gRPC target (IPv6 in brackets)."""
    return f"[{address}]" if ":" in address else address


async def request_subscription(
    settings: TransmitterSettings, protocol: str, target: str, traceparent: str, deadline: float
) -> None:
    """Ask the receiver to subscribe to ``target``; retry until ``deadline`` while unreachable.

    Raises :class:`ReceiverUnreachable` when the receiver cannot be reached in
    time or refuses the subscription (the body says why).
    """
    body = json.dumps({"protocol": protocol, "target": target, "traceparent": traceparent})
    tls = transmitter_tls(settings)
    delay = 0.1
    while True:
        try:
            status, _, answer = await request(
                settings.target.receiver_host,
                settings.target.http_port,
                "POST",
                SUBSCRIPTIONS_PATH,
                headers={"Content-Type": "application/json"},
                body=body.encode(),
                timeout=max(0.1, min(10.0, deadline - time.monotonic())),
                tls=tls.client_context() if tls is not None else None,
                token=settings.security.token or None,
            )
        except ssl.SSLError as exc:  # a certificate or TLS mismatch does not heal
            raise ReceiverUnreachable(
                f"TLS with the receiver's HTTP API at {settings.target.receiver_host}:"
                f"{settings.target.http_port} failed: {tls_reason(exc)}"
            ) from exc
        except (OSError, TimeoutError) as exc:
            if time.monotonic() + delay > deadline:
                raise ReceiverUnreachable(
                    f"cannot ask the receiver at {settings.target.receiver_host}:"
                    f"{settings.target.http_port} to subscribe: {exc}"
                ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        if status == 401:
            raise ReceiverRefused(
                f"the receiver at {settings.target.receiver_host}:{settings.target.http_port}"
                " refused the subscription request (HTTP 401): missing or wrong bearer token"
                " (IMGBENCH_TOKEN)"
            )
        if status != 202:
            raise ReceiverUnreachable(
                f"the receiver refused to subscribe to {target} (HTTP {status}):"
                f" {answer.decode(errors='replace').strip()}"
            )
        return


async def _wait_subscriber(connected: asyncio.Future[None], deadline: float, what: str) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(connected), max(0.1, deadline - time.monotonic()))
    except TimeoutError as exc:
        raise ReceiverUnreachable(
            f"the receiver did not connect to {what} before the connect deadline"
        ) from exc


class PushWebSocketSender:
    """The transmitter as the WebSocket server; one subscriber per protocol run."""

    protocol = "websocket"
    mode = PUSH_MODE

    def __init__(
        self, settings: TransmitterSettings, refused: guards.Refused | None = None
    ) -> None:
        self.settings = settings
        self._tls = transmitter_tls(settings)
        self._refused = _refusal_logger(refused)
        self.url = ""
        self._server: Server | None = None
        self._conn: ServerConnection | None = None
        self._connected: asyncio.Future[None] | None = None
        self._acks = _OrderedAcks()
        self._lock = asyncio.Lock()
        self._buffers = OneBuffer(settings.transport.max_message_bytes)

    async def connect(self, deadline: float, traceparent: str) -> None:
        s = self.settings
        token = s.security.token
        host = push_address(s)
        self._connected = asyncio.get_running_loop().create_future()
        self._server = await serve(
            self._handler,
            host,
            s.push.push_ws_port,
            max_size=ACK_LIMIT,  # only acks come back
            # The server decides: deflate only when the transmitter asks for it.
            compression="deflate" if s.workload.compression else None,
            # As the receiver's upload endpoint: the token first, then the path.
            process_request=guards.chain(
                guards.websocket_check(token, self._refused) if token else None,
                self._check_path,
            ),
            ssl=self._tls.server_context() if self._tls is not None else None,
            ping_interval=20,
            ping_timeout=60,
        )
        port = int(next(iter(self._server.sockets)).getsockname()[1])
        scheme = "wss" if self._tls is not None else "ws"
        self.url = f"{scheme}://{_host(host)}:{port}{WS_PUSH_PATH}"
        try:
            await request_subscription(s, self.protocol, self.url, traceparent, deadline)
            await _wait_subscriber(self._connected, deadline, self.url)
        except BaseException:
            await self._stop_server()
            raise

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != WS_PUSH_PATH:
            return connection.respond(404, f"unknown path: use {WS_PUSH_PATH}\n")
        return None

    async def _handler(self, connection: ServerConnection) -> None:
        assert self._connected is not None
        if self._connected.done():
            await connection.close(CloseCode.TRY_AGAIN_LATER, "one subscriber per run")
            return
        self._conn = connection
        self._connected.set_result(None)
        # The handler lives as long as the connection: it reads the acks.
        try:
            async for message in connection:
                if isinstance(message, bytes):
                    self._acks.deliver(message)
        except ConnectionClosed:
            pass
        code, why = connection.close_code, connection.close_reason
        self._acks.fail(
            ImageLost(f"WebSocket subscriber closed (code {code} {why!r}) before the ack arrived")
        )

    async def ready(self, deadline: float) -> None:
        """Nothing to do: the subscriber's connection stays open for the run."""

    def prepare(self, template: HeadTemplate, data: bytes) -> Callable[[int], Payload]:
        return self._buffers.ready(template, data)

    async def send(self, payload: Payload) -> bytes:
        assert self._conn is not None, "connect() first"
        return await send_ws_acked(
            self._conn, self._lock, self._acks, payload, "subscriber", self._buffers
        )

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        await self._stop_server()

    async def _stop_server(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class PushGrpcSender:
    """The transmitter serving ``imgbench.v1.Pusher/Subscribe``; one subscriber per run."""

    protocol = "grpc"
    mode = PUSH_MODE

    def __init__(
        self,
        settings: TransmitterSettings,
        tracing: TracerProvider | None,
        refused: guards.Refused | None = None,
    ) -> None:
        self.settings = settings
        self._tls = transmitter_tls(settings)
        self._refused = _refusal_logger(refused)
        self.target = ""
        self._tracing = tracing
        self._server: grpc.aio.Server | None = None
        self._connected: asyncio.Future[None] | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._acks = _OrderedAcks()
        self._ended: asyncio.Event | None = None
        #: The stream's generator still holds the previous message: two buffers.
        self._buffers = OneBuffer(settings.transport.max_message_bytes, spares=2)

    async def connect(self, deadline: float, traceparent: str) -> None:
        s = self.settings
        limit = s.transport.max_message_bytes + GRPC_HEADROOM
        interceptors: list[grpc.aio.ServerInterceptor] = []  # type: ignore[type-arg]
        if s.security.token:  # first, as on the receiver
            interceptors.append(guards.TokenInterceptor(s.security.token, self._refused))
        if self._tracing is not None and s.observe.telemetry and s.observe.grpc_instrumentation:
            from opentelemetry.instrumentation.grpc import aio_server_interceptor

            interceptors.append(
                aio_server_interceptor(tracer_provider=self._tracing)  # type: ignore[no-untyped-call]
            )
        self._connected = asyncio.get_running_loop().create_future()
        self._ended = asyncio.Event()
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
            ],
            # The server decides, as the channel does for the uploads.
            compression=grpc.Compression.Gzip if s.workload.compression else None,
        )
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    PUSH_SERVICE,
                    {SUBSCRIBE_METHOD: grpc.stream_stream_rpc_method_handler(self._subscribe)},
                ),
            )
        )
        host = _host(push_address(s))
        address = f"{host}:{s.push.push_grpc_port}"
        port = (
            server.add_secure_port(address, self._tls.grpc_server_credentials())
            if self._tls is not None
            else server.add_insecure_port(address)
        )
        if port == 0:
            raise ReceiverUnreachable(
                f"cannot bind the gRPC push server to {host}:{s.push.push_grpc_port}"
            )
        self._server = server
        await server.start()
        self.target = f"{host}:{port}"
        try:
            await request_subscription(s, self.protocol, self.target, traceparent, deadline)
            await _wait_subscriber(self._connected, deadline, self.target)
        except BaseException:
            await self._stop_server()
            raise

    # An async generator, not context.write(): as in the receiver's SendStream.
    async def _subscribe(
        self,
        request_iterator: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> AsyncIterator[bytes]:
        assert self._connected is not None and self._ended is not None
        if self._connected.done():
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "one subscriber per run")
        self._connected.set_result(None)
        reader = asyncio.create_task(self._read(request_iterator))
        try:
            while (item := await self._queue.get()) is not None:
                yield item
        finally:
            self._ended.set()
            # Every ack is in (the harness waited for it): stop reading.
            reader.cancel()

    async def _read(self, acks: AsyncIterator[bytes]) -> None:
        try:
            async for ack in acks:
                self._acks.deliver(ack)
            error = ImageLost("gRPC subscriber ended its stream before the ack arrived")
        except (grpc.aio.AioRpcError, asyncio.CancelledError) as exc:
            error = ImageLost(f"gRPC subscriber stream failed: {exc!r}")
        self._acks.fail(error)

    def prepare(self, template: HeadTemplate, data: bytes) -> Callable[[int], Payload]:
        return self._buffers.ready(template, data)

    async def send(self, payload: Payload) -> bytes:
        assert not isinstance(payload, list), "chunked uploads are a Receiver/Upload mode"
        if self._ended is None or self._ended.is_set():
            raise ImageLost("gRPC push stream is closed")
        if isinstance(payload, tuple):
            payload = self._buffers.message(*payload)
        assert isinstance(payload, bytes)
        fut = self._acks.expect()
        self._queue.put_nowait(payload)
        return await fut

    async def ready(self, deadline: float) -> None:
        """Nothing to do: the Subscribe stream is a call in progress for the whole run."""

    async def close(self) -> None:
        self._queue.put_nowait(None)  # ends the stream with OK
        if self._ended is not None and self._connected is not None and self._connected.done():
            try:
                await asyncio.wait_for(self._ended.wait(), 10)
            except TimeoutError:
                log.warning("gRPC push stream did not end within 10 s")
        await self._stop_server()

    async def _stop_server(self) -> None:
        if self._server is not None:
            await self._server.stop(5)
            self._server = None

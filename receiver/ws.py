"""WebSocket adapter: one binary message in, one binary Ack frame out.

The transmitter sends each message up to 16 MiB as one frame, as bare websockets
does, larger ones in 4 MiB fragments; a fragmented message is reassembled by websockets,
and the receive-complete stamp is taken when the last fragment is in, as for a
single frame.

Endpoints: ``/v1/images`` (binary mode: ImageMessage bytes) and
``/v1/images/json`` (json mode: the same fields with base64 data in a text
frame; clock probes are binary ``ImageMessage`` frames on both endpoints, answered
at once on the same socket). Message-level problems (malformed bytes, a text frame on the binary
endpoint, an invalid field) are answered with an Ack whose ``error`` is the
reason, and the connection stays open. The limit applies to the decompressed
message on both transports: a message above it by up to
:data:`~imgbench.wire.names.WS_HEADROOM` gets an error Ack (``oversized``), a larger
one makes websockets close the connection with code 1009 (also ``oversized``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    HeaderLineTooLong,
    RequestLineTooLong,
    TooManyHeaders,
)
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from imgbench.errors import (
    ConnectionsFull,
    FrameError,
    InvalidText,
    OversizedMessage,
    WireError,
    WrongFrameType,
)
from imgbench.security import guards
from imgbench.security.tls import tls_of
from imgbench.wire.names import WS_HEADROOM
from receiver.core import ReceiverCore
from receiver.events import Stamp, error_ack

PATHS = {"/v1/images": "binary", "/v1/images/json": "json"}
PROTOCOL = "websocket"

#: The default of IMGBENCH_WS_MAX_QUEUE (the setting is what the receiver applies):
#: messages websockets may buffer per connection before it stops reading the socket.
MAX_QUEUE = 2


class WebSocketAdapter:
    def __init__(self, core: ReceiverCore) -> None:
        self.core = core
        #: Connections admitted past the handshake checks and not yet closed: at most
        #: RECEIVER_MAX_CONNECTIONS (counted here, not from websockets' open set,
        #: which a burst of concurrent handshakes would overshoot).
        self.admitted: set[ServerConnection] = set()

    async def start(self, host: str, port: int) -> Server:
        settings = self.core.settings
        tls = tls_of(settings, server=True)
        token_check = (
            guards.websocket_check(settings.token, self.core.unauthenticated)
            if settings.token
            else None
        )
        return await serve(
            self._handler,
            host,
            port,
            create_connection=self._connection_class(),
            # The limit is the decompressed message's, enforced by the core with an error
            # Ack (as on gRPC); websockets gets the headroom so that deflate's growth of
            # incompressible data does not make an in-limit message too big on the wire.
            max_size=self.core.settings.max_message_bytes + WS_HEADROOM,
            # Messages buffered per connection before websockets stops reading the
            # socket: small, so a fast sender meets TCP backpressure, not memory growth.
            max_queue=self.core.settings.ws_max_queue,
            write_limit=self.core.settings.ws_write_limit,
            # Accepted when the client offers it; the transmitter decides (off by default).
            compression="deflate",
            process_response=self._count_refusal,
            # The token first: a stranger learns nothing, not even which paths exist,
            # and takes no connection slot.
            process_request=guards.chain(token_check, self._check_path, self._admit),
            # wss:// with TLS (the same certificate as gRPC and HTTP, TLS 1.3).
            ssl=tls.server_context() if tls is not None else None,
            # The same bounds as gRPC's (README "Configuration"): the opening handshake
            # (TLS included), and keepalive pings that close a dead peer's connection.
            open_timeout=settings.handshake_timeout,
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
        )

    def _connection_class(self) -> type[ServerConnection]:
        """websockets' connection, counting what its own hooks never see.

        A request too broken to parse, or with a request line or header above
        websockets' limits, is refused inside websockets' parser, before
        ``process_request`` and ``process_response`` (unparseable: closed without an
        answer, counted as 400; too long: 414 / 431); a handshake not complete within
        RECEIVER_HANDSHAKE_TIMEOUT is closed (counted as 408). A socket closed before
        sending a byte made no request and is not counted. A connection leaves
        :attr:`admitted` when its socket closes, whatever ended it.
        """
        adapter = self

        class CountedConnection(ServerConnection):
            #: Any byte arrived: a socket closed before sending one made no request.
            spoke = False

            def data_received(self, data: bytes) -> None:
                self.spoke = True
                super().data_received(data)

            async def handshake(self, *args: Any, **kwargs: Any) -> None:
                try:
                    await super().handshake(*args, **kwargs)
                except asyncio.CancelledError:
                    # websockets' open_timeout cancels the handshake; so does a shutdown.
                    if self.request is None and self.server.is_serving():
                        adapter.core.metrics.http_refused("websocket", 408)
                    raise
                if self.request is None and self.spoke and self.protocol.handshake_exc:
                    exc = self.protocol.handshake_exc
                    status = (
                        414
                        if isinstance(exc, RequestLineTooLong)
                        else 431
                        if isinstance(exc, HeaderLineTooLong | TooManyHeaders)
                        else 400
                    )
                    adapter.core.metrics.http_refused("websocket", status)

            def connection_lost(self, exc: Exception | None) -> None:
                adapter.admitted.discard(self)
                super().connection_lost(exc)

        return CountedConnection

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse the handshake with 503 when RECEIVER_MAX_CONNECTIONS are open."""
        limit = self.core.settings.max_connections
        if len(self.admitted) >= limit:
            self.core.reject(
                PROTOCOL,
                ConnectionsFull(f"{limit} connections open (RECEIVER_MAX_CONNECTIONS)"),
            )
            return connection.respond(
                503, f"too many connections (RECEIVER_MAX_CONNECTIONS={limit})\n"
            )
        self.admitted.add(connection)
        return None

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] not in PATHS:
            return connection.respond(404, "unknown path: use /v1/images or /v1/images/json\n")
        return None

    def _count_refusal(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        # A handshake websockets (or _check_path, _admit) refused: bad headers, unknown
        # path, no free connection. Those refused while parsing never reach this hook:
        # the connection class counts them.
        if response.status_code != 101:
            self.core.metrics.http_refused("websocket", response.status_code)

    async def _handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        mode = PATHS[connection.request.path.split("?", 1)[0]]
        expects_text = mode == "json"
        # The run span's context arrives in the handshake; per-image context is in each message.
        structlog.contextvars.bind_contextvars(
            protocol=PROTOCOL,
            mode=mode,
            connection_traceparent=connection.request.headers.get("traceparent", ""),
        )
        try:
            async for message in connection:
                stamp = Stamp.now()
                if isinstance(message, str) and not expects_text:
                    exc = WrongFrameType(f"text frame on the {mode} endpoint")
                    self.core.reject(PROTOCOL, exc)
                    await connection.send(error_ack(exc))
                    continue
                try:
                    # A binary frame on the json endpoint may only be a clock probe.
                    _, ack = await self.core.handle(
                        message,
                        stamp,
                        protocol=PROTOCOL,
                        mode=mode,
                        probe_only=expects_text and isinstance(message, bytes),
                    )
                except WireError as exc:
                    await connection.send(error_ack(exc))
                    continue
                await connection.send(ack)
        except ConnectionClosedError as exc:
            # The close websockets sent says which refusal ended the connection.
            code = exc.sent.code if exc.sent is not None else None
            why = exc.sent.reason if exc.sent is not None else ""
            if code == CloseCode.MESSAGE_TOO_BIG:
                self.core.reject(
                    PROTOCOL,
                    OversizedMessage(
                        f"message above {self.core.settings.max_message_bytes + WS_HEADROOM}"
                        " bytes (closed 1009)"
                    ),
                )
            elif code == CloseCode.INVALID_DATA:
                self.core.reject(PROTOCOL, InvalidText(f"{why} (closed 1007)"))
            elif code == CloseCode.PROTOCOL_ERROR:
                self.core.reject(PROTOCOL, FrameError(f"{why} (closed 1002)"))
            else:
                self.core.metrics.disconnects.labels(PROTOCOL).inc()
                self.core.log_disconnect(PROTOCOL, str(exc))
        except ConnectionClosed:
            pass

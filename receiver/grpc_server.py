"""gRPC adapter: ``imgbench.v1.Receiver/Send`` (unary) and ``/SendStream``.

The methods are registered with no request deserializer, so the handler gets
the raw message bytes, exactly like the WebSocket adapter, and the same core
decodes them. That keeps the receive-complete timestamp before decoding on
both transports. Refusals map to status codes on ``Send``
(``INVALID_ARGUMENT``, ``RESOURCE_EXHAUSTED`` for oversized) and to error Acks
on ``SendStream``, so one bad message does not end a streamed run.

Size limit: grpc core is given the message limit plus
:data:`imgbench.wire.names.GRPC_HEADROOM`, and the
core enforces the exact limit, so oversized messages up to the headroom are
counted. Messages larger still are refused by grpc core with
``RESOURCE_EXHAUSTED`` before any application code runs: those the receiver
cannot count (the transmitter counts its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import structlog
from opentelemetry.sdk.trace import TracerProvider

from imgbench import wire
from imgbench.errors import (
    ConnectionsFull,
    OversizedMessage,
    RecordsFull,
    RunEvicted,
    RunsFull,
    UploadsBusy,
    UploadStalled,
    WireError,
)
from imgbench.observe.metrics import ReceiverMetrics
from imgbench.security.guards import TokenInterceptor
from imgbench.security.tls import tls_of
from imgbench.wire import ImageMeta, names
from receiver.core import ReceiverCore
from receiver.events import Assembled, Stamp, error_ack

PROTOCOL = "grpc"


class GrpcAdapter:
    def __init__(self, core: ReceiverCore, tracer_provider: TracerProvider | None) -> None:
        self.core = core
        self._tracer_provider = tracer_provider
        s = core.settings
        self._uploads = UploadBudget(s.max_uploads, s.max_upload_buffer_bytes, core.metrics)
        #: Calls in progress (all methods), at most RECEIVER_MAX_CONNECTIONS.
        self.calls = 0

    async def start(self, host: str, port: int) -> tuple[grpc.aio.Server, int]:
        limit = self.core.settings.max_message_bytes + names.GRPC_HEADROOM
        interceptors: list[grpc.aio.ServerInterceptor] = []  # type: ignore[type-arg]
        settings = self.core.settings
        if settings.token:
            # First: a refused call reaches no other interceptor and no method.
            interceptors.append(TokenInterceptor(settings.token, self.core.unauthenticated))
        if (
            self._tracer_provider is not None
            and settings.telemetry
            and settings.grpc_instrumentation
        ):
            from opentelemetry.instrumentation.grpc import aio_server_interceptor

            interceptors.append(
                aio_server_interceptor(tracer_provider=self._tracer_provider)  # type: ignore[no-untyped-call]
            )
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                # HTTP/2 flow control: the receiver's window is what limits an upload.
                *settings.grpc_options(),
                # The bounds WebSocket has too (README "Configuration"): connections at
                # once (grpc core closes further ones before any application code: the
                # client sees UNAVAILABLE, nothing to count; calls are bounded and
                # counted in _admit), the opening (TLS and the HTTP/2 preface and
                # settings), keepalive pings that close a dead peer's connection.
                ("grpc.max_allowed_incoming_connections", settings.max_connections),
                ("grpc.server_handshake_timeout_ms", round(settings.handshake_timeout * 1000)),
                ("grpc.keepalive_time_ms", round(settings.ping_interval * 1000)),
                ("grpc.keepalive_timeout_ms", round(settings.ping_timeout * 1000)),
                # What actually ends a connection whose peer does not acknowledge a PING
                # in grpcio 1.85 (keepalive_timeout_ms alone did not, within 15 s at 1 s).
                ("grpc.http2.ping_timeout_ms", round(settings.ping_timeout * 1000)),
                # A connection with no call in progress (one that never made a call
                # included: grpc core starts the timer when the connection opens) is
                # closed after one to two of these (checked once per period), so a
                # stranger cannot hold a connection slot by idling (grpc core counts
                # it before the token is checked).
                ("grpc.max_connection_idle_ms", round(settings.grpc_idle_timeout * 1000)),
            ],
        )
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    names.GRPC_SERVICE,
                    {
                        names.SEND_METHOD: grpc.unary_unary_rpc_method_handler(self._send),
                        names.SEND_STREAM_METHOD: grpc.stream_stream_rpc_method_handler(
                            self._send_stream
                        ),
                        names.UPLOAD_METHOD: grpc.stream_unary_rpc_method_handler(self._upload),
                    },
                ),
            )
        )
        tls = tls_of(settings, server=True)
        address = f"{host}:{port}"
        bound = (
            server.add_secure_port(address, tls.grpc_server_credentials())
            if tls is not None
            else server.add_insecure_port(address)
        )
        if bound == 0:
            raise OSError(f"cannot bind gRPC to {host}:{port}")
        await server.start()
        return server, bound

    async def _admit(self, context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        """Take a call slot, or end the call with ``RESOURCE_EXHAUSTED`` (counted) when
        RECEIVER_MAX_CONNECTIONS calls are in progress; the caller gives it back."""
        limit = self.core.settings.max_connections
        if self.calls >= limit:
            exc = ConnectionsFull(f"{limit} gRPC calls in progress (RECEIVER_MAX_CONNECTIONS)")
            self.core.reject(PROTOCOL, exc)
            await context.abort(_status(exc), f"{exc.reason}: {exc}")
        self.calls += 1

    async def _send(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        stamp = Stamp.now()
        structlog.contextvars.bind_contextvars(protocol=PROTOCOL, mode="unary")
        await self._admit(context)
        try:
            _, ack = await self.core.handle(request, stamp, protocol=PROTOCOL, mode="unary")
        except WireError as exc:
            await context.abort(_status(exc), f"{exc.reason}: {exc}")
        finally:
            self.calls -= 1
        return ack

    # An async generator, not context.write(): the OpenTelemetry aio interceptor
    # only wraps generator-style streaming handlers correctly.
    async def _send_stream(
        self,
        request_iterator: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> AsyncIterator[bytes]:
        structlog.contextvars.bind_contextvars(protocol=PROTOCOL, mode="stream")
        await self._admit(context)
        last: ImageMeta | None = None
        try:
            async for request in request_iterator:
                stamp = Stamp.now()
                try:
                    last, ack = await self.core.handle(
                        request, stamp, protocol=PROTOCOL, mode="stream"
                    )
                except WireError as exc:
                    ack = error_ack(exc)
                yield ack
        except asyncio.CancelledError:
            self._lost(last, "stream cancelled")
            raise
        finally:
            self.calls -= 1
        # A client that vanishes just ends the request iterator, like a clean
        # half-close; an unfinished run is what tells the two apart.
        self._lost(last, "stream ended")

    async def _upload(
        self,
        request_iterator: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> bytes:
        """One image in chunks; the receive-complete stamp is taken when the last byte is in.

        Memory is bounded by :class:`UploadBudget`: at most ``RECEIVER_MAX_UPLOADS``
        uploads at once, and their announced sizes together at most
        ``RECEIVER_MAX_UPLOAD_BUFFER_BYTES`` (reserved when the header arrives,
        refused with ``RESOURCE_EXHAUSTED`` otherwise). An upload that sends
        nothing for ``RECEIVER_UPLOAD_IDLE_TIMEOUT`` seconds is ended
        (``DEADLINE_EXCEEDED``), so stalled clients cannot hold the budget.
        """
        structlog.contextvars.bind_contextvars(protocol=PROTOCOL, mode="chunked")
        await self._admit(context)
        try:
            return await self._upload_one(request_iterator, context)
        finally:
            self.calls -= 1

    async def _upload_one(
        self,
        request_iterator: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> bytes:
        settings = self.core.settings
        budget = self._uploads
        try:
            budget.enter()
        except WireError as exc:
            self.core.reject(PROTOCOL, exc)
            await context.abort(_status(exc), f"{exc.reason}: {exc}")
        assembler = wire.ChunkAssembler(
            max_message_bytes=settings.max_message_bytes,
            max_image_bytes=settings.max_image_bytes,
            protocol=PROTOCOL,
            mode="chunked",
            reserve=budget.reserve,
        )
        try:  # entered: every path below must leave
            stamp: Stamp | None = None
            ended = False  # the client half-closed the stream
            try:
                chunks = request_iterator.__aiter__()
                while True:
                    try:
                        raw = await asyncio.wait_for(anext(chunks), settings.upload_idle_timeout)
                    except StopAsyncIteration:
                        ended = True
                        break
                    except TimeoutError:
                        raise UploadStalled(
                            f"no chunk for {settings.upload_idle_timeout} s"
                            " (RECEIVER_UPLOAD_IDLE_TIMEOUT)"
                        ) from None
                    if assembler.feed(raw):
                        stamp = Stamp.now()
                meta, data = assembler.result()
                assert stamp is not None
            except WireError as exc:
                if ended and assembler.received and not assembler.complete:
                    # Announced bytes never came: the client went away mid-image. Only
                    # then: an oversend or a repeated header is a refusal, not a disconnect.
                    self.core.metrics.disconnects.labels(PROTOCOL).inc()
                self.core.reject(PROTOCOL, exc)
                await context.abort(_status(exc), f"{exc.reason}: {exc}")
            try:
                _, ack = await self.core.handle(
                    Assembled(meta, data, assembler.message_bytes),
                    stamp,
                    protocol=PROTOCOL,
                    mode="chunked",
                )
            except WireError as exc:
                await context.abort(_status(exc), f"{exc.reason}: {exc}")
            return ack
        finally:
            # The memory goes with the reservation (an ended upload's buffer must not
            # outlive it: README "Bad input", chunked uploads).
            assembler.close()
            budget.leave(assembler.reserved)

    def _lost(self, last: ImageMeta | None, how: str) -> None:
        if last is not None and not self.core.is_complete(last):
            self.core.metrics.disconnects.labels(PROTOCOL).inc()
            self.core.log_disconnect(PROTOCOL, f"{how} before run {last.run_id} was complete")


class UploadBudget:
    """Counts concurrent chunked uploads and the bytes they have reserved.

    ``enter`` / ``leave`` bracket one upload; ``reserve`` is the assembler's
    callback for the announced image size. All run on the event loop thread, so
    plain integers suffice.
    """

    def __init__(self, max_uploads: int, max_bytes: int, metrics: ReceiverMetrics) -> None:
        self.max_uploads = max_uploads
        self.max_bytes = max_bytes
        self.uploads = 0
        self.bytes = 0
        self._gauge = metrics.upload_buffer

    def enter(self) -> None:
        if self.uploads >= self.max_uploads:
            raise UploadsBusy(
                f"{self.uploads} chunked uploads in progress"
                f" (RECEIVER_MAX_UPLOADS={self.max_uploads})"
            )
        self.uploads += 1

    def reserve(self, nbytes: int) -> None:
        if self.bytes + nbytes > self.max_bytes:
            raise UploadsBusy(
                f"{nbytes} bytes announced, {self.bytes} of"
                f" RECEIVER_MAX_UPLOAD_BUFFER_BYTES={self.max_bytes} already reserved"
            )
        self.bytes += nbytes
        self._gauge.set(self.bytes)

    def leave(self, reserved: int) -> None:
        self.uploads -= 1
        self.bytes -= reserved
        self._gauge.set(self.bytes)


def _status(exc: WireError) -> grpc.StatusCode:
    if isinstance(exc, UploadStalled):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    if isinstance(exc, OversizedMessage | RunsFull | RecordsFull | UploadsBusy | ConnectionsFull):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, RunEvicted):
        return grpc.StatusCode.FAILED_PRECONDITION
    return grpc.StatusCode.INVALID_ARGUMENT

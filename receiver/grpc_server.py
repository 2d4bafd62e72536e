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
from imgbench.errors import OversizedMessage, RecordsFull, RunEvicted, RunsFull, WireError
from imgbench.wire import ImageMeta, names
from receiver.core import Assembled, ReceiverCore, Stamp, error_ack

PROTOCOL = "grpc"


class GrpcAdapter:
    def __init__(self, core: ReceiverCore, tracer_provider: TracerProvider | None) -> None:
        self.core = core
        self._tracer_provider = tracer_provider

    async def start(self, host: str, port: int) -> tuple[grpc.aio.Server, int]:
        limit = self.core.settings.max_message_bytes + names.GRPC_HEADROOM
        interceptors = []
        settings = self.core.settings
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
        bound = server.add_insecure_port(f"{host}:{port}")
        if bound == 0:
            raise OSError(f"cannot bind gRPC to {host}:{port}")
        await server.start()
        return server, bound

    async def _send(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        stamp = Stamp.now()
        structlog.contextvars.bind_contextvars(protocol=PROTOCOL, mode="unary")
        try:
            _, ack = await self.core.handle(request, stamp, protocol=PROTOCOL, mode="unary")
        except WireError as exc:
            await context.abort(_status(exc), f"{exc.reason}: {exc}")
        return ack

    # An async generator, not context.write(): the OpenTelemetry aio interceptor
    # only wraps generator-style streaming handlers correctly.
    async def _send_stream(
        self,
        request_iterator: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> AsyncIterator[bytes]:
        structlog.contextvars.bind_contextvars(protocol=PROTOCOL, mode="stream")
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
        # A client that vanishes just ends the request iterator, like a clean
        # half-close; an unfinished run is what tells the two apart.
        self._lost(last, "stream ended")

    async def _upload(
        self,
        request_iterator: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> bytes:
        """One image in chunks; the receive-complete stamp is taken when the last byte is in."""
        structlog.contextvars.bind_contextvars(protocol=PROTOCOL, mode="chunked")
        settings = self.core.settings
        assembler = wire.ChunkAssembler(
            max_message_bytes=settings.max_message_bytes,
            max_image_bytes=settings.max_image_bytes,
            protocol=PROTOCOL,
            mode="chunked",
        )
        stamp: Stamp | None = None
        try:
            async for raw in request_iterator:
                if assembler.feed(raw):
                    stamp = Stamp.now()
            meta, data = assembler.result()
            assert stamp is not None
        except WireError as exc:
            if (
                not assembler.complete
                and assembler.received
                and not isinstance(exc, OversizedMessage)
            ):
                # Announced bytes never came: the client went away mid-image.
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

    def _lost(self, last: ImageMeta | None, how: str) -> None:
        if last is not None and not self.core.is_complete(last):
            self.core.metrics.disconnects.labels(PROTOCOL).inc()
            self.core.log_disconnect(PROTOCOL, f"{how} before run {last.run_id} was complete")


def _status(exc: WireError) -> grpc.StatusCode:
    if isinstance(exc, OversizedMessage | RunsFull | RecordsFull):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, RunEvicted):
        return grpc.StatusCode.FAILED_PRECONDITION
    return grpc.StatusCode.INVALID_ARGUMENT

"""Push subscriptions: the receiver as the client of a transmitter's push server.

``POST /v1/subscriptions`` on the receiver's HTTP port with
``{"protocol": "websocket"|"grpc", "target": ..., "traceparent": ...}`` makes
the receiver connect to the transmitter (``ws://HOST:PORT/v1/push``, or
``HOST:PORT`` serving ``imgbench.v1.Pusher/Subscribe``) and answer every
ImageMessage pushed to it with an Ack on the same connection, until the
transmitter ends it. 202 means the subscription started; 400 names what is
wrong with the request; 503 means ``RECEIVER_MAX_SUBSCRIPTIONS`` are open.

Each message goes through :meth:`receiver.core.ReceiverCore.handle` exactly as
an upload does (mode ``push``): the receive-complete stamp is taken when the
message is complete, before decoding; validation, SHA-256, records, metrics,
spans and refusals are the uploads' ones. The limits are the uploads' ones,
on the client side: websockets' ``max_size`` is the limit plus the headroom and
the core enforces the exact limit (far larger messages close the connection with
1009, counted as ``oversized``), the gRPC
channel gets the limit plus the headroom and the core enforces the exact
limit; a message above even that is refused by grpc core, and here, unlike on
the upload path, the receiver sees that refusal and counts it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import grpc
import structlog
from opentelemetry.sdk.trace import TracerProvider
from websockets.asyncio.client import connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    InvalidHandshake,
    InvalidStatus,
)
from websockets.frames import CloseCode

from imgbench.errors import OversizedMessage, WireError, WrongFrameType
from imgbench.observe.logs import get_logger
from imgbench.runtime.http import Request, Response
from imgbench.security import guards
from imgbench.security.tls import tls_of
from imgbench.wire import ImageMeta
from imgbench.wire.names import GRPC_HEADROOM, PUSH_MODE, SUBSCRIBE, WS_HEADROOM, WS_PUSH_PATH
from receiver.core import ReceiverCore
from receiver.events import Stamp, error_ack

log = get_logger("receiver")


class Subscriptions:
    """Open push subscriptions, at most ``settings.max_subscriptions`` at once."""

    def __init__(self, core: ReceiverCore, tracer_provider: TracerProvider | None) -> None:
        self.core = core
        self._tracer_provider = tracer_provider
        self._tasks: set[asyncio.Task[None]] = set()

    async def request(self, request: Request) -> Response:
        """``POST /v1/subscriptions``: validate, then subscribe in the background."""
        try:
            protocol, target, traceparent = _parse(request.body, tls=self.core.settings.tls_on)
        except ValueError as exc:
            self.core.metrics.subscription_refusals.labels("invalid").inc()
            self.core.warnings.warning(
                "subscription", "subscription refused", reason="invalid", detail=str(exc)
            )
            return Response.json({"error": f"invalid: {exc}"}, 400)
        if len(self._tasks) >= self.core.settings.max_subscriptions:
            self.core.metrics.subscription_refusals.labels("busy").inc()
            self.core.warnings.warning(
                "subscription", "subscription refused", reason="busy", target=target
            )
            return Response.json(
                {
                    "error": f"busy: {len(self._tasks)} subscriptions open"
                    " (RECEIVER_MAX_SUBSCRIPTIONS)"
                },
                503,
            )
        run = self._websocket if protocol == "websocket" else self._grpc
        task = asyncio.create_task(run(target, traceparent))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("subscribed", protocol=protocol, target=target)
        return Response.json({"subscribed": target, "protocol": protocol}, 202)

    async def close(self) -> None:
        """Cancel every open subscription (receiver shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- WebSocket -------------------------------------------------------------

    async def _websocket(self, url: str, traceparent: str) -> None:
        protocol = "websocket"
        structlog.contextvars.bind_contextvars(
            protocol=protocol, mode=PUSH_MODE, connection_traceparent=traceparent
        )
        settings = self.core.settings
        limit = settings.max_message_bytes
        tls = tls_of(settings, server=True)
        headers = guards.headers(settings.token)
        if traceparent:
            headers["traceparent"] = traceparent
        last: ImageMeta | None = None
        try:
            async with connect(
                url,
                # wss:// (checked by _parse): the push server is verified as the
                # transmitter verifies the receiver (IMGBENCH_TLS_CA or the system store).
                ssl=tls.client_context() if tls is not None else None,
                max_size=limit + WS_HEADROOM,  # the core enforces the exact limit
                max_queue=self.core.settings.ws_max_queue,
                # Offered; the transmitter (the server) decides, as it does for uploads.
                compression="deflate",
                additional_headers=headers or None,
                open_timeout=10,
                proxy=None,
                ping_interval=20,
                ping_timeout=60,
            ) as connection:
                async for message in connection:
                    stamp = Stamp.now()
                    if isinstance(message, str):
                        exc: WireError = WrongFrameType("text frame on the push endpoint")
                        self.core.reject(protocol, exc)
                        await connection.send(error_ack(exc))
                        continue
                    try:
                        last, ack = await self.core.handle(
                            message, stamp, protocol=protocol, mode=PUSH_MODE
                        )
                    except WireError as exc:
                        await connection.send(error_ack(exc))
                        continue
                    await connection.send(ack)
        except ConnectionClosedError as exc:
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                self.core.reject(
                    protocol,
                    OversizedMessage(f"message above {limit + WS_HEADROOM} bytes (closed 1009)"),
                )
            else:
                self._disconnected(protocol, str(exc))
            return
        except ConnectionClosed:
            pass
        except InvalidStatus as exc:
            if exc.response.status_code == 401:
                self._unauthenticated(protocol, url, str(exc))
            else:
                self._unreachable(protocol, url, exc)
            return
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            self._unreachable(protocol, url, exc)
            return
        self._ended(protocol, last)

    # -- gRPC ------------------------------------------------------------------

    async def _grpc(self, target: str, traceparent: str) -> None:
        protocol = "grpc"
        structlog.contextvars.bind_contextvars(protocol=protocol, mode=PUSH_MODE)
        settings = self.core.settings
        limit = settings.max_message_bytes + GRPC_HEADROOM
        interceptors = None
        if (
            self._tracer_provider is not None
            and settings.telemetry
            and settings.grpc_instrumentation
        ):
            from opentelemetry.instrumentation.grpc import aio_client_interceptors

            interceptors = aio_client_interceptors(tracer_provider=self._tracer_provider)  # type: ignore[no-untyped-call]
        acks: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def requests() -> Any:
            while (ack := await acks.get()) is not None:
                yield ack

        last: ImageMeta | None = None
        options = [
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ]
        tls = tls_of(settings, server=True)
        channel = (
            grpc.aio.secure_channel(
                target, tls.grpc_channel_credentials(), options=options, interceptors=interceptors
            )
            if tls is not None
            else grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
        )
        metadata = guards.metadata(settings.token)
        if traceparent:
            metadata += (("traceparent", traceparent),)
        try:
            call = channel.stream_stream(SUBSCRIBE, None, None)(
                requests(), metadata=metadata or None
            )
            async for message in call:
                stamp = Stamp.now()
                try:
                    last, ack = await self.core.handle(
                        message, stamp, protocol=protocol, mode=PUSH_MODE
                    )
                except WireError as exc:
                    ack = error_ack(exc)
                acks.put_nowait(ack)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE and last is None:
                self._unreachable(protocol, target, exc)
            elif exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                self._unauthenticated(protocol, target, str(exc.details()))
            elif exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                # grpc core refused a message above limit + headroom: counted here.
                limit_note = f"(limit {settings.max_message_bytes})"
                self.core.reject(protocol, OversizedMessage(f"{exc.details()} {limit_note}"))
            else:
                self._disconnected(protocol, f"{exc.code().name}: {exc.details()}")
            return
        finally:
            acks.put_nowait(None)
            await channel.close(None)
        self._ended(protocol, last)

    # -- endings -----------------------------------------------------------------

    def _ended(self, protocol: str, last: ImageMeta | None) -> None:
        """A clean end; a disconnect all the same if the run it carried is unfinished."""
        if last is not None and not self.core.is_complete(last):
            self._disconnected(protocol, f"ended before run {last.run_id} was complete")
        else:
            log.info("subscription ended", protocol=protocol)

    def _disconnected(self, protocol: str, detail: str) -> None:
        self.core.metrics.disconnects.labels(protocol).inc()
        self.core.log_disconnect(protocol, detail)

    def _unauthenticated(self, protocol: str, target: str, detail: str) -> None:
        self.core.metrics.subscription_refusals.labels("unauthenticated").inc()
        self.core.warnings.warning(
            "subscription",
            "the push server refused our bearer token (IMGBENCH_TOKEN)",
            protocol=protocol,
            target=target,
            error=detail,
        )

    def _unreachable(self, protocol: str, target: str, exc: BaseException) -> None:
        self.core.metrics.subscription_refusals.labels("unreachable").inc()
        self.core.warnings.warning(
            "subscription",
            "cannot reach the push server",
            protocol=protocol,
            target=target,
            error=str(exc),
        )


def _parse(body: bytes, *, tls: bool = False) -> tuple[str, str, str]:
    """``(protocol, target, traceparent)`` of a subscription request; ValueError says why.

    With TLS on, a WebSocket target must be ``wss://`` (never a silent downgrade)."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise ValueError("body must be a JSON object")
    protocol, target = obj.get("protocol"), obj.get("target")
    traceparent = obj.get("traceparent", "")
    if protocol not in ("websocket", "grpc"):
        raise ValueError("protocol must be 'websocket' or 'grpc'")
    if not isinstance(target, str) or not isinstance(traceparent, str) or len(target) > 300:
        raise ValueError("target and traceparent must be strings (target <= 300 characters)")
    if protocol == "websocket":
        parts = urlsplit(target)
        scheme = "wss" if tls else "ws"
        if parts.scheme != scheme or parts.path != WS_PUSH_PATH or not parts.hostname:
            raise ValueError(f"a WebSocket target is {scheme}://HOST:PORT{WS_PUSH_PATH}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"bad port in {target!r}") from exc
    else:
        host, sep, port = target.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("a gRPC target is HOST:PORT")
    if len(traceparent) > 128:
        raise ValueError("traceparent is too long")
    return protocol, target, traceparent

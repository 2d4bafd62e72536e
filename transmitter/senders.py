"""Transport adapters behind one small interface.

A :class:`Sender` connects (retrying until a deadline), sends one encoded
message and returns the raw Ack bytes, and closes. Several ``send`` calls may
be awaited concurrently (the burst schedule); acks are matched to sends by
order of arrival on ordered transports (one WebSocket connection, one gRPC
stream), which is correct because the receiver answers each connection's
messages in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

import grpc
from opentelemetry.sdk.trace import TracerProvider
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)

from imgbench.config.settings import TransmitterSettings
from imgbench.errors import ImageLost, ReceiverRefused, ReceiverUnreachable
from imgbench.observe.logs import get_logger
from imgbench.security import guards
from imgbench.security.tls import Tls, tls_of
from imgbench.wire import HeadTemplate
from imgbench.wire.names import GRPC_HEADROOM, GRPC_SERVICE, SEND, SEND_STREAM, UPLOAD
from transmitter.mismatch import answers_plain_http, plain_to_tls, speaks_tls, tls_to_plain
from transmitter.prebuilt import OneBuffer

log = get_logger("transmitter")
#: Largest Ack frame accepted over WebSocket (acks are ~50 bytes).
ACK_LIMIT = 64 * 1024
#: WebSocket messages up to this size go out as one frame, as bare websockets sends
#: them (at 1 and 8 MiB that was faster than fragments and took less CPU). Larger ones
#: go out in :data:`WS_FRAGMENT_BYTES` fragments (memoryviews of the message, no copy):
#: websockets masks and copies a frame whole, and asyncio buffers the part the socket
#: did not take, so one 32-64 MiB frame made several image-sized copies that glibc
#: returned and faulted in again per send (64 MiB: ~700 page faults per MiB, time per
#: MiB 3-7x that at 8 MiB, README "Performance").
WS_ONE_FRAME_MAX = 16 * 1024 * 1024
#: Fragment size above :data:`WS_ONE_FRAME_MAX`: 4 MiB measured 1.2-1.4 ms/MiB at
#: 32 MiB and 1.7 at 64 MiB, 256 KiB fragments 2.0-3.8 and 1.9-2.0 (no page faults either
#: way; single quick runs, load ~3).
WS_FRAGMENT_BYTES = 4 * 1024 * 1024

#: One encoded message: ImageMessage bytes, a json-mode text, or ImageMessage
#: bytes as ``(head, data)`` parts (:func:`imgbench.wire.encode_image_parts`)
#: that a sender writes without joining them first when its transport allows;
#: or, in the gRPC chunked mode, the ImageChunk messages of one image.
Payload = bytes | str | tuple[bytes, bytes] | list[bytes]


def payload_size(payload: Payload) -> int:
    """Length of the message(s) on the wire (characters for a json-mode text)."""
    if isinstance(payload, tuple | list):
        return sum(len(part) for part in payload)
    return len(payload)


def largest_message(payload: Payload) -> int:
    """Length of the largest single transport message in ``payload``."""
    return (
        max(len(part) for part in payload) if isinstance(payload, list) else payload_size(payload)
    )


class Sender(Protocol):
    protocol: str
    mode: str

    async def connect(self, deadline: float, traceparent: str) -> None:
        """Connect, retrying with backoff until ``deadline`` (monotonic seconds)."""

    async def ready(self, deadline: float) -> None:
        """Before a timed send: reconnect if the peer closed the idle connection (the gRPC
        receiver's RECEIVER_GRPC_IDLE_TIMEOUT), so the reconnect is not timed. A no-op
        where a closed connection is a lost run instead (WebSocket, push)."""

    def prepare(self, template: HeadTemplate, data: bytes) -> Callable[[int], Payload]:
        """Before the send-start stamp: everything of one image's message but its send
        time; the function returned (called just after the stamp) writes the send
        time and returns the message to :meth:`send`."""

    async def send(self, payload: Payload) -> bytes:
        """Send one message and return its raw Ack. Raises ImageLost on failure."""

    async def close(self) -> None: ...


def transmitter_tls(settings: TransmitterSettings) -> Tls | None:
    """The transmitter's TLS (None when off); it listens in push and service mode."""
    server = settings.workload.direction == "push" or settings.service.serve
    return tls_of(settings.security, server=server)


def make_sender(
    protocol: str,
    settings: TransmitterSettings,
    tracing: TracerProvider | None,
    refused: guards.Refused | None = None,
) -> Sender:
    """``refused(transport)``: a push server refused a client without the token."""
    if settings.workload.direction == "push":
        # The transmitter as the server (imported here: transmitter.push builds on this module).
        from transmitter.push import make_push_sender

        return make_push_sender(protocol, settings, tracing, refused)
    if protocol == "websocket":
        return WebSocketSender(settings)
    return GrpcSender(settings, tracing)


class _OrderedAcks:
    """Futures for acks that arrive in send order."""

    def __init__(self) -> None:
        self.waiting: deque[asyncio.Future[bytes]] = deque()

    def expect(self) -> asyncio.Future[bytes]:
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.waiting.append(fut)
        return fut

    def deliver(self, ack: bytes) -> None:
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_result(ack)
                return

    def fail(self, exc: BaseException) -> None:
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(exc)


async def send_ws_acked(
    conn: ClientConnection | ServerConnection,
    lock: asyncio.Lock,
    acks: _OrderedAcks,
    payload: Payload,
    peer: str,
    buffers: OneBuffer,
) -> bytes:
    """Send one image message over a WebSocket and return its Ack bytes.

    The same framing for uploads and pushes, and the bare library's: one frame per
    message up to :data:`WS_ONE_FRAME_MAX`, fragments above it. A ``(head, data)``
    pair is sent as the one ``bytes`` object ``buffers`` makes of it (the image laid
    out once per image, :mod:`transmitter.prebuilt`), so no copy of the image is made
    per send beyond websockets' own masking. (Messages up to 16 MiB used to go out in
    256 KiB fragments too: at 1 and 8 MiB that was slower than one frame and mostly
    cost more CPU: README "Performance", "One frame, a smaller timed window".) The ack
    future is registered and the message written under ``lock``, so acks are matched
    in send order. ``peer`` names the other side in the ImageLost message
    ("connection", "subscriber").
    """
    assert not isinstance(payload, list), "chunked uploads are a gRPC mode"
    message = buffers.message(*payload) if isinstance(payload, tuple) else payload
    frames: bytes | str | list[memoryview] = message
    if isinstance(message, bytes) and len(message) > WS_ONE_FRAME_MAX:
        view = memoryview(message)
        frames = [view[i : i + WS_FRAGMENT_BYTES] for i in range(0, len(view), WS_FRAGMENT_BYTES)]
    async with lock:
        fut = acks.expect()
        try:
            await conn.send(frames)
        except ConnectionClosed as exc:
            fut.cancel()
            raise ImageLost(f"WebSocket {peer} closed while sending: {exc}") from exc
    return await fut


class WebSocketSender:
    protocol = "websocket"

    def __init__(self, settings: TransmitterSettings) -> None:
        self.mode = settings.workload.ws_mode
        path = "/v1/images/json" if self.mode == "json" else "/v1/images"
        self._tls = transmitter_tls(settings)
        scheme = "wss" if self._tls is not None else "ws"
        self.url = f"{scheme}://{settings.target.receiver_host}:{settings.target.ws_port}{path}"
        self.settings = settings
        self._conn: ClientConnection | None = None
        self._acks = _OrderedAcks()
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._buffers = OneBuffer(settings.transport.max_message_bytes)

    async def connect(self, deadline: float, traceparent: str) -> None:
        delay = 0.1
        headers = guards.headers(self.settings.security.token)
        if traceparent:
            headers["traceparent"] = traceparent
        while True:
            try:
                self._conn = await connect(
                    self.url,
                    ssl=self._tls.client_context() if self._tls is not None else None,
                    max_size=ACK_LIMIT,  # only acks come back
                    compression="deflate" if self.settings.workload.compression else None,
                    additional_headers=headers or None,
                    open_timeout=max(0.1, min(10.0, deadline - time.monotonic())),
                    proxy=None,
                    write_limit=self.settings.transport.ws_write_limit,
                    ping_interval=20,
                    ping_timeout=60,
                )
                break
            except InvalidStatus as exc:
                if exc.response.status_code == 401:  # not transient: no retry
                    raise ReceiverRefused(
                        f"the WebSocket receiver at {self.url} refused the connection (HTTP 401):"
                        " missing or wrong bearer token (IMGBENCH_TOKEN)"
                    ) from exc
                delay = await self._retry(exc, delay, deadline)
            except ssl.SSLError as exc:  # a certificate or TLS mismatch does not heal
                await self._mismatch(exc)
                raise ReceiverUnreachable(
                    f"TLS with the WebSocket receiver at {self.url} failed: {tls_reason(exc)}"
                ) from exc
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                await self._mismatch(exc)
                delay = await self._retry(exc, delay, deadline)
        self._reader = asyncio.create_task(self._read())

    async def _mismatch(self, exc: Exception) -> None:
        """Stop at once (ReceiverUnreachable) when the attempt failed because one side
        speaks TLS and the other not: asked of the port (:mod:`transmitter.mismatch`)
        only after a failure that could be one (a refused port cannot)."""
        host, port = self.settings.target.receiver_host, self.settings.target.ws_port
        what = f"the WebSocket receiver at {self.url}"
        if isinstance(exc, ConnectionRefusedError | InvalidStatus):
            return
        if self._tls is None:
            # A TLS listener closes on the plain-text handshake without a byte.
            if isinstance(exc, InvalidMessage | ConnectionResetError) and await speaks_tls(
                host, port
            ):
                raise ReceiverUnreachable(plain_to_tls(what)) from exc
        elif not isinstance(exc, ssl.SSLCertVerificationError) and await answers_plain_http(
            host, port
        ):
            raise ReceiverUnreachable(tls_to_plain(what)) from exc

    async def _retry(self, exc: Exception, delay: float, deadline: float) -> float:
        """Sleep before the next attempt (the next delay), or give up at the deadline."""
        if time.monotonic() + delay > deadline:
            why = str(exc) or type(exc).__name__
            if self._tls is not None and isinstance(exc, ConnectionResetError):
                why += " during the TLS handshake (is the receiver serving TLS?)"
            elif isinstance(exc, InvalidStatus) and exc.response.body:
                # The receiver says why, e.g. 503: too many connections (the setting).
                why += f" ({exc.response.body.decode(errors='replace').strip()[:200]})"
            elif self._tls is None and isinstance(exc, InvalidMessage):
                why += f" ({_PLAIN_HINT})"
            elif self._tls is not None and isinstance(exc.__cause__, EOFError):
                # TLS 1.3: a server that wants a client certificate refuses it after the
                # client has finished its handshake, by closing.
                why += (
                    " (closed right after the TLS handshake: does the receiver require a"
                    " client certificate? IMGBENCH_TLS_CLIENT_AUTH)"
                )
            raise ReceiverUnreachable(
                f"cannot connect to the WebSocket receiver at {self.url}: {why}"
            ) from exc
        log.info("receiver not reachable yet, retrying", url=self.url, error=str(exc),
                 retry_in_s=delay)  # fmt: skip
        await asyncio.sleep(delay)
        return min(delay * 2, 2.0)

    async def _read(self) -> None:
        assert self._conn is not None
        try:
            async for message in self._conn:
                if isinstance(message, bytes):
                    self._acks.deliver(message)
        except ConnectionClosed:
            pass
        code, why = self._conn.close_code, self._conn.close_reason
        self._acks.fail(
            ImageLost(f"WebSocket connection closed (code {code} {why!r}) before the ack arrived")
        )

    async def ready(self, deadline: float) -> None:
        """Nothing to do: the receiver does not close an open WebSocket connection."""

    def prepare(self, template: HeadTemplate, data: bytes) -> Callable[[int], Payload]:
        return self._buffers.ready(template, data)

    async def send(self, payload: Payload) -> bytes:
        assert self._conn is not None, "connect() first"
        return await send_ws_acked(
            self._conn, self._lock, self._acks, payload, "connection", self._buffers
        )

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        if self._reader is not None:
            await self._reader


class GrpcSender:
    protocol = "grpc"

    def __init__(self, settings: TransmitterSettings, tracing: TracerProvider | None) -> None:
        self.mode = settings.workload.grpc_mode
        self.target = f"{settings.target.receiver_host}:{settings.target.grpc_port}"
        self.settings = settings
        self._tracing = tracing
        self._tls = transmitter_tls(settings)
        #: The token in every call's metadata (none without a token).
        self._metadata = guards.metadata(settings.security.token) or None
        self._channel: grpc.aio.Channel | None = None
        self._stream: _GrpcStream | None = None
        self._unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] | None = None
        #: Reused only once nothing holds it: a stream's request iterator holds the
        #: previous message until the next one is queued.
        self._buffers = OneBuffer(
            settings.transport.max_message_bytes, spares=2 if self.mode == "stream" else 1
        )

    async def connect(self, deadline: float, traceparent: str) -> None:
        limit = self.settings.transport.max_message_bytes + GRPC_HEADROOM
        interceptors = None
        s = self.settings
        if self._tracing is not None and s.observe.telemetry and s.observe.grpc_instrumentation:
            from opentelemetry.instrumentation.grpc import aio_client_interceptors

            interceptors = aio_client_interceptors(tracer_provider=self._tracing)  # type: ignore[no-untyped-call]
        self._channel = open_channel(
            self.target,
            self._tls,
            options=[
                ("grpc.max_send_message_length", limit),
                ("grpc.max_receive_message_length", limit),
                # Compose may start us before the receiver: retry quickly, not after 1-120 s.
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 2000),
                *s.transport.grpc_options(),
            ],
            compression=grpc.Compression.Gzip if self.settings.workload.compression else None,
            interceptors=interceptors,
        )
        try:
            await wait_ready(
                self._channel,
                deadline,
                f"the gRPC receiver at {self.target}",
                hint=f" ({_FULL_HINT})"
                if self._tls is not None
                else f" ({_PLAIN_HINT}; {_FULL_HINT})",
                probe=(self._metadata or ()) if self._tls is not None else None,
                address=(s.target.receiver_host, s.target.grpc_port),
            )
        except ReceiverUnreachable:
            await self._channel.close(None)
            raise
        # Made once per connection, as the bare pair does: not inside each timed window.
        self._unary = self._channel.unary_unary(SEND, None, None)
        if self.mode == "stream":
            self._stream = _GrpcStream(self._channel, self._metadata)

    async def ready(self, deadline: float) -> None:
        """Reconnect now if the receiver closed the connection while no call was in
        progress (RECEIVER_GRPC_IDLE_TIMEOUT shorter than the pause): grpc would
        otherwise reconnect inside the next call, i.e. inside its timed window."""
        assert self._channel is not None, "connect() first"
        if self._channel.get_state() != grpc.ChannelConnectivity.READY:
            await wait_ready(self._channel, deadline, f"the gRPC receiver at {self.target}")

    def prepare(self, template: HeadTemplate, data: bytes) -> Callable[[int], Payload]:
        return self._buffers.ready(template, data)

    async def send(self, payload: Payload) -> bytes:
        assert self._channel is not None, "connect() first"
        if isinstance(payload, list):  # chunked: one client stream per image
            upload = self._channel.stream_unary(UPLOAD, None, None)
            try:
                chunked_ack: bytes = await upload(
                    iter(payload),
                    timeout=self.settings.workload.image_timeout,
                    metadata=self._metadata,
                )
            except grpc.aio.AioRpcError as exc:
                raise _rpc_error(exc) from exc
            return chunked_ack
        if isinstance(payload, tuple):
            payload = self._one_buffer(*payload)
        assert isinstance(payload, bytes)
        if self._stream is not None:
            return await self._stream.send(payload)
        assert self._unary is not None
        try:
            ack: bytes = await self._unary(
                payload, timeout=self.settings.workload.image_timeout, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as exc:
            raise _rpc_error(exc) from exc
        return ack

    def _one_buffer(self, head: bytes, data: bytes) -> bytes:
        """The ImageMessage as the one ``bytes`` object grpcio takes, without copying ``data``.

        The image is laid out once per image (:mod:`transmitter.prebuilt`); only
        the header is written per send. Falls back to joining (a copy) when there
        is no data, the header is unusually long, or the padded message would
        exceed the message limit.
        """
        return self._buffers.message(head, data)

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()
        if self._channel is not None:
            await self._channel.close(None)


class _GrpcStream:
    """One bidirectional stream per run: each message written with ``call.write`` (as the
    bare grpcio pair writes it, from the sending task, under a lock so that concurrent
    sends of a burst take turns), acks read by a task of their own."""

    def __init__(
        self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] | None
    ) -> None:
        self._acks = _OrderedAcks()
        self._lock = asyncio.Lock()
        self._call = channel.stream_stream(SEND_STREAM, None, None)(metadata=metadata)  # type: ignore[call-arg]  # write()/read() style
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for ack in self._call:
                self._acks.deliver(ack)
            error: ImageLost | ReceiverRefused = ImageLost(
                "gRPC stream ended before the ack arrived"
            )
        except grpc.aio.AioRpcError as exc:
            error = _rpc_error(exc)  # a refusal (e.g. UNAUTHENTICATED) or a loss
        self._acks.fail(error)

    async def send(self, payload: bytes) -> bytes:
        if self._reader.done():
            raise ImageLost("gRPC stream is closed")
        async with self._lock:
            fut = self._acks.expect()
            try:
                await self._call.write(payload)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                # The call has ended: its reader fails every waiting ack with the
                # call's status (a refusal such as UNAUTHENTICATED, or a loss).
                await asyncio.wait({self._reader}, timeout=10)
                if not fut.done():
                    fut.set_exception(ImageLost("gRPC stream ended while sending"))
        return await fut

    async def close(self) -> None:
        async with self._lock:
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await self._call.done_writing()
        try:
            await asyncio.wait_for(self._reader, 10)
        except TimeoutError:
            self._call.cancel()


#: Status codes by which the receiver refuses a message on purpose (with a reason).
REFUSALS: Final = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)


#: A method no receiver serves: asked once, only when the channel cannot connect,
#: to learn why (grpcio's connectivity state says only TRANSIENT_FAILURE).
_NO_METHOD: Final = f"/{GRPC_SERVICE}/WhyNotConnected"
#: Words of a grpc core error that say the TLS handshake failed (not a refused port).
_TLS_FAILURE: Final = ("handshake", "ssl", "certificate", "tls")


def open_channel(
    target: str,
    tls: Tls | None,
    *,
    options: list[tuple[str, int]],
    compression: grpc.Compression | None = None,
    interceptors: object = None,
) -> grpc.aio.Channel:
    """A secure channel with the process's TLS credentials, else an insecure one."""
    if tls is not None:
        return grpc.aio.secure_channel(
            target,
            tls.grpc_channel_credentials(),
            options=options,
            compression=compression,
            interceptors=interceptors,  # type: ignore[arg-type]
        )
    return grpc.aio.insecure_channel(
        target,
        options=options,
        compression=compression,
        interceptors=interceptors,  # type: ignore[arg-type]
    )


async def wait_ready(
    channel: grpc.aio.Channel,
    deadline: float,
    what: str,
    hint: str = "",
    probe: tuple[tuple[str, str], ...] | None = None,
    address: tuple[str, int] | None = None,
) -> None:
    """Until ``channel`` is READY (retrying, grpc's backoff) or ``deadline``.

    A failed TLS handshake does not heal by retrying: on a TLS channel (``probe`` is
    not None: the call metadata, the token's, so a call that does get through is not
    counted as a stranger's), when the channel falls to TRANSIENT_FAILURE, one call to a
    method nobody serves fetches grpc core's reason, and a TLS failure ends the wait at
    once (as websockets' does), with that reason; a reply in plain text (OpenSSL's
    WRONG_VERSION_NUMBER) says the receiver does not speak TLS. Nor does a plain-text
    channel to a TLS listener heal: with ``address`` (the channel's host and port), a
    plain-text channel's TRANSIENT_FAILURE asks the port whether it speaks TLS
    (:func:`transmitter.mismatch.speaks_tls`) and ends the wait at once if so.
    """
    while True:
        state = channel.get_state(try_to_connect=True)
        if state == grpc.ChannelConnectivity.READY:
            return
        if state == grpc.ChannelConnectivity.TRANSIENT_FAILURE and probe is not None:
            reason = await _failure_reason(channel, probe)
            if "WRONG_VERSION_NUMBER" in reason:
                raise ReceiverUnreachable(tls_to_plain(what))
            if any(word in reason.lower() for word in _TLS_FAILURE):
                raise ReceiverUnreachable(f"TLS with {what} failed: {_tls_hint(reason)}")
        elif (
            state == grpc.ChannelConnectivity.TRANSIENT_FAILURE
            and address is not None
            and await speaks_tls(*address)
        ):
            raise ReceiverUnreachable(plain_to_tls(what))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            await asyncio.wait_for(channel.wait_for_state_change(state), remaining)
        except TimeoutError:
            break
    raise ReceiverUnreachable(
        f"cannot connect to {what}: not ready before the connect deadline{hint}"
    )


async def _failure_reason(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> str:
    try:
        await channel.unary_unary(_NO_METHOD, None, None)(
            b"", timeout=5, wait_for_ready=False, metadata=metadata or None
        )
    except grpc.aio.AioRpcError as exc:
        return str(exc.details() or exc.code().name)
    return ""


def _tls_hint(details: str) -> str:
    """grpc core's handshake error, shortened, with the setting to check."""
    start = details.lower().find("handshake failed")
    text = details[start:] if start >= 0 else details
    text = text.removesuffix(": OK").strip()
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"cannot verify the receiver's certificate ({text}); " + _CA_HINT
    return f"{text} (is the receiver serving TLS?)"


#: Said when a plain-text client gets no answer: the receiver may be speaking TLS.
_PLAIN_HINT: Final = "if the receiver serves TLS, set IMGBENCH_TLS or IMGBENCH_TLS_CA"
#: grpc core closes connections beyond the receiver's limit before any code could say why.
_FULL_HINT: Final = (
    "or the receiver already serves RECEIVER_MAX_CONNECTIONS connections: it closes further ones"
)
_CA_HINT: Final = (
    "IMGBENCH_TLS_CA must be the CA that signed it (or the system store must trust it)"
)


def tls_reason(exc: ssl.SSLError) -> str:
    """One line for a failed TLS handshake, with the setting to check."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"cannot verify the receiver's certificate ({exc.verify_message}); {_CA_HINT}"
    return f"{exc.reason or exc} (is the receiver serving TLS, and does it accept TLS 1.3?)"


def _rpc_error(exc: grpc.aio.AioRpcError) -> ImageLost | ReceiverRefused:
    """A refusal (the receiver said why) or a loss (deadline, connection gone)."""
    text = f"gRPC {exc.code().name}: {exc.details()}"
    return ReceiverRefused(text) if exc.code() in REFUSALS else ImageLost(text)

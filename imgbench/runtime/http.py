"""A minimal asyncio HTTP/1.1 server and client for the services' small APIs.

Scope: ``/healthz``, ``/metrics``, and a few JSON endpoints. One request per
connection (``Connection: close``), bounded header and body sizes, a read
timeout, and errors answered with a status instead of an exception. It exists
so that neither service needs a web framework for four endpoints.

Security (README "Security"): with an ``ssl.SSLContext`` the server speaks
HTTPS only (TLS 1.3, :mod:`imgbench.security.tls`); with a token, every route
but :data:`OPEN_ROUTES` answers 401 unless the request carries
``Authorization: Bearer <token>`` (:mod:`imgbench.security.guards`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import re
import ssl
import threading
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import CollectorRegistry

from imgbench.observe import exposition
from imgbench.observe.logs import get_logger
from imgbench.runtime import resources
from imgbench.security.guards import CHALLENGE, REFUSAL, Refused
from imgbench.security.token import authorized, bearer

MAX_HEAD: Final = 16 * 1024
MAX_BODY: Final = 1024 * 1024
_REASONS: Final = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
#: A header field name (RFC 9110 section 5.1): no spaces, no separators.
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

log = get_logger("imgbench.runtime.http")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    #: A large body in pieces, written one after the other (no joining copy); used
    #: instead of ``body`` when not empty.
    parts: tuple[bytes, ...] = ()
    #: Further header lines (name, value).
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def length(self) -> int:
        return sum(map(len, self.parts)) if self.parts else len(self.body)

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(obj).encode() + b"\n", "application/json")

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode())


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """``GET /metrics``: Prometheus text, or OpenMetrics (with exemplars) when accepted.

    Rendered by :func:`imgbench.observe.exposition.render` (prometheus_client's
    formats, at a fraction of its encoder's CPU: the render holds the GIL while the
    service's loop measures)."""

    async def handle(request: Request) -> Response:
        body, content_type = exposition.render(registry, request.headers.get("accept", ""))
        return Response(200, body, content_type)

    return handle


#: Routes served on the HTTP thread itself (their handlers are thread-safe); every
#: other route's handler runs on the event loop that started the server.
THREAD_SAFE_ROUTES: Final = frozenset({"/metrics"})
#: Routes served without the token: liveness and metrics reveal no run data and
#: change nothing (Prometheus and orchestrators' probes need no secret).
OPEN_ROUTES: Final = frozenset({"/healthz", "/metrics"})


class HttpServer:
    """Routes ``(METHOD, pattern)`` to handlers; patterns may contain ``{name}``.

    The server runs on a thread of its own with its own event loop, so that the
    CPU it costs (accepting, parsing, rendering ``/metrics`` for every Prometheus
    scrape, writing, and the kernel's work for those sockets) is that thread's CPU
    time, which :mod:`imgbench.runtime.resources` subtracts from the run's CPU
    figures: a scrape is not transport work. Handlers of ``thread_safe`` patterns
    run on that thread; the others are handed to the event loop that called
    :meth:`start` (they touch its state) and their CPU stays in the figures.
    """

    def __init__(
        self,
        routes: dict[tuple[str, str], Handler],
        host: str,
        port: int,
        *,
        read_timeout: float,
        thread_safe: Collection[str] = THREAD_SAFE_ROUTES,
        on_refusal: Callable[[int], None] | None = None,
        tls: ssl.SSLContext | None = None,
        token: str | None = None,
        refused: Refused | None = None,
        open_routes: Collection[str] = OPEN_ROUTES,
        max_connections: int | None = None,
    ) -> None:
        """``on_refusal(status)`` is called (on the HTTP thread) for every answer >= 400.
        ``tls``: serve HTTPS only. ``token``: required on every route but
        ``open_routes``; ``refused("http")`` is called for each request refused (401).
        ``read_timeout``: seconds for the TLS handshake and the whole request (then
        408; a TLS handshake not done by then is closed), a setting of each service
        (RECEIVER_HANDSHAKE_TIMEOUT, TRANSMITTER_HANDSHAKE_TIMEOUT). ``max_connections``:
        connections served at once; a further one is answered 503 at once, without
        reading it (None: no limit)."""
        self._routes = [
            (
                method,
                re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pat) + "$"),
                h,
                pat in thread_safe,
                pat in open_routes,
            )
            for (method, pat), h in routes.items()
        ]
        self._tls = tls
        self._token = token
        self._refused = refused
        self._host = host
        self._port = port
        self._on_refusal = on_refusal
        self._read_timeout = read_timeout
        self._max_connections = max_connections
        #: Connections being served now (only touched on the HTTP thread).
        self._active = 0
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owner: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started with port 0)."""
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and serve on the HTTP thread; raises OSError when the port cannot be bound."""
        self._owner = asyncio.get_running_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._thread_main, args=(started,), name="imgbench-http", daemon=True
        )
        self._thread.start()
        await asyncio.wrap_future(started)

    async def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join, 10.0)

    def _thread_main(self, started: concurrent.futures.Future[None]) -> None:
        resources.register_api_thread()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(
                        self._serve,
                        self._host,
                        self._port,
                        limit=MAX_HEAD,
                        ssl=self._tls,
                        # A client that opens a connection and never finishes the TLS
                        # handshake is dropped after this long (as a slow request).
                        ssl_handshake_timeout=(
                            self._read_timeout if self._tls is not None else None
                        ),
                    )
                )
            except BaseException as exc:
                started.set_exception(exc)
                return
            started.set_result(None)
            loop.run_forever()
            self._server.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            resources.retire_api_thread()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._active += 1
        try:
            if self._max_connections is not None and self._active > self._max_connections:
                # Refused without parsing: a flood of sockets costs one answer each. What
                # already arrived is read (briefly), so that closing does not reset the
                # connection before the client has read the 503.
                with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                    await asyncio.wait_for(reader.read(MAX_HEAD), 0.05)
                response = Response.text("too many connections\n", 503)
            else:
                try:
                    response = await asyncio.wait_for(self._handle(reader), self._read_timeout)
                except TimeoutError:
                    response = Response.text("request timeout\n", 408)
            if response.status >= 400 and self._on_refusal is not None:
                self._on_refusal(response.status)
            head = (
                f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}\r\n"
                f"Content-Type: {response.content_type}\r\n"
                f"Content-Length: {response.length}\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in response.headers)
                + "Connection: close\r\n\r\n"
            )
            if response.parts:
                writer.write(head.encode("latin-1"))
                for part in response.parts:
                    writer.write(part)
                    await writer.drain()
            else:
                writer.write(head.encode("latin-1") + response.body)
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the client went away; nothing to answer
        finally:
            self._active -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _authorized(self, headers: dict[str, str]) -> bool:
        return self._token is None or authorized(headers.get("authorization"), self._token)

    async def _handle(self, reader: asyncio.StreamReader) -> Response:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return Response.text("request head too large\n", 400)
        except asyncio.IncompleteReadError:
            return Response.text("incomplete request\n", 400)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return Response.text("malformed request line\n", 400)
        method, target, _ = parts
        headers: dict[str, str] = {}
        lengths: set[str] = set()
        for line in lines[1:]:
            if line:
                name, sep, value = line.partition(":")
                if not sep or not _TOKEN.fullmatch(name):
                    return Response.text("malformed header\n", 400)
                headers[name.lower()] = value.strip()
                if name.lower() == "content-length":
                    lengths.add(value.strip())
        # Serve a request only when its framing is unambiguous (RFC 9112 section 6):
        # Content-Length is digits and duplicates agree; no transfer coding is read.
        if "transfer-encoding" in headers:
            return Response.text("transfer-encoding is not supported\n", 501)
        raw_length = headers.get("content-length", "0")
        if len(lengths) > 1 or not (raw_length.isascii() and raw_length.isdigit()):
            return Response.text("bad content-length\n", 400)
        try:
            length = int(raw_length)
        except ValueError:  # more digits than int() converts
            return Response.text("bad content-length\n", 400)
        if length < 0 or length > MAX_BODY:
            return Response.text("body too large\n", 413)
        try:
            body = await reader.readexactly(length) if length else b""
        except asyncio.IncompleteReadError:  # fewer bytes than Content-Length said
            return Response.text("incomplete request\n", 400)
        path = target.split("?", 1)[0]
        allowed = False
        for route_method, pattern, handler, safe, is_open in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            if not is_open and not self._authorized(headers):
                if self._refused is not None:
                    self._refused("http")
                return Response(
                    401, (REFUSAL + "\n").encode(), headers=(("WWW-Authenticate", CHALLENGE),)
                )
            if route_method != method:
                allowed = True
                continue
            request = Request(method, path, headers, body, match.groupdict())
            try:
                if safe or self._owner is None:
                    return await handler(request)
                # The handler touches state of the owner's loop: run it there.
                future = asyncio.run_coroutine_threadsafe(handler(request), self._owner)
                return await asyncio.wrap_future(future)
            except Exception:
                log.exception("http handler failed", path=path)
                return Response.text("internal error\n", 500)
        return (
            Response.text("method not allowed\n", 405)
            if allowed
            else Response.text("not found\n", 404)
        )


async def request(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    timeout: float = 10.0,
    tls: ssl.SSLContext | None = None,
    token: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request; returns ``(status, headers, body)``. Raises OSError/TimeoutError.

    ``tls``: HTTPS, verifying the server with this context (``ssl.SSLError``, an
    OSError, when that fails). ``token``: sent as ``Authorization: Bearer``.
    """

    async def go() -> tuple[int, dict[str, str], bytes]:
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        try:
            sent = dict(headers or {})
            if token:
                sent["Authorization"] = bearer(token)
            extra = "".join(f"{k}: {v}\r\n" for k, v in sent.items())
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
                + body
            )
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ")
        if len(status_line) < 2 or not status_line[1].isdigit():
            # E.g. a TLS 1.3 server that refused our (missing) client certificate
            # after the handshake, or a server speaking something else.
            raise ConnectionError(f"no HTTP response from {host}:{port} ({raw[:40]!r})")
        status = int(status_line[1])
        hdrs = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            hdrs[name.strip().lower()] = value.strip()
        return status, hdrs, payload

    return await asyncio.wait_for(go(), timeout)


async def get_json(
    host: str,
    port: int,
    path: str,
    timeout: float = 10.0,
    *,
    tls: ssl.SSLContext | None = None,
    token: str | None = None,
) -> tuple[int, Any]:
    """GET ``path`` and decode the JSON body."""
    status, _, body = await request(host, port, "GET", path, timeout=timeout, tls=tls, token=token)
    return status, json.loads(body) if body else None

"""A minimal asyncio HTTP/1.1 server and client for the services' small APIs.

Scope: ``/healthz``, ``/metrics``, and a few JSON endpoints. One request per
connection (``Connection: close``), bounded header and body sizes, a read
timeout, and errors answered with a status instead of an exception. It exists
so that neither service needs a web framework for four endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from imgbench.observe.logs import get_logger

MAX_HEAD: Final = 16 * 1024
MAX_BODY: Final = 1024 * 1024
READ_TIMEOUT: Final = 10.0
_REASONS: Final = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

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

    @property
    def length(self) -> int:
        return sum(map(len, self.parts)) if self.parts else len(self.body)

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(obj).encode() + b"\n", "application/json")

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode())


Handler = Callable[[Request], Awaitable[Response]]


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """``GET /metrics``: Prometheus text, or OpenMetrics (with exemplars) when accepted."""

    async def handle(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(200, encoder(registry), content_type)

    return handle


class HttpServer:
    """Routes ``(METHOD, pattern)`` to handlers; patterns may contain ``{name}``."""

    def __init__(self, routes: dict[tuple[str, str], Handler], host: str, port: int) -> None:
        self._routes = [
            (method, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pat) + "$"), h)
            for (method, pat), h in routes.items()
        ]
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started with port 0)."""
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=MAX_HEAD
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                response = await asyncio.wait_for(self._handle(reader), READ_TIMEOUT)
            except TimeoutError:
                response = Response.text("request timeout\n", 400)
            head = (
                f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}\r\n"
                f"Content-Type: {response.content_type}\r\n"
                f"Content-Length: {response.length}\r\n"
                "Connection: close\r\n\r\n"
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
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

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
        for line in lines[1:]:
            if line:
                name, sep, value = line.partition(":")
                if not sep:
                    return Response.text("malformed header\n", 400)
                headers[name.strip().lower()] = value.strip()
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            return Response.text("bad content-length\n", 400)
        if length < 0 or length > MAX_BODY:
            return Response.text("body too large\n", 413)
        body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        allowed = False
        for route_method, pattern, handler in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            if route_method != method:
                allowed = True
                continue
            request = Request(method, path, headers, body, match.groupdict())
            try:
                return await handler(request)
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
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request; returns ``(status, headers, body)``. Raises OSError/TimeoutError."""

    async def go() -> tuple[int, dict[str, str], bytes]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
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
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            hdrs[name.strip().lower()] = value.strip()
        return status, hdrs, payload

    return await asyncio.wait_for(go(), timeout)


async def get_json(host: str, port: int, path: str, timeout: float = 10.0) -> tuple[int, Any]:
    """GET ``path`` and decode the JSON body."""
    status, _, body = await request(host, port, "GET", path, timeout=timeout)
    return status, json.loads(body) if body else None

"""The receiver process: start-up, serving, graceful shutdown.

``ReceiverServer.start()`` binds WebSocket, gRPC and HTTP (port 0 picks a free
port; :attr:`ReceiverServer.ports` tells which), ``stop(grace)`` stops
accepting, lets in-flight images finish for up to ``grace`` seconds, then
closes everything and flushes spans.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
from opentelemetry.sdk.trace import TracerProvider
from websockets.asyncio.server import Server

from imgbench import __version__
from imgbench.config.receiver_options import RECEIVER_OPTIONS
from imgbench.config.settings import ReceiverSettings
from imgbench.errors import ConfigError
from imgbench.observe.logs import get_logger
from imgbench.observe.metrics import ReceiverMetrics
from imgbench.observe.tracing import tracer_provider
from imgbench.runtime import resources
from imgbench.runtime.http import (
    THREAD_SAFE_ROUTES,
    HttpServer,
    Request,
    Response,
    metrics_handler,
)
from imgbench.runtime.lifecycle import Lifecycle, write_ready_file
from imgbench.security.guards import warn_clear_token
from imgbench.security.tls import tls_of
from receiver.core import ReceiverCore, record_json
from receiver.grpc_server import GrpcAdapter
from receiver.push import Subscriptions
from receiver.ws import WebSocketAdapter

log = get_logger("receiver")
SERVICE_NAME = "imgbench-receiver"


class ReceiverServer:
    def __init__(
        self,
        settings: ReceiverSettings,
        *,
        metrics: ReceiverMetrics | None = None,
        tracing: TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        # Read and checked now: a bad certificate or key stops the start-up (exit 2).
        self.tls = tls_of(settings, server=True)
        self.metrics = metrics if metrics is not None else ReceiverMetrics()
        self.tracer_provider = tracing if tracing is not None else tracer_provider(SERVICE_NAME)
        self.core = ReceiverCore(
            settings, self.metrics, self.tracer_provider.get_tracer("imgbench.receiver")
        )
        self.subscriptions = Subscriptions(self.core, self.tracer_provider)
        self.ws_adapter = WebSocketAdapter(self.core)
        self.grpc_adapter = GrpcAdapter(self.core, self.tracer_provider)
        self._ws: Server | None = None
        self._grpc: grpc.aio.Server | None = None
        self._http: HttpServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        """Bind the three ports; a port that cannot be bound is a :class:`ConfigError`
        naming its setting, and whatever was already listening is closed again."""
        try:
            await self._bind()
        except BaseException:
            await self._close_listeners()
            raise

    async def _bind(self) -> None:
        s = self.settings
        self._loop = asyncio.get_running_loop()
        with _binding("ws_port", s.bind, s.ws_port):
            self._ws = await self.ws_adapter.start(s.bind, s.ws_port)
        with _binding("grpc_port", s.bind, s.grpc_port):
            _probe_port(s.bind, s.grpc_port)
            self._grpc, grpc_port = await self.grpc_adapter.start(s.bind, s.grpc_port)
        self._http = HttpServer(
            {
                ("GET", "/healthz"): self._healthz,
                ("GET", "/metrics"): metrics_handler(self.metrics.registry),
                ("GET", "/runs"): self._runs,
                ("GET", "/runs/{run_id}"): self._run,
                ("GET", "/stats"): self._stats,
                ("POST", "/stats/reset-peak"): self._reset_peak,
                ("POST", "/v1/subscriptions"): self.subscriptions.request,
            },
            s.bind,
            s.http_port,
            # Served on the HTTP thread, so their CPU stays out of the run's CPU figures:
            # scrapes and the transmitter's /stats reads are not transport. /healthz is
            # not: its (tiny) handler runs on the service's loop, so a liveness probe
            # still fails when that loop is stuck.
            thread_safe=THREAD_SAFE_ROUTES | {"/stats", "/stats/reset-peak"},
            on_refusal=lambda status: self.metrics.http_refused("api", status),
            tls=self.tls.server_context() if self.tls is not None else None,
            token=s.token or None,
            refused=self._http_refused,
            read_timeout=s.handshake_timeout,
            max_connections=s.max_connections,
        )
        with _binding("http_port", s.bind, s.http_port):
            await self._http.start()
        self.ports = {
            "websocket": int(next(iter(self._ws.sockets)).getsockname()[1]),
            "grpc": grpc_port,
            "http": self._http.port,
        }
        self.core.ports = dict(self.ports)
        log.info(
            "receiver listening",
            bind=s.bind,
            **self.ports,
            max_message_bytes=s.max_message_bytes,
            tls=self.tls is not None,
            client_auth=s.tls_client_auth,
            token=bool(s.token),
            version=__version__,
        )
        warn_clear_token(s.token, self.tls is not None, s.bind, "RECEIVER_BIND")

    async def _close_listeners(self) -> None:
        """After a failed start: close what was bound (no grace, nothing was served)."""
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        if self._grpc is not None:
            await self._grpc.stop(None)
        if self._http is not None:
            await self._http.stop()
        self.tracer_provider.shutdown()

    async def stop(self, grace: float = 5.0) -> None:
        if self._ws is not None:
            self._ws.close()
        if self._grpc is not None:
            await self._grpc.stop(grace)
        if self._ws is not None:
            try:
                await asyncio.wait_for(self._ws.wait_closed(), grace)
            except TimeoutError:
                log.warning("websocket connections did not close within the grace period")
        await self.subscriptions.close()
        await self.core.drain()
        if self._http is not None:
            await self._http.stop()
        self.tracer_provider.force_flush()
        self.tracer_provider.shutdown()
        log.info("receiver stopped")

    def _http_refused(self, transport: str) -> None:
        """On the HTTP thread: count at once, log on the service's loop."""
        self.metrics.unauthenticated.labels(transport).inc()
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self.core.log_unauthenticated, transport)

    async def _healthz(self, _: Request) -> Response:
        return Response.json({"status": "ok", "service": SERVICE_NAME, "ports": self.ports})

    async def _stats(self, _: Request) -> Response:
        return Response.json(resources.snapshot())

    async def _reset_peak(self, _: Request) -> Response:
        return Response.json({"reset": resources.reset_peak_rss()})

    async def _runs(self, _: Request) -> Response:
        return Response.json({"run_ids": self.core.run_ids()})

    async def _run(self, request: Request) -> Response:
        """``GET /runs/<id>``: built slice by slice so the transports keep their timing."""
        run_id = request.params["run_id"]
        records = self.core.records(run_id)
        if not records:
            return Response.json({"error": "unknown run id"}, 404)
        parts = [b'{"run_id": ' + json.dumps(run_id).encode() + b', "protocols": [']
        for index, record in enumerate(records):
            if index:
                parts.append(b", ")
            await self.core.settle(record)  # a large run's figures, computed off the loop
            parts.extend(await record_json(record))
        parts.append(b"]}\n")
        return Response(200, parts=tuple(parts), content_type="application/json")


@contextlib.contextmanager
def _binding(field: str, host: str, port: int) -> Iterator[None]:
    """Turn a failed bind into one line naming the setting (exit 2), not a traceback."""
    try:
        yield
    except OSError as exc:  # asyncio: errno, and a long strerror repeating the address
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(option_label(field), f"cannot listen on {host}:{port}: {why}") from exc
    except RuntimeError as exc:  # grpc: "Failed to bind to address ..."
        if "bind" not in str(exc).lower():
            raise
        raise ConfigError(
            option_label(field), f"cannot listen on {host}:{port}: port in use or not bindable"
        ) from exc


def _probe_port(host: str, port: int) -> None:
    """Raise OSError if ``port`` is taken, before grpc core tries (it logs its own
    multi-line error to stderr and then only says "Failed to bind")."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
        probe.bind((host, port))


def option_label(field: str) -> str:
    """``ENV (--flag)`` of the receiver setting ``field``."""
    return next(o.label for o in RECEIVER_OPTIONS if o.name == field)


async def serve(settings: ReceiverSettings, ready_file: Path | None = None) -> None:
    """Run until SIGINT or SIGTERM, then shut down gracefully."""
    server = ReceiverServer(settings)

    async def start() -> None:
        await server.start()
        if ready_file is not None:
            write_ready_file(ready_file, {"pid": os.getpid(), **server.ports})

    await Lifecycle(start, server.stop).run()

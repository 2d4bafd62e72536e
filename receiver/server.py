"""The receiver process: start-up, serving, graceful shutdown.

``ReceiverServer.start()`` binds WebSocket, gRPC and HTTP (port 0 picks a free
port; :attr:`ReceiverServer.ports` tells which), ``stop(grace)`` stops
accepting, lets in-flight images finish for up to ``grace`` seconds, then
closes everything and flushes spans.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import grpc
from opentelemetry.sdk.trace import TracerProvider
from websockets.asyncio.server import Server

from imgbench import __version__
from imgbench.config.settings import ReceiverSettings
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
from receiver.core import ReceiverCore
from receiver.grpc_server import GrpcAdapter
from receiver.push import Subscriptions
from receiver.runs import record_json
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
        self.metrics = metrics if metrics is not None else ReceiverMetrics()
        self.tracer_provider = tracing if tracing is not None else tracer_provider(SERVICE_NAME)
        self.core = ReceiverCore(
            settings, self.metrics, self.tracer_provider.get_tracer("imgbench.receiver")
        )
        self.subscriptions = Subscriptions(self.core, self.tracer_provider)
        self._ws: Server | None = None
        self._grpc: grpc.aio.Server | None = None
        self._http: HttpServer | None = None
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        s = self.settings
        self._ws = await WebSocketAdapter(self.core).start(s.bind, s.ws_port)
        self._grpc, grpc_port = await GrpcAdapter(self.core, self.tracer_provider).start(
            s.bind, s.grpc_port
        )
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
        )
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
            version=__version__,
        )

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
            parts.extend(await record_json(record))
        parts.append(b"]}\n")
        return Response(200, parts=tuple(parts), content_type="application/json")


async def serve(settings: ReceiverSettings, ready_file: Path | None = None) -> None:
    """Run until SIGINT or SIGTERM, then shut down gracefully."""
    server = ReceiverServer(settings)

    async def start() -> None:
        await server.start()
        if ready_file is not None:
            write_ready_file(ready_file, {"pid": os.getpid(), **server.ports})

    await Lifecycle(start, server.stop).run()

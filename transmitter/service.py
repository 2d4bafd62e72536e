"""The transmitter as a one-shot command or a long-running service.

Service mode (``--serve``, used by docker compose): runs the comparison once
at start, then every ``RUN_INTERVAL_SECONDS`` (0 = only once), and serves
``GET /healthz``, ``GET /metrics``, ``POST /runs`` (start one now; 409 while
one is running) and ``GET /runs/latest`` (the last result as JSON) on
``TRANSMITTER_PORT``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from imgbench.config.resolve import override_workload
from imgbench.config.settings import TransmitterSettings
from imgbench.errors import ConfigError, RunError
from imgbench.measure.results import Comparison
from imgbench.observe.logs import get_logger
from imgbench.observe.metrics import TransmitterMetrics
from imgbench.observe.tracing import tracer_provider
from imgbench.report.document import figures
from imgbench.report.outputs import results_document
from imgbench.report.terminal import comparison_view
from imgbench.report.verdicts import verdicts
from imgbench.runtime import gcfreeze
from imgbench.runtime.http import HttpServer, Request, Response, metrics_handler
from imgbench.runtime.lifecycle import Lifecycle
from imgbench.security.guards import warn_clear_token
from transmitter.compare import run_comparison
from transmitter.runner import new_run_id
from transmitter.senders import transmitter_tls

log = get_logger("transmitter")
SERVICE_NAME = "imgbench-transmitter"


def _save(output: Path, comparison: Comparison) -> None:
    out = output / comparison.run_id
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(results_document(comparison), indent=2) + "\n", encoding="utf-8"
    )


def log_summary(comparison: Comparison) -> None:
    """One log event with the figures and verdicts as fields (no rendered table).

    ``figures`` is per label (:func:`imgbench.report.document.figures`: seconds,
    MB/s); ``verdicts`` the plain sentences. JSON logs keep them queryable.
    """
    log.info(
        "comparison summary",
        run_id=comparison.run_id,
        figures=figures(comparison),
        verdicts=[v.text for v in verdicts(comparison)],
    )


def print_summary(comparison: Comparison) -> None:
    """In a terminal, the one-shot run prints the headline and compact table."""
    if not sys.stdout.isatty():
        return
    from rich.console import Console

    Console().print(comparison_view(comparison), highlight=False)


def warn_clear_tokens(settings: TransmitterSettings) -> None:
    """Warn for every network address the token would cross in clear text."""
    tls, token = settings.security.tls_on, settings.security.token
    warn_clear_token(token, tls, settings.target.receiver_host, "RECEIVER_HOST")
    if settings.workload.direction == "push" and settings.push.push_host:
        warn_clear_token(token, tls, settings.push.push_host, "IMGBENCH_PUSH_HOST")
    if settings.service.serve:
        warn_clear_token(token, tls, settings.service.bind, "TRANSMITTER_BIND")


async def run_once(settings: TransmitterSettings) -> int:
    """Run one comparison against the configured receiver; 0 on success."""
    transmitter_tls(settings)  # a bad certificate, key or CA: exit 2 before anything runs
    warn_clear_tokens(settings)
    tracing = tracer_provider(SERVICE_NAME)
    gcfreeze.freeze_after_startup()  # start-up is done: out of the GC's way
    try:
        comparison = await run_comparison(settings, tracing=tracing, metrics=TransmitterMetrics())
    finally:
        tracing.force_flush()
        tracing.shutdown()
    log_summary(comparison)
    print_summary(comparison)
    _save(settings.output, comparison)
    return 0


class TransmitterService:
    def __init__(
        self,
        settings: TransmitterSettings,
        *,
        metrics: TransmitterMetrics | None = None,
        tracing: TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        # Read and checked now: a bad certificate or key stops the start-up (exit 2).
        tls = transmitter_tls(settings)
        self.metrics = metrics if metrics is not None else TransmitterMetrics()
        self.tracing = tracing if tracing is not None else tracer_provider(SERVICE_NAME)
        self.latest: dict[str, Any] | None = None
        self.current: asyncio.Task[None] | None = None
        self._http = HttpServer(
            {
                ("GET", "/healthz"): self._healthz,
                ("GET", "/metrics"): metrics_handler(self.metrics.registry),
                ("POST", "/runs"): self._start_run,
                ("GET", "/runs/latest"): self._latest,
            },
            settings.service.bind,
            settings.service.api_port,
            tls=tls.server_context() if tls is not None else None,
            token=settings.security.token or None,
            refused=self._refused,
            on_refusal=lambda status: self.metrics.http_refused("api", status),
            read_timeout=settings.service.api_handshake_timeout,
            max_connections=settings.service.api_max_connections,
        )

    @property
    def port(self) -> int:
        return self._http.port

    async def start(self) -> None:
        service = self.settings.service
        try:
            await self._http.start()
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ConfigError(
                "TRANSMITTER_PORT (--api-port)",
                f"cannot listen on {service.bind}:{service.api_port}: {why}",
            ) from exc
        log.info(
            "transmitter API listening",
            bind=self.settings.service.bind,
            port=self.port,
            tls=self.settings.security.tls_on,
            token=bool(self.settings.security.token),
        )
        warn_clear_tokens(self.settings)

    def _refused(self, transport: str) -> None:
        """On the HTTP thread: count (thread-safe) and log."""
        self.metrics.refused(transport)
        log.warning("API request refused: missing or wrong bearer token", transport=transport)

    async def stop(self) -> None:
        if self.current is not None and not self.current.done():
            self.current.cancel()
            await asyncio.gather(self.current, return_exceptions=True)
        await self._http.stop()
        self.tracing.force_flush()
        self.tracing.shutdown()

    def trigger(self, settings: TransmitterSettings | None = None) -> str | None:
        """Start a comparison now (with ``settings`` if given, else the service's);
        returns its run id, or None if one is running."""
        if self.current is not None and not self.current.done():
            return None
        run_id = new_run_id()
        self.current = asyncio.create_task(self._run(run_id, settings or self.settings))
        return run_id

    async def _run(self, run_id: str, settings: TransmitterSettings) -> None:
        self.metrics.runs_in_progress.set(1)
        try:
            comparison = await run_comparison(
                settings, tracing=self.tracing, metrics=self.metrics, run_id=run_id
            )
            self.latest = {"status": "ok", **results_document(comparison)}
            log_summary(comparison)
            _save(settings.output, comparison)
        except RunError as exc:
            self.latest = {"status": "failed", "run_id": run_id, "error": str(exc)}
            log.error("comparison failed", run_id=run_id, error=str(exc))
        except OSError as exc:
            self.latest = {"status": "failed", "run_id": run_id, "error": repr(exc)}
            log.error("comparison failed", run_id=run_id, error=repr(exc))
        finally:
            self.metrics.runs_in_progress.set(0)
            self.tracing.force_flush()

    async def loop(self) -> None:
        """Run at start, then every ``run_interval`` seconds (0 = once)."""
        while True:
            self.trigger()
            if self.current is not None:
                await asyncio.gather(self.current, return_exceptions=True)
            if self.settings.service.run_interval <= 0:
                return
            await asyncio.sleep(self.settings.service.run_interval)

    async def _healthz(self, _: Request) -> Response:
        running = self.current is not None and not self.current.done()
        return Response.json({"status": "ok", "service": SERVICE_NAME, "running": running})

    async def _start_run(self, request: Request) -> Response:
        """``POST /runs``: start a comparison; an optional JSON object body overrides
        workload settings for this run only, by field name (e.g. ``{"images": 20,
        "delay": 0}``; see ``RUN_OVERRIDES``). 400 names the setting that is unknown
        or invalid; 409 while a comparison runs."""
        settings = self.settings
        if request.body.strip():
            try:
                body = json.loads(request.body)
            except (ValueError, UnicodeDecodeError) as exc:
                return Response.json({"error": f"body is not JSON: {exc}"}, 400)
            if not isinstance(body, dict):
                return Response.json({"error": "body must be a JSON object"}, 400)
            try:
                settings = override_workload(self.settings, body)
            except ConfigError as exc:
                return Response.json({"error": str(exc), "setting": exc.setting}, 400)
        run_id = self.trigger(settings)
        if run_id is None:
            return Response.json({"error": "a comparison is already running"}, 409)
        return Response.json({"run_id": run_id, "status": "started"}, 202)

    async def _latest(self, _: Request) -> Response:
        if self.latest is None:
            running = self.current is not None and not self.current.done()
            return Response.json({"status": "running" if running else "none"}, 404)
        return Response.json(self.latest)


async def serve(settings: TransmitterSettings) -> None:
    """Service mode: API up, comparisons on schedule, until SIGINT/SIGTERM."""
    service = TransmitterService(settings)
    await Lifecycle(service.start, service.stop, background=service.loop).run()
    log.info("transmitter stopped")

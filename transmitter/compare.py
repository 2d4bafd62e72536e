"""``imgbench compare``: both protocols against one receiver, one result.

The receiver is the external one (``--external-receiver``) or, by default, a
local receiver process (sharing one event loop with the transmitter would make
each side's work show up in the other's figures), which binds free loopback
ports and reports them through a ready file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from imgbench import __version__
from imgbench.config.settings import TargetSettings, TransmitterSettings
from imgbench.errors import ReceiverUnreachable, RunError
from imgbench.measure.results import Comparison
from imgbench.observe.logs import get_logger
from imgbench.observe.metrics import TransmitterMetrics
from imgbench.runtime.lifecycle import READY_FILE_ENV
from transmitter.image import Image, load_image
from transmitter.runner import Harness, Progress, new_run_id, protocol_order
from transmitter.senders import make_sender

log = get_logger("transmitter")

#: What a child service inherits from our environment, and nothing else: where
#: programs and libraries are, the locale and time zone, and OpenTelemetry's own
#: configuration (``OTEL_*``: where spans go). Its settings arrive as flags, so a
#: stray ``RECEIVER_*`` or ``IMGBENCH_*`` variable in the caller's shell cannot
#: silently change what is measured on one side only.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH",
                 "VIRTUAL_ENV")  # fmt: skip


def child_env(extra: dict[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The explicit environment of a child service: :data:`INHERITED_ENV`, ``OTEL_*``
    variables, then ``extra``."""
    source = os.environ if environ is None else environ
    env = {k: source[k] for k in INHERITED_ENV if k in source}
    env.update({k: v for k, v in source.items() if k.startswith("OTEL_")})
    env.update(extra)
    return env


def receiver_argv(settings: TransmitterSettings, bind: str) -> list[str]:
    """``python -m receiver`` on ``bind``, free ports, with the transmitter's limits and
    telemetry choices (so both sides run with the same explicit configuration), and its
    TLS files (paths; the token goes through the environment, :func:`receiver_env`)."""
    tls = []
    security = settings.security
    if security.tls_on:
        for flag, path in (("--tls-cert", security.tls_cert), ("--tls-key", security.tls_key),
                           ("--tls-ca", security.tls_ca)):  # fmt: skip
            if path is not None:
                tls += [flag, str(path)]
        tls += ["--tls=true", f"--tls-client-auth={security.tls_client_auth}"]
    return [
        sys.executable,
        "-m",
        "receiver",
        "--bind",
        bind,
        "--port",
        "0",
        "--grpc-port",
        "0",
        "--http-port",
        "0",
        "--max-message-bytes",
        str(settings.transport.max_message_bytes),
        "--log-level",
        settings.observe.log_level,
        # The receiver follows the transmitter's telemetry choices, flags included.
        f"--telemetry={settings.observe.telemetry}",
        f"--grpc-instrumentation={settings.observe.grpc_instrumentation}",
        # Transport settings: the same on both sides, recorded with the result.
        f"--grpc-bdp-probe={settings.transport.grpc_bdp_probe}",
        f"--grpc-lookahead-bytes={settings.transport.grpc_lookahead_bytes}",
        f"--grpc-max-frame-size={settings.transport.grpc_max_frame_size}",
        f"--ws-write-limit={settings.transport.ws_write_limit}",
        f"--ws-max-queue={settings.transport.ws_max_queue}",
        *tls,
    ]


def receiver_env(settings: TransmitterSettings, extra: dict[str, str]) -> dict[str, str]:
    """:func:`child_env` plus the token, in the environment (never in argv: ps shows it)."""
    token = settings.security.token
    return child_env({**extra, "IMGBENCH_TOKEN": token} if token else extra)


def _read_ready(path: Path) -> dict[str, Any] | None:
    # A small local file, written then renamed by the receiver: never half-written.
    if not path.exists():
        return None
    info: dict[str, Any] = json.loads(path.read_text())
    return info


async def wait_ready(
    proc: asyncio.subprocess.Process, ready: Path, log_path: Path, timeout: float
) -> dict[str, int]:
    """Wait for a receiver's ready file; its ports (``websocket``, ``grpc``, ``http``, ``pid``).

    Raises :class:`ReceiverUnreachable` if it exits first or takes over ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while (info := _read_ready(ready)) is None:
        if proc.returncode is not None:
            raise ReceiverUnreachable(
                f"the receiver exited with code {proc.returncode}"
                f" before it was ready (see {log_path})"
            )
        if time.monotonic() > deadline:
            raise ReceiverUnreachable(
                f"the receiver was not ready within {timeout} s (see {log_path})"
            )
        await asyncio.sleep(0.05)
    return {k: int(info[k]) for k in ("websocket", "grpc", "http", "pid")}


@contextlib.asynccontextmanager
async def local_receiver(
    settings: TransmitterSettings, log_path: Path, timeout: float = 30.0
) -> AsyncIterator[dict[str, int]]:
    """Start ``python -m receiver`` on free loopback ports; yield its ports; stop it."""
    with tempfile.TemporaryDirectory(prefix="imgbench-") as tmp:
        ready = Path(tmp) / "ready.json"
        env = receiver_env(settings, {READY_FILE_ENV: str(ready), "IMGBENCH_LOG_FORMAT": "json"})
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log_file:
            proc = await asyncio.create_subprocess_exec(
                *receiver_argv(settings, "127.0.0.1"),
                env=env,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                yield await wait_ready(proc, ready, log_path, timeout)
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(proc.wait(), 15)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()


def environment() -> tuple[dict[str, str], dict[str, Any]]:
    """Library versions and host facts saved with every result."""
    versions = {"imgbench": __version__, "python": platform.python_version()}
    for dist in (
        "websockets",
        "grpcio",
        "protobuf",
        "prometheus-client",
        "opentelemetry-sdk",
        "structlog",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    host = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python_implementation": platform.python_implementation(),
    }
    return versions, host


async def run_comparison(
    settings: TransmitterSettings,
    *,
    tracing: TracerProvider,
    metrics: TransmitterMetrics,
    image: Image | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
    link: dict[str, Any] | None = None,
) -> Comparison:
    """Run every protocol ``settings.workload.repeat`` times against the configured receiver.

    ``link`` is the emulated link's record when this runs on a lab host
    (:mod:`transmitter.linked`), saved with the result.
    """
    work = settings.workload
    image = image if image is not None else load_image(work.image)
    run_id = run_id or new_run_id()
    versions, host = environment()
    comparison = Comparison(
        run_id=run_id,
        created_at=datetime.now(UTC).isoformat(),
        settings=settings.public(),
        versions=versions,
        host=host,
        image=image.describe(),
        link=link,
    )
    harness = Harness(settings, tracing.get_tracer("imgbench.transmitter"), metrics, progress)
    log.info(
        "comparison started",
        run_id=run_id,
        image=image.name,
        bytes=image.size,
        protocols=list(work.protocols),
        images=work.images,
        delay_s=work.delay,
        warmup=work.warmup,
        repeat=work.repeat,
    )
    planned = len(work.protocols) * work.repeat
    try:
        for repetition in range(work.repeat):
            for position, protocol in enumerate(protocol_order(work.protocols, repetition)):
                sender = make_sender(protocol, settings, tracing, metrics.refused)
                comparison.runs.append(
                    await harness.run_protocol(
                        sender, image, run_id, repetition=repetition, position=position
                    )
                )
    except RunError as exc:
        # Loud failure, but the protocol runs that completed are measurements: keep them.
        comparison.incomplete = (
            f"{len(comparison.runs)} of {planned} protocol runs completed; stopped by: {exc}"
        )
        raise ComparisonFailed(str(exc), [comparison]) from exc
    return comparison


class ComparisonFailed(RunError):
    """A comparison stopped part-way; ``comparisons`` holds what completed.

    The last comparison is marked :attr:`Comparison.incomplete`; the caller
    writes them (they are real measurements) and still exits non-zero.
    """

    def __init__(self, message: str, comparisons: list[Comparison]) -> None:
        super().__init__(message)
        self.comparisons = comparisons


@contextlib.asynccontextmanager
async def receiver_target(
    settings: TransmitterSettings, out_dir: Path
) -> AsyncIterator[TransmitterSettings]:
    """Settings aimed at the external receiver, or at a local one started for the block.

    With TLS asked for (``--tls``) and no certificate, a local receiver gets a
    throw-away CA and certificate (:mod:`imgbench.security.certs`), deleted afterwards.
    """
    if settings.compare.external:
        yield settings
        return
    with contextlib.ExitStack() as stack:
        if settings.security.tls_on and settings.security.tls_cert is None:
            settings = throwaway_tls(settings, Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="imgbench-tls-"))))  # fmt: skip
        async with local_receiver(settings, out_dir / "receiver.log") as ports:
            local = TargetSettings.loopback(ports)
            yield replace(settings, target=local)


def throwaway_tls(
    settings: TransmitterSettings, directory: Path, hosts: Sequence[str] = ()
) -> TransmitterSettings:
    """``settings`` with a fresh CA and a certificate for the loopback names (and ``hosts``)
    in ``directory`` (the receiver presents it; the transmitter verifies with the CA and,
    in push mode, presents the same certificate)."""
    from imgbench.security.certs import write_files

    files = write_files(directory, hosts, client_auth=settings.security.tls_client_auth)
    log.info("throw-away TLS certificate generated (no --tls-cert given)", directory=str(directory))
    return settings.updated(tls=True, tls_cert=files.cert, tls_key=files.key, tls_ca=files.ca)


async def compare_with_receiver(
    settings: TransmitterSettings,
    *,
    tracing: TracerProvider,
    metrics: TransmitterMetrics,
    out_dir: Path,
    progress: Progress | None = None,
    link: dict[str, Any] | None = None,
) -> Comparison:
    """Run the comparison against the external receiver (``settings.compare.external``)
    or a local one started for it; ``out_dir.name`` is the run id."""
    image = load_image(settings.workload.image)
    async with receiver_target(settings, out_dir) as target:
        return await run_comparison(
            target,
            tracing=tracing,
            metrics=metrics,
            image=image,
            progress=progress,
            run_id=out_dir.name,
            link=link,
        )


async def sweep_with_receiver(
    settings: TransmitterSettings,
    sizes: list[int],
    *,
    tracing: TracerProvider,
    metrics: TransmitterMetrics,
    out_dir: Path,
    progress: Progress | None = None,
    link: dict[str, Any] | None = None,
) -> list[Comparison]:
    """One comparison per image size, against one receiver (local unless external).

    The images are generated (:func:`imgbench.images.noise_png`): random-noise
    PNGs of exactly each size, so that neither transport is flattered by
    compressible content.
    """
    from imgbench.images import noise_png
    from imgbench.wire import digest

    results: list[Comparison] = []
    async with receiver_target(settings, out_dir) as target:
        for size in sizes:
            data = noise_png(size)
            image = Image(f"generated noise PNG, {size} bytes", data, digest(data), "image/png")
            try:
                results.append(
                    await run_comparison(
                        target,
                        tracing=tracing,
                        metrics=metrics,
                        image=image,
                        progress=progress,
                        run_id=f"{out_dir.name}-{size}",
                        link=link,
                    )
                )
            except ComparisonFailed as exc:
                raise ComparisonFailed(str(exc), results + exc.comparisons) from exc
    return results

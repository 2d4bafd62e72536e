"""Transport-independent handling of received images.

Contract of :meth:`ReceiverCore.handle`: the adapter passes the raw message
and the :class:`Stamp` it took *as soon as the message was complete*, before
any decoding; the core decodes and validates, verifies length and SHA-256,
records the measurement (metrics, span, run record) and returns the Ack bytes.
Nothing is written to disk inside that path; ``--save-dir`` writes happen
after the ack is returned.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Tracer

from imgbench import wire
from imgbench.config.settings import ReceiverSettings
from imgbench.errors import DuplicateImage, InvalidField, WireError
from imgbench.measure.results import NS, Sample, compute_figures
from imgbench.observe.logs import get_logger
from imgbench.observe.metrics import ReceiverMetrics
from imgbench.observe.tracing import context_from_traceparent
from imgbench.wire import Clock, ImageMeta

log = get_logger("receiver")

#: Payloads of this size or more are hashed in a worker thread so the event loop keeps
#: serving other connections meanwhile (hashlib releases the GIL).
THREAD_HASH_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Stamp:
    """Receive-complete time on both clocks; the message says which one counts."""

    monotonic_ns: int
    realtime_ns: int

    @classmethod
    def now(cls) -> Stamp:
        return cls(time.monotonic_ns(), time.time_ns())

    def on(self, clock: int) -> int:
        return self.monotonic_ns if clock == Clock.CLOCK_MONOTONIC else self.realtime_ns


@dataclass(frozen=True, slots=True)
class Assembled:
    """An image reassembled from ``Receiver.Upload`` chunks, already validated."""

    meta: ImageMeta
    data: bytes
    message_bytes: int


@dataclass
class RunRecord:
    """Everything received for one (run id, protocol, mode)."""

    run_id: str
    protocol: str
    mode: str
    repetition: int
    total: int
    samples: dict[int, Sample] = field(default_factory=dict)
    warmup: int = 0
    integrity_failures: int = 0
    completed_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        samples = [self.samples[k] for k in sorted(self.samples)]
        return {
            "run_id": self.run_id,
            "protocol": self.protocol,
            "mode": self.mode,
            "repetition": self.repetition,
            "total": self.total,
            "received": len(samples),
            "warmup_received": self.warmup,
            "integrity_failures": self.integrity_failures,
            "complete": self.completed_at is not None,
            "samples": [
                {
                    "sequence": s.sequence,
                    "scheduled_ns": s.scheduled_ns,
                    "send_ns": s.send_ns,
                    "receive_ns": s.receive_ns,
                    "transmission_s": s.transmission_s,
                    "image_bytes": s.image_bytes,
                    "checksum_ok": s.checksum_ok,
                }
                for s in samples
            ],
            "figures": compute_figures(samples).as_dict() if samples else None,
        }


class ReceiverCore:
    """Validation, measurement and bookkeeping shared by both transports."""

    def __init__(
        self, settings: ReceiverSettings, metrics: ReceiverMetrics, tracer: Tracer
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._tracer = tracer
        #: IMGBENCH_TELEMETRY=off: no spans, no per-image metrics (error counters stay).
        self._telemetry = settings.telemetry
        self._runs: OrderedDict[tuple[str, str, str, int], RunRecord] = OrderedDict()
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._background: set[asyncio.Task[None]] = set()

    # -- the one entry point ---------------------------------------------

    async def handle(
        self, raw: bytes | str | Assembled, stamp: Stamp, *, protocol: str, mode: str
    ) -> tuple[ImageMeta, bytes]:
        """Process one message; returns its metadata and the Ack bytes.

        Raises :class:`~imgbench.errors.WireError` (already counted) when the
        message is refused; the adapter turns it into its transport's error.
        """
        async with self._slots:
            if self._telemetry:
                self.metrics.in_flight.inc()
            try:
                return await self._handle(raw, stamp, protocol, mode)
            except WireError as exc:
                self.reject(protocol, exc)
                raise
            finally:
                if self._telemetry:
                    self.metrics.in_flight.dec()

    def log_disconnect(self, protocol: str, detail: str) -> None:
        """Log an abnormal end of a connection or stream (the caller counts it)."""
        log.warning("client disconnected abnormally", protocol=protocol, detail=detail)

    def reject(self, protocol: str, exc: WireError) -> None:
        """Count and log a refused message."""
        self.metrics.rejected.labels(protocol, exc.reason).inc()
        log.warning("message rejected", protocol=protocol, reason=exc.reason, detail=str(exc))

    async def _handle(
        self, raw: bytes | str | Assembled, stamp: Stamp, protocol: str, mode: str
    ) -> tuple[ImageMeta, bytes]:
        limit = self.settings.max_message_bytes
        data: bytes | memoryview  # a view into raw for binary messages: no copy
        if isinstance(raw, Assembled):
            meta, data, message_bytes = raw.meta, raw.data, raw.message_bytes
        elif isinstance(raw, str):
            meta, data = wire.decode_json_image(raw, max_bytes=limit, protocol=protocol, mode=mode)
        else:
            meta, data = wire.decode_image(raw, max_bytes=limit, protocol=protocol, mode=mode)
        if not isinstance(raw, Assembled):
            message_bytes = len(raw)
        receive_ns = stamp.on(meta.clock)
        record = self._record(meta)
        if not meta.warmup and meta.sequence in record.samples:
            raise DuplicateImage(f"sequence {meta.sequence} of run {meta.run_id} already received")

        if len(data) >= THREAD_HASH_BYTES:
            actual = await asyncio.to_thread(wire.digest, data)
        else:
            actual = wire.digest(data)
        checksum_ok = actual == meta.sha256
        transmission_ns = receive_ns - meta.start_ns
        labels = (protocol, mode)

        span = (
            self._tracer.start_span(
                "receive image",
                context=context_from_traceparent(meta.traceparent),
                start_time=stamp.realtime_ns,
                attributes={
                    "imgbench.protocol": protocol,
                    "imgbench.mode": mode,
                    "imgbench.run_id": meta.run_id,
                    "imgbench.sequence": meta.sequence,
                    "imgbench.warmup": meta.warmup,
                    "imgbench.bytes": len(data),
                    "imgbench.transmission_s": transmission_ns / NS,
                    "imgbench.checksum_ok": checksum_ok,
                },
            )
            if self._telemetry
            else trace.INVALID_SPAN
        )
        with trace.use_span(span, end_on_exit=True):
            if not checksum_ok:
                record.integrity_failures += 1
                self.metrics.integrity.labels(*labels).inc()
                span.set_status(trace.Status(trace.StatusCode.ERROR, "checksum mismatch"))
                log.warning(
                    "checksum mismatch",
                    protocol=protocol,
                    mode=mode,
                    run_id=meta.run_id,
                    sequence=meta.sequence,
                    bytes=len(data),
                )
            elif meta.warmup:
                record.warmup += 1
                if self._telemetry:
                    self.metrics.warmup.labels(*labels).inc()
            else:
                seconds = transmission_ns / NS
                if self._telemetry:
                    trace_id = format(span.get_span_context().trace_id, "032x")
                    self.metrics.transmission.labels(*labels).observe(
                        seconds, exemplar={"trace_id": trace_id}
                    )
                    self.metrics.images.labels(*labels).inc()
                    self.metrics.bytes.labels(*labels).inc(len(data))
                record.samples[meta.sequence] = Sample(
                    sequence=meta.sequence,
                    scheduled_ns=meta.start_ns,
                    send_ns=meta.send_time_ns,
                    receive_ns=receive_ns,
                    ack_ns=receive_ns,  # the transmitter records its own ack time
                    image_bytes=len(data),
                    message_bytes=message_bytes,
                    checksum_ok=True,
                )
                log.debug(
                    "image received",
                    protocol=protocol,
                    mode=mode,
                    run_id=meta.run_id,
                    sequence=meta.sequence,
                    bytes=len(data),
                    transmission_s=seconds,
                )
                if len(record.samples) == record.total:
                    self._complete(record)
        ack = wire.encode_ack(
            sequence=meta.sequence,
            receive_time_ns=receive_ns,
            bytes_received=len(data),
            checksum_ok=checksum_ok,
            transmission_ns=transmission_ns,
            warmup=meta.warmup,
        )
        if self.settings.save_dir is not None:
            self._save_later(meta, data)
        return meta, ack

    # -- runs ----------------------------------------------------------------

    def _record(self, meta: ImageMeta) -> RunRecord:
        key = (meta.run_id, meta.protocol, meta.mode, meta.repetition)
        record = self._runs.get(key)
        if record is None:
            record = RunRecord(meta.run_id, meta.protocol, meta.mode, meta.repetition, meta.total)
            self._runs[key] = record
            self._evict()
        elif record.total != meta.total:
            raise InvalidField(f"total changed from {record.total} to {meta.total} within a run")
        return record

    def _evict(self) -> None:
        """Keep at most ``max_runs`` run ids: completed runs go first, then the oldest.

        Evicting a run still in progress would lose its duplicate detection and
        its completion (the last-run gauges), so that only happens when every
        kept run is unfinished.
        """
        run_ids = list(dict.fromkeys(k[0] for k in self._runs))
        excess = len(run_ids) - self.settings.max_runs
        if excess <= 0:
            return
        unfinished = {k[0] for k, r in self._runs.items() if r.completed_at is None}
        finished = [rid for rid in run_ids if rid not in unfinished]
        victims = set((finished + [rid for rid in run_ids if rid in unfinished])[:excess])
        for key in [k for k in self._runs if k[0] in victims]:
            del self._runs[key]

    def _complete(self, record: RunRecord) -> None:
        record.completed_at = time.time()
        samples = [record.samples[k] for k in sorted(record.samples)]
        figures = compute_figures(samples)
        self.metrics.run_completed(
            record.protocol, record.mode, figures, [(s.sequence, s.transmission_s) for s in samples]
        )
        # The canonical log line of a run: the three figures in one place.
        log.info(
            "run completed",
            protocol=record.protocol,
            mode=record.mode,
            run_id=record.run_id,
            repetition=record.repetition,
            images=figures.images,
            total_transfer_s=round(figures.total_transfer_s, 6),
            cumulative_transmission_s=round(figures.cumulative_transmission_s, 6),
            median_transmission_s=round(figures.transmission.p50, 6),
            max_transmission_s=round(figures.transmission.max, 6),
            throughput_mb_s=round(figures.throughput_mb_s, 3),
            integrity_failures=record.integrity_failures,
        )

    def is_complete(self, meta: ImageMeta) -> bool:
        """Whether the protocol run ``meta`` belongs to has received all its images."""
        record = self._runs.get((meta.run_id, meta.protocol, meta.mode, meta.repetition))
        return record is not None and record.completed_at is not None

    def run(self, run_id: str) -> list[dict[str, Any]]:
        """Records of ``run_id`` (one per protocol/mode/repetition), oldest first; [] if unknown."""
        return [r.to_dict() for k, r in self._runs.items() if k[0] == run_id]

    def run_ids(self) -> list[str]:
        return list(dict.fromkeys(k[0] for k in self._runs))

    # -- saving --------------------------------------------------------------

    def _save_later(self, meta: ImageMeta, data: bytes | memoryview) -> None:
        assert self.settings.save_dir is not None
        kind = "warmup" if meta.warmup else "image"
        path = (
            self.settings.save_dir
            / meta.run_id
            / f"{meta.protocol}-{meta.mode}-{kind}-{meta.sequence:06d}.bin"
        )
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(_write, path, data))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for pending background writes (called on shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def error_ack(exc: WireError) -> bytes:
    """The Ack answering a refused message: ``error`` is ``"<reason>: <detail>"``."""
    return wire.encode_ack(
        sequence=0,
        receive_time_ns=0,
        bytes_received=0,
        checksum_ok=False,
        transmission_ns=0,
        warmup=False,
        error=f"{exc.reason}: {exc}",
    )


def _write(path: Path, data: bytes | memoryview) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)

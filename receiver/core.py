"""The receiver's edge: applies the sans-I/O step's events (metrics, spans, logs, saves).

Contract of :meth:`ReceiverCore.handle`: the adapter passes the raw message
and the :class:`Stamp` it took *as soon as the message was complete*, before
any decoding; :class:`receiver.step.ReceiverStep` decodes and validates,
verifies length and SHA-256, does the run bookkeeping and returns the Ack bytes
with the events that happened; this module records them (metrics, span, logs)
and is the only one that knows about telemetry. Nothing is written to disk
inside that path; ``--save-dir`` writes happen after the ack is returned.

Clock probes (contract revision 2, ``proto/README.md``) take the same entry
point and the same receive stamp (t2); they are answered at once, without
waiting for a slot or any hashing, with t3 read just before the reply is
serialised. The completed exchanges they echo are kept per run; the run's
clock estimate (:func:`imgbench.measure.clock.estimate_run`) corrects its
transmission times and refuses an image sent "in the future" (reason ``clock``).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import Tracer

from imgbench import wire
from imgbench.config.settings import ReceiverSettings
from imgbench.errors import WireError
from imgbench.measure.results import NS, Figures, Sample, compute_figures
from imgbench.observe.logs import LimitedWarnings, LogLimiter, debug_enabled, get_logger
from imgbench.observe.metrics import PER_IMAGE_SERIES, ReceiverMetrics, labels_of
from imgbench.observe.spans import SpanStarter, current, remote_parent
from imgbench.observe.tracing import span_attributes, span_kinds
from imgbench.runtime.resources import boot_id
from imgbench.wire import ImageMeta
from imgbench.wire.names import PUSH_MODE
from receiver.events import (
    Assembled,
    ClockEstimated,
    ClockEstimateRefused,
    Event,
    FiguresDue,
    ImageReceived,
    IntegrityFailed,
    Outcome,
    ProbeAnswered,
    Refused,
    RunCompleted,
    RunEvicted,
    SampleRecorded,
    SaveImage,
    Stamp,
    WarmupReceived,
)
from receiver.runs import RunRecord, _sample_dict, correct
from receiver.step import ReceiverStep

__all__ = ["ReceiverCore", "record_json", "save_path"]

log = get_logger("receiver")

#: Payloads of this size or more are hashed in a worker thread so the event loop keeps
#: serving other connections meanwhile (hashlib releases the GIL).
THREAD_HASH_BYTES = 1024 * 1024


def run_trace_ids() -> dict[str, str]:
    """``trace_id``/``span_id`` of the run span, when the connection carried its context.

    The WebSocket handshake and push subscriptions carry the run span's
    ``traceparent`` (bound as ``connection_traceparent``); gRPC uploads do not (no
    per-call metadata is added inside the timed window), so their run line carries
    ``run_id`` only. Without this the line would carry the last image's trace id.
    """
    value = str(structlog.contextvars.get_contextvars().get("connection_traceparent", ""))
    parts = value.split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
        return {"trace_id": parts[1], "span_id": parts[2]}
    return {}


class ReceiverCore:
    """The edge between the transports and :class:`~receiver.step.ReceiverStep`."""

    def __init__(
        self, settings: ReceiverSettings, metrics: ReceiverMetrics, tracer: Tracer
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._tracer = tracer
        #: The per-image spans, started without the SDK's per-span machinery (same spans).
        self._spans = SpanStarter(tracer)
        #: Semantic-convention attributes by (protocol, mode, server.port): fixed per endpoint.
        self._endpoint_attributes: dict[tuple[str, str, int | None], dict[str, str | int]] = {}
        #: IMGBENCH_TELEMETRY=off: no spans, no per-image metrics (error counters stay).
        self._telemetry = settings.telemetry
        self.step = ReceiverStep(settings, boot_id=boot_id())
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._background: set[asyncio.Task[None]] = set()
        #: Figures being computed off the loop, by ``id(record)`` (see :meth:`settle`).
        self._figures: dict[int, tuple[RunRecord, asyncio.Task[None]]] = {}
        #: Bound ports by protocol (set by the server once listening): ``server.port`` on spans.
        self.ports: dict[str, int] = {}
        #: Warnings a client can provoke at will go through this: a flood of bad input
        #: costs a few lines per window, and every line not written is counted.
        self.warnings = LimitedWarnings(
            log,
            LogLimiter(settings.log_burst, settings.log_window),
            lambda kind: metrics.log_suppressed.labels(kind).inc(),
        )

    # -- the one entry point ---------------------------------------------

    async def handle(
        self,
        raw: bytes | str | Assembled,
        stamp: Stamp,
        *,
        protocol: str,
        mode: str,
        probe_only: bool = False,
    ) -> tuple[ImageMeta, bytes]:
        """Process one message (image or clock probe); returns its metadata and the Ack bytes.

        ``probe_only``: the message may only be a clock probe (a binary frame on the
        WebSocket json endpoint). Raises :class:`~imgbench.errors.WireError`
        (already counted) when the message is refused; the adapter turns it into
        its transport's error.
        """
        got = self.step.receive(raw, stamp, protocol=protocol, mode=mode, probe_only=probe_only)
        if isinstance(got, Outcome):
            # A probe is answered at once: it never waits for a slot or an image's hashing.
            return self._apply(got)
        async with self._slots:
            if self._telemetry:
                self.metrics.in_flight.inc()
            try:
                checked = self.step.admit(got)
                if isinstance(checked, Outcome):
                    return self._apply(checked)
                data = checked.data
                if len(data) >= THREAD_HASH_BYTES:
                    actual = await asyncio.to_thread(wire.digest, data)
                else:
                    actual = wire.digest(data)
                return self._apply(self.step.finish(checked, actual))
            finally:
                if self._telemetry:
                    self.metrics.in_flight.dec()

    def _apply(self, outcome: Outcome) -> tuple[ImageMeta, bytes]:
        """Record ``outcome``'s events; its meta and ack, or raise its (counted) error."""
        events = outcome.events
        i = 0
        while i < len(events):
            event = events[i]
            i += 1
            if isinstance(event, ImageReceived):
                span = self._start_span(event)
                # The image's own events are recorded inside its span, which then ends.
                with current(span, end_on_exit=False):
                    try:
                        while i < len(events) and not isinstance(events[i], SaveImage):
                            self._record_event(events[i], span)
                            i += 1
                    finally:
                        span.end(time.time_ns() - event.shift)
                continue
            self._record_event(event, None)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.meta is not None
        return outcome.meta, outcome.ack

    def _start_span(self, event: ImageReceived) -> trace.Span:
        if not self._telemetry:
            return trace.INVALID_SPAN
        meta, protocol, mode = event.meta, event.meta.protocol, event.meta.mode
        # In push mode the receiver is the client: no server.port of its own.
        port = None if mode == PUSH_MODE else self.ports.get(protocol)
        endpoint = self._endpoint_attributes.get((protocol, mode, port))
        if endpoint is None:
            endpoint = span_attributes(protocol, mode, port=port)
            if len(self._endpoint_attributes) < 64:  # protocol x mode x bound port: a few
                self._endpoint_attributes[(protocol, mode, port)] = endpoint
        return self._spans.start(
            "receive image",
            # The parent is the transmitter's "send image" span: one trace per image.
            parent=remote_parent(meta.traceparent),
            kind=span_kinds(mode)[1],
            start_time=event.stamp.realtime_ns - event.shift,
            attributes={
                **endpoint,
                "imgbench.protocol": protocol,
                "imgbench.mode": mode,
                "imgbench.run_id": meta.run_id,
                "imgbench.sequence": meta.sequence,
                "imgbench.warmup": meta.warmup,
                "imgbench.bytes": event.image_bytes,
                "imgbench.transmission_s": event.transmission_ns / NS,
                "imgbench.raw_transmission_s": event.raw_ns / NS,
                "imgbench.checksum_ok": event.checksum_ok,
                **event.clock_attributes,
            },
        )

    def _record_event(self, event: Event, span: trace.Span | None) -> None:
        """Metrics and logs of one event (``span``: the image's, for its own events)."""
        if isinstance(event, Refused):
            self.reject(event.protocol, event.error)
        elif isinstance(event, ProbeAnswered):
            if self._telemetry:
                self.metrics.probe_answered(event.protocol, event.mode)
        elif isinstance(event, RunEvicted):
            self.metrics.runs_evicted.labels(event.state).inc()
        elif isinstance(event, ClockEstimateRefused):
            self.warnings.warning(
                "clock_estimate",
                "clock estimate refused",
                run_id=event.run_id,
                protocol=event.protocol,
                mode=event.mode,
                detail=event.detail,
            )
        elif isinstance(event, ClockEstimated):
            self.metrics.clock_estimated(event.protocol, event.mode, event.clock)
        elif isinstance(event, IntegrityFailed):
            meta = event.meta
            self.metrics.integrity.labels(*labels_of(meta.protocol, meta.mode)).inc()
            if span is not None:
                span.set_status(trace.Status(trace.StatusCode.ERROR, "checksum mismatch"))
            self.warnings.warning(
                "integrity",
                "checksum mismatch",
                protocol=meta.protocol,
                mode=meta.mode,
                run_id=meta.run_id,
                sequence=meta.sequence,
                bytes=event.image_bytes,
            )
        elif isinstance(event, WarmupReceived):
            if self._telemetry:
                self.metrics.warmup_received(event.meta.protocol, event.meta.mode)
        elif isinstance(event, SampleRecorded):
            self._sample_recorded(event, span)
        elif isinstance(event, RunCompleted):
            if event.figures is not None:
                self._run_completed(event, event.figures, event.transmissions)
            elif event.record is not None:
                self._figures_later(event.record, event.record.figures_version, event)
        elif isinstance(event, FiguresDue):
            self._figures_later(event.record, event.version, None)
        elif isinstance(event, SaveImage) and self.settings.save_dir is not None:
            self._save_later(event.meta, event.data)

    def _sample_recorded(self, event: SampleRecorded, span: trace.Span | None) -> None:
        meta, seconds = event.meta, event.transmission_s
        image_bytes = event.sample.image_bytes
        if self._telemetry:
            context = (span or trace.INVALID_SPAN).get_span_context()
            self.metrics.image_received(
                meta.protocol, meta.mode, seconds, image_bytes, format(context.trace_id, "032x")
            )
        if debug_enabled():
            log.debug(
                "image received",
                protocol=meta.protocol,
                mode=meta.mode,
                run_id=meta.run_id,
                sequence=meta.sequence,
                bytes=image_bytes,
                transmission_s=seconds,
            )

    def _figures_later(self, record: RunRecord, version: int, event: RunCompleted | None) -> None:
        """Compute a large record's figures in a worker thread, then publish them.

        On the loop they would stall every transport (200,000 samples: about a
        second) and delay the last image's ack; the record is complete, so its
        samples no longer change while the thread reads them. A newer
        computation (a clock estimate arriving meanwhile) supersedes this one:
        the figures are kept only if ``record.figures_version`` is still ``version``.
        """

        async def compute() -> None:
            figures, transmissions = await asyncio.to_thread(record.summary, PER_IMAGE_SERIES)
            if record.figures_version == version:
                record.figures = figures
            if event is not None:
                self._run_completed(event, figures, transmissions)

        task = asyncio.get_running_loop().create_task(compute())
        self._figures[id(record)] = (record, task)
        self._background.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._background.discard(task)
            if self._figures.get(id(record), (None, None))[1] is task:
                del self._figures[id(record)]
            if not task.cancelled() and task.exception() is not None:
                log.error("run figures failed", run_id=record.run_id, detail=repr(task.exception()))

        task.add_done_callback(done)

    async def settle(self, record: RunRecord) -> None:
        """Wait until a complete record's figures, if being computed, are on the record."""
        while record.completed_at is not None and record.figures is None:
            pending = self._figures.get(id(record))
            if pending is None or pending[0] is not record or pending[1].done():
                return
            # wait(), not the task itself: a failed computation (logged) leaves figures
            # null rather than failing the reader.
            await asyncio.wait({pending[1]})

    def _run_completed(
        self, event: RunCompleted, figures: Figures, transmissions: list[tuple[int, float]]
    ) -> None:
        self.metrics.run_completed(event.protocol, event.mode, figures, transmissions)
        self.metrics.clock_estimated(event.protocol, event.mode, event.clock)
        # The canonical log line of a run: the three figures in one place, with the run's
        # trace when its context came with the connection (see run_trace_ids).
        # Outside the last image's span, whose trace id would otherwise be attached.
        with trace.use_span(trace.INVALID_SPAN):
            log.info(
                "run completed",
                **run_trace_ids(),
                protocol=event.protocol,
                mode=event.mode,
                run_id=event.run_id,
                repetition=event.repetition,
                images=figures.images,
                total_transfer_s=round(figures.total_transfer_s, 6),
                cumulative_transmission_s=round(figures.cumulative_transmission_s, 6),
                median_transmission_s=round(figures.transmission.p50, 6),
                max_transmission_s=round(figures.transmission.max, 6),
                throughput_mb_s=round(figures.throughput_mb_s, 3),
                integrity_failures=event.integrity_failures,
            )

    def log_disconnect(self, protocol: str, detail: str) -> None:
        """Log an abnormal end of a connection or stream (the caller counts it)."""
        self.warnings.warning(
            "disconnect", "client disconnected abnormally", protocol=protocol, detail=detail
        )

    def reject(self, protocol: str, exc: WireError) -> None:
        """Count and log a refused message."""
        self.metrics.rejected.labels(protocol, exc.reason).inc()
        self.warnings.warning(
            exc.reason, "message rejected", protocol=protocol, reason=exc.reason, detail=str(exc)
        )

    def unauthenticated(self, transport: str) -> None:
        """Count and log a request refused for a missing or wrong bearer token."""
        self.metrics.unauthenticated.labels(transport).inc()
        self.log_unauthenticated(transport)

    def log_unauthenticated(self, transport: str) -> None:
        """The (rate-limited) warning of a refused request; on the event loop thread."""
        self.warnings.warning(
            "unauthenticated",
            "request refused: missing or wrong bearer token",
            transport=transport,
        )

    # -- runs ----------------------------------------------------------------

    def is_complete(self, meta: ImageMeta) -> bool:
        """Whether the protocol run ``meta`` belongs to has received all its images."""
        return self.step.is_complete(meta)

    def records(self, run_id: str) -> list[RunRecord]:
        """The records of ``run_id``, oldest first (references: serialise with care)."""
        return self.step.runs.records(run_id)

    def run(self, run_id: str) -> list[dict[str, Any]]:
        """Records of ``run_id`` (one per protocol/mode/repetition), oldest first; [] if unknown."""
        return [r.to_dict() for r in self.step.runs.records(run_id)]

    def run_ids(self) -> list[str]:
        return self.step.runs.run_ids()

    # -- saving --------------------------------------------------------------

    def _save_later(self, meta: ImageMeta, data: bytes | memoryview) -> None:
        assert self.settings.save_dir is not None
        try:
            path = save_path(self.settings.save_dir, meta)
        except ValueError as exc:  # unreachable while decoding refuses such ids
            log.error("image not saved", run_id=meta.run_id, detail=str(exc))
            return
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(_write, path, data))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for pending background writes, write pending warning counts (on shutdown)."""
        self.warnings.flush()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


#: Samples serialised between two yields to the event loop in :func:`record_json`
#: (1-2 ms of work on a busy 2-core machine): reading a large run never stalls the
#: transports for longer than that.
SAMPLES_PER_SLICE = 200
#: An incomplete record's figures are computed on request only up to this many
#: samples (a few ms); beyond, ``figures`` is null until the record completes (complete
#: records carry the figures computed once at completion).
INCOMPLETE_FIGURES = 2000


async def record_json(record: RunRecord) -> list[bytes]:
    """``record.to_dict()`` as JSON, built in slices that yield to the event loop.

    Same document as ``json.dumps(record.to_dict())``, but a record of a million
    samples never holds the loop for more than one slice (:data:`SAMPLES_PER_SLICE`),
    so images being received meanwhile are not delayed. The samples are a
    snapshot of the keys at the start (images arriving meanwhile are left out);
    ``figures`` is null for an incomplete record above :data:`INCOMPLETE_FIGURES`.
    """
    samples = record.samples
    keys = record.sequences()
    clock = record.clock  # one estimate for the whole document
    parts = [json.dumps(record.header(len(keys)))[:-1].encode() + b', "samples": [']
    small: list[Sample] = []
    for start in range(0, len(keys), SAMPLES_PER_SLICE):
        batch = correct(clock, [samples[k] for k in keys[start : start + SAMPLES_PER_SLICE]])
        if len(keys) <= INCOMPLETE_FIGURES:
            small.extend(batch)
        text = json.dumps([_sample_dict(x) for x in batch])[1:-1]
        parts.append((", " if start else "").encode() + text.encode())
        await asyncio.sleep(0)
    figures = record.figures
    if figures is None and small:
        figures = compute_figures(small)
    parts.append(b'], "figures": ' + json.dumps(figures.as_dict() if figures else None).encode())
    parts.append(b', "clock": ' + json.dumps(record.clock_dict()).encode() + b"}")
    return parts


def save_path(save_dir: Path, meta: ImageMeta) -> Path:
    """Where ``--save-dir`` writes the image of ``meta``: ``<save_dir>/<run_id>/<file>``.

    The run id comes from the wire. Decoding already refuses ids that could
    climb out (``.``, ``..``); this checks the resolved result again so that no
    future change to the id pattern can make the receiver write elsewhere.
    Raises ValueError when the path would not be strictly inside ``save_dir``.
    """
    root = save_dir.resolve()
    kind = "warmup" if meta.warmup else "image"
    name = f"{meta.protocol}-{meta.mode}-{kind}-{meta.sequence:06d}.bin"
    path = (root / meta.run_id / name).resolve()
    if path.parent.parent != root or path.parent.name != meta.run_id:
        raise ValueError(f"run id {meta.run_id!r} would leave the save directory")
    return path


def _write(path: Path, data: bytes | memoryview) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)

"""Transport-independent handling of received images.

Contract of :meth:`ReceiverCore.handle`: the adapter passes the raw message
and the :class:`Stamp` it took *as soon as the message was complete*, before
any decoding; the core decodes and validates, verifies length and SHA-256,
records the measurement (metrics, span, run record) and returns the Ack bytes.
Nothing is written to disk inside that path; ``--save-dir`` writes happen
after the ack is returned.

Clock probes (contract revision 2, ``proto/README.md``) take the same entry
point and the same receive stamp (t2); they are answered at once, without
waiting for a slot or any hashing, with t3 read just before the reply is
serialised. The completed exchanges they echo are kept per run; the run's
clock estimate (:func:`imgbench.measure.clock.estimate_run`) corrects its
transmission times and refuses an image sent "in the future" (reason ``clock``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import Tracer

from imgbench import wire
from imgbench.config.settings import ReceiverSettings
from imgbench.errors import ClockError, DuplicateImage, InvalidField, WireError, WrongFrameType
from imgbench.measure.clock import Probe, estimate_run
from imgbench.measure.results import NS, Sample, compute_figures
from imgbench.observe.logs import LimitedWarnings, LogLimiter, get_logger
from imgbench.observe.metrics import ReceiverMetrics, labels_of
from imgbench.observe.tracing import context_from_traceparent, span_attributes, span_kinds
from imgbench.runtime.resources import boot_id
from imgbench.wire import Clock, ImageMeta
from imgbench.wire.codec import MAX_ECHOED_EXCHANGES
from imgbench.wire.names import PUSH_MODE
from receiver.runs import RunGroup, RunRecord, RunTable

log = get_logger("receiver")

#: Echoed clock probe exchanges one run record keeps (512 groups of 8: far more than a
#: run sends); beyond, probes are refused (reason ``clock``).
MAX_PROBES_PER_RECORD = MAX_ECHOED_EXCHANGES

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
    data: bytes | memoryview
    message_bytes: int


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
    """Validation, measurement and bookkeeping shared by both transports."""

    def __init__(
        self, settings: ReceiverSettings, metrics: ReceiverMetrics, tracer: Tracer
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._tracer = tracer
        #: IMGBENCH_TELEMETRY=off: no spans, no per-image metrics (error counters stay).
        self._telemetry = settings.telemetry
        self._runs = RunTable(
            max_runs=settings.max_runs,
            max_records_per_run=settings.max_records_per_run,
            idle_timeout_s=settings.run_idle_timeout,
            metrics=metrics,
        )
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._background: set[asyncio.Task[None]] = set()
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
        try:
            try:
                decoded = self._decode(raw, protocol, mode)
            except WireError:
                if not probe_only:
                    raise
                decoded = None
            if probe_only and (decoded is None or decoded[0].probe is None):
                raise WrongFrameType(f"binary frame on the {mode} endpoint (only clock probes)")
            assert decoded is not None
            if decoded[0].probe is not None:
                # Answered at once: a probe never waits for a slot or an image's hashing.
                return decoded[0], self._answer_probe(decoded[0], stamp)
        except WireError as exc:
            self.reject(protocol, exc)
            raise
        async with self._slots:
            if self._telemetry:
                self.metrics.in_flight.inc()
            try:
                return await self._handle(decoded, stamp, protocol, mode)
            except WireError as exc:
                self.reject(protocol, exc)
                raise
            finally:
                if self._telemetry:
                    self.metrics.in_flight.dec()

    def _decode(
        self, raw: bytes | str | Assembled, protocol: str, mode: str
    ) -> tuple[ImageMeta, bytes | memoryview, int]:
        limit = self.settings.max_message_bytes
        if isinstance(raw, Assembled):
            return raw.meta, raw.data, raw.message_bytes
        if isinstance(raw, str):
            meta, text_data = wire.decode_json_image(
                raw, max_bytes=limit, protocol=protocol, mode=mode
            )
            return meta, text_data, len(raw)
        # A view into raw for binary messages: no copy.
        meta, data = wire.decode_image(raw, max_bytes=limit, protocol=protocol, mode=mode)
        return meta, data, len(raw)

    def _answer_probe(self, meta: ImageMeta, stamp: Stamp) -> bytes:
        """Keep the echoed exchanges, re-estimate, and reply with t2 and t3."""
        probe = meta.probe
        assert probe is not None
        run, record = self._record(meta, stamp.monotonic_ns)
        self._runs.touch(run, stamp.monotonic_ns)
        if probe.completed:
            try:
                exchanges = [
                    (x.group, x.id, Probe(x.t1, x.t2, x.t3, x.t4)) for x in probe.completed
                ]
            except ClockError as exc:
                raise ClockError(f"echoed exchange refused: {exc}") from exc
            new = {(g, i) for g, i, _ in exchanges if i not in record.probes.get(g, {})}
            if record.probe_count + len(new) > MAX_PROBES_PER_RECORD:
                # Echoed exchanges are kept per record; without a bound a client could
                # grow the receiver's memory (and each re-estimate's cost) at will.
                raise ClockError(
                    f"more than {MAX_PROBES_PER_RECORD} echoed probe exchanges in one run"
                )
            record.probe_count += len(new)
            for group, probe_id, p in exchanges:
                record.probes.setdefault(group, {})[probe_id] = p
            record.transmitter_boot_id = probe.boot_id
            self._estimate(record)
        receive_ns = stamp.on(meta.clock)
        if probe.realtime_ns > 0:
            record.transmitter_wall_minus_clock = probe.realtime_ns - meta.send_time_ns
        if self._telemetry:
            self.metrics.probes.labels(*labels_of(meta.protocol, meta.mode)).inc()
        return wire.encode_probe_reply(
            id=probe.id,
            receive_time_ns=receive_ns,
            reply_time_ns=wire.read_clock(meta.clock),  # t3: as late as possible
            clock=meta.clock,
            boot_id=boot_id(),
        )

    def _estimate(self, record: RunRecord) -> None:
        groups = [list(record.probes[g].values()) for g in sorted(record.probes)]
        try:
            record.clock = estimate_run(
                groups, transmitter_boot_id=record.transmitter_boot_id, receiver_boot_id=boot_id()
            )
            record.clock_error = ""
        except ClockError as exc:
            if record.clock_error != str(exc):
                self.warnings.warning(
                    "clock_estimate",
                    "clock estimate refused",
                    run_id=record.run_id,
                    protocol=record.protocol,
                    mode=record.mode,
                    detail=str(exc),
                )
            record.clock, record.clock_error = None, str(exc)
            return
        if record.completed_at is not None:
            record.refresh_figures()  # a final probe group arrives after the last image
            self.metrics.clock_estimated(record.protocol, record.mode, record.clock_dict())

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

    async def _handle(
        self,
        decoded: tuple[ImageMeta, bytes | memoryview, int],
        stamp: Stamp,
        protocol: str,
        mode: str,
    ) -> tuple[ImageMeta, bytes]:
        meta, data, message_bytes = decoded
        receive_ns = stamp.on(meta.clock)
        group, record = self._record(meta, stamp.monotonic_ns)
        if not meta.warmup and meta.sequence in record.samples:
            raise DuplicateImage(f"sequence {meta.sequence} of run {meta.run_id} already received")
        self._runs.touch(group, stamp.monotonic_ns)
        raw_ns = receive_ns - meta.start_ns
        # Sent "in the future": refused (reason clock), never recorded as a negative time.
        corrected_ns, bound_ns = self._check_time(record, raw_ns, meta.start_ns)

        if len(data) >= THREAD_HASH_BYTES:
            actual = await asyncio.to_thread(wire.digest, data)
        else:
            actual = wire.digest(data)
        checksum_ok = actual == meta.sha256
        transmission_ns = raw_ns if corrected_ns is None else corrected_ns
        labels = labels_of(protocol, mode)  # with the direction the mode implies

        shift = self._span_shift(record, meta, stamp)
        span = (
            self._tracer.start_span(
                "receive image",
                # The parent is the transmitter's "send image" span: one trace per image.
                context=context_from_traceparent(meta.traceparent),
                kind=span_kinds(mode)[1],
                start_time=stamp.realtime_ns - shift,
                attributes={
                    # In push mode the receiver is the client: no server.port of its own.
                    **span_attributes(
                        protocol, mode, port=None if mode == PUSH_MODE else self.ports.get(protocol)
                    ),
                    "imgbench.protocol": protocol,
                    "imgbench.mode": mode,
                    "imgbench.run_id": meta.run_id,
                    "imgbench.sequence": meta.sequence,
                    "imgbench.warmup": meta.warmup,
                    "imgbench.bytes": len(data),
                    "imgbench.transmission_s": transmission_ns / NS,
                    "imgbench.raw_transmission_s": raw_ns / NS,
                    "imgbench.checksum_ok": checksum_ok,
                    **self._clock_attributes(record, meta, shift),
                },
            )
            if self._telemetry
            else trace.INVALID_SPAN
        )
        with trace.use_span(span, end_on_exit=False):
            try:
                self._account(
                    group, record, meta, span, data, message_bytes, receive_ns, transmission_ns,
                    (corrected_ns, bound_ns), checksum_ok, labels,
                )  # fmt: skip
            finally:
                span.end(time.time_ns() - shift)
        ack = wire.encode_ack(
            sequence=meta.sequence,
            receive_time_ns=receive_ns,
            bytes_received=len(data),
            checksum_ok=checksum_ok,
            transmission_ns=raw_ns,
            warmup=meta.warmup,
        )
        if self.settings.save_dir is not None:
            self._save_later(meta, data)
        return meta, ack

    def _check_time(self, record: RunRecord, raw_ns: int, start_ns: int) -> tuple[int | None, int]:
        """Corrected time and bound, or (None, 0) uncorrected; ClockError when negative beyond it.

        Without an estimate (no probes yet, a revision-1 transmitter) the raw
        time itself must not be negative: that is a send time in the future on
        a shared clock, and across hosts an uncorrectable figure.
        """
        if record.clock is None:
            if raw_ns < 0:
                raise ClockError(
                    f"transmission time {raw_ns} ns is negative and no clock probe corrects it:"
                    " the send time is later than the receive time"
                )
            return None, 0
        value, bound = record.clock.check(raw_ns, start_ns)
        if record.clock.shared:
            return None, 0
        return value, bound

    @staticmethod
    def _span_shift(record: RunRecord, meta: ImageMeta, stamp: Stamp) -> int:
        """Wall-clock ns to subtract from this receiver's span times to put them on the
        transmitter's wall clock, so that a span never starts before its parent.

        A receiver wall time ``W`` is ``W - d_rx`` on its probe clock (``d_rx`` =
        wall minus probe clock, from the stamp), ``W - d_rx - offset`` on the
        transmitter's probe clock, and ``W - d_rx - offset + d_tx`` on the
        transmitter's wall clock (``d_tx`` from ``ClockProbe.realtime_ns``). The
        shift is therefore ``d_rx + offset - d_tx``, exact to within the offset's
        bound. 0 on a shared clock, without an estimate, or when the transmitter
        did not send its wall clock (the span then carries the offset only).
        """
        clock = record.clock
        if clock is None or clock.shared:
            return 0
        if meta.clock == Clock.CLOCK_REALTIME:
            d_tx: int | None = 0  # the probe clock is the wall clock
        else:
            d_tx = record.transmitter_wall_minus_clock
        if d_tx is None:
            return 0
        d_rx = stamp.realtime_ns - stamp.on(meta.clock)
        return d_rx + clock.offset_at(meta.start_ns)[0] - d_tx

    @staticmethod
    def _clock_attributes(record: RunRecord, meta: ImageMeta, shift: int) -> dict[str, Any]:
        clock = record.clock
        if clock is None:
            return {"imgbench.clock.status": "uncorrected"}
        offset, bound = clock.offset_at(meta.start_ns)
        return {
            "imgbench.clock.status": "shared" if clock.shared else "corrected",
            "imgbench.clock.offset_ns": offset,
            "imgbench.clock.bound_ns": bound,
            # Subtracted from this span's wall-clock start and end (0: not moved).
            "imgbench.clock.span_shift_ns": shift,
            "imgbench.clock.name": "realtime"
            if meta.clock == Clock.CLOCK_REALTIME
            else "monotonic",
        }

    def _account(
        self,
        group: RunGroup,
        record: RunRecord,
        meta: ImageMeta,
        span: trace.Span,
        data: bytes | memoryview,
        message_bytes: int,
        receive_ns: int,
        transmission_ns: int,
        correction: tuple[int | None, int],
        checksum_ok: bool,
        labels: tuple[str, str, str],
    ) -> None:
        protocol, mode, _ = labels
        if not checksum_ok:
            record.integrity_failures += 1
            self.metrics.integrity.labels(*labels).inc()
            span.set_status(trace.Status(trace.StatusCode.ERROR, "checksum mismatch"))
            self.warnings.warning(
                "integrity",
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
            record.add(
                Sample(
                    sequence=meta.sequence,
                    scheduled_ns=meta.start_ns,
                    send_ns=meta.send_time_ns,
                    receive_ns=receive_ns,
                    ack_ns=receive_ns,  # the transmitter records its own ack time
                    image_bytes=len(data),
                    message_bytes=message_bytes,
                    checksum_ok=True,
                    transmission_ns=correction[0],
                    bound_ns=correction[1],
                )
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
                self._runs.closed(group)

    # -- runs ----------------------------------------------------------------

    def _record(self, meta: ImageMeta, now_ns: int) -> tuple[RunGroup, RunRecord]:
        """The record ``meta`` belongs to, created if new (see :mod:`receiver.runs`)."""
        group, record = self._runs.lookup(meta, now_ns)
        if record is None:
            record = RunRecord(meta.run_id, meta.protocol, meta.mode, meta.repetition, meta.total)
            self._runs.add(group, (meta.protocol, meta.mode, meta.repetition), record)
        elif record.total != meta.total:
            raise InvalidField(f"total changed from {record.total} to {meta.total} within a run")
        return group, record

    def _complete(self, record: RunRecord) -> None:
        record.completed_at = time.time()
        samples = record.corrected()
        figures = record.figures = compute_figures(samples)
        self.metrics.run_completed(
            record.protocol, record.mode, figures, [(s.sequence, s.transmission_s) for s in samples]
        )
        self.metrics.clock_estimated(record.protocol, record.mode, record.clock_dict())
        # The canonical log line of a run: the three figures in one place, with the run's
        # trace when its context came with the connection (see run_trace_ids).
        # Outside the last image's span, whose trace id would otherwise be attached.
        with trace.use_span(trace.INVALID_SPAN):
            log.info(
                "run completed",
                **run_trace_ids(),
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
        record = self._runs.get(meta.run_id, (meta.protocol, meta.mode, meta.repetition))
        return record is not None and record.completed_at is not None

    def records(self, run_id: str) -> list[RunRecord]:
        """The records of ``run_id``, oldest first (references: serialise with care)."""
        return self._runs.records(run_id)

    def run(self, run_id: str) -> list[dict[str, Any]]:
        """Records of ``run_id`` (one per protocol/mode/repetition), oldest first; [] if unknown."""
        return [r.to_dict() for r in self._runs.records(run_id)]

    def run_ids(self) -> list[str]:
        return self._runs.run_ids()

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

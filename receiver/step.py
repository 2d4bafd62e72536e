"""The receiver's sans-I/O step: message and stamp in, outcome out.

Following websockets' ``protocol.py``, everything a received message means is
decided here, without sockets, event loop, telemetry or files: decoding and
validation, the run table's bookkeeping (:mod:`receiver.runs`), the duplicate
check, the clock check (a send time "in the future" is refused, reason
``clock``), the integrity check, clock probes and run completion. The result
is an :class:`~receiver.events.Outcome`: the Ack bytes to send back and the list
of :data:`~receiver.events.Event` values that happened (the types live in
:mod:`receiver.events`). :class:`receiver.core.ReceiverCore` (the
edge) applies the events -- metrics, spans, logs, saves -- and is the only
place that knows about telemetry; the transports call the edge.

An image goes through three calls, because the edge has two things to do in
between that are not the step's business::

    got = step.receive(message, stamp, protocol="websocket", mode="binary")
    if isinstance(got, Outcome):            # a probe answered, or a refusal
        ...
    # got is a Decoded image: the edge waits for an in-flight slot here
    checked = step.admit(got)
    if isinstance(checked, Outcome):        # refused (duplicate, clock, run table ...)
        ...
    outcome = step.finish(checked, digest_of(checked.data))

Why a "needs digest" continuation (:class:`NeedsDigest`) rather than hashing
here: SHA-256 of a large payload takes milliseconds, and the edge hashes
payloads of :data:`receiver.core.THREAD_HASH_BYTES` or more in a worker thread
so that the event loop keeps serving other connections meanwhile. The step
cannot await, and must not start threads; returning the bytes to hash keeps
that performance property while the step stays synchronous and pure. Why the
slot wait sits between :meth:`ReceiverStep.receive` and :meth:`ReceiverStep.admit`:
a clock probe is answered at once, never waiting for a slot, while an image's
run-table checks see the table as it is once its slot is granted (as before
this split). :meth:`ReceiverStep.step` runs the three calls back to back with
an inline digest (no concurrency; used by tests).

Clock reads: t3 of a probe reply is read as late as possible (when the edge
reads :attr:`Outcome.ack`, after recording the events), and a completed
run gets its wall-clock completion time; both come from injectable callables
(``read_clock``, ``wall_time``) so that tests control them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imgbench import wire
from imgbench.config.settings import ReceiverSettings
from imgbench.errors import ClockError, DuplicateImage, InvalidField, WireError, WrongFrameType
from imgbench.measure.clock import Probe, combine_groups, estimate_offset
from imgbench.measure.results import NS, Sample, compute_figures
from imgbench.wire import Clock, ImageMeta
from imgbench.wire.validation import MAX_ECHOED_EXCHANGES
from receiver.events import (
    Assembled,
    ClockEstimated,
    ClockEstimateRefused,
    Event,
    FiguresDue,
    ImageReceived,
    IntegrityFailed,
    Message,
    Outcome,
    ProbeAnswered,
    Refused,
    RunCompleted,
    RunEvicted,
    SampleRecorded,
    SaveImage,
    Stamp,
    WarmupReceived,
    error_ack,
)
from receiver.runs import INLINE_FIGURES, RunGroup, RunRecord, RunTable

#: Echoed clock probe exchanges one run record keeps (512 groups of 8: far more than a
#: run sends); beyond, probes are refused (reason ``clock``).
MAX_PROBES_PER_RECORD = MAX_ECHOED_EXCHANGES


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded image waiting for admission (the edge's in-flight slot)."""

    meta: ImageMeta
    data: bytes | memoryview
    message_bytes: int
    stamp: Stamp
    protocol: str
    mode: str


@dataclass(slots=True)
class NeedsDigest:
    """An admitted image whose ``data`` must be hashed (``wire.digest``) to finish."""

    decoded: Decoded
    group: RunGroup
    record: RunRecord
    raw_ns: int
    corrected_ns: int | None
    bound_ns: int
    events: list[Event] = field(default_factory=list)

    @property
    def data(self) -> bytes | memoryview:
        return self.decoded.data


class ReceiverStep:
    """Validation, measurement and run bookkeeping shared by every transport; no I/O."""

    def __init__(
        self,
        settings: ReceiverSettings,
        *,
        boot_id: str,
        read_clock: Callable[[int], int] = wire.read_clock,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.boot_id = boot_id
        self._read_clock = read_clock
        self._wall_time = wall_time
        #: Events produced inside the run table (evictions), moved into the outcome.
        self._table_events: list[Event] = []
        self.runs = RunTable(
            max_runs=settings.max_runs,
            max_records_per_run=settings.max_records_per_run,
            idle_timeout_s=settings.run_idle_timeout,
            on_evict=lambda state: self._table_events.append(RunEvicted(state)),
        )

    # -- phase 1: decode; probes answered --------------------------------------

    def receive(
        self,
        message: Message,
        stamp: Stamp,
        *,
        protocol: str,
        mode: str,
        probe_only: bool = False,
    ) -> Outcome | Decoded:
        """Decode ``message`` received complete at ``stamp``.

        Returns an :class:`Outcome` for a clock probe (answered) or a refusal,
        a :class:`Decoded` image otherwise. ``probe_only``: the message may
        only be a clock probe (a binary frame on the WebSocket json endpoint).
        """
        events: list[Event] = []
        meta: ImageMeta | None = None
        try:
            try:
                meta, data, message_bytes = self._decode(message, protocol, mode)
            except WireError:
                if not probe_only:
                    raise
                meta = None
            if probe_only and (meta is None or meta.probe is None):
                meta = None
                raise WrongFrameType(f"binary frame on the {mode} endpoint (only clock probes)")
            assert meta is not None
            if meta.probe is not None:
                return self._answer_probe(meta, stamp, events)
        except WireError as exc:
            return self._refuse(protocol, exc, events, meta)
        return Decoded(meta, data, message_bytes, stamp, protocol, mode)

    def _decode(
        self, raw: Message, protocol: str, mode: str
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

    def _refuse(
        self, protocol: str, exc: WireError, events: list[Event], meta: ImageMeta | None
    ) -> Outcome:
        events.extend(self._drain_table_events())
        events.append(Refused(protocol, exc))
        return Outcome(error_ack(exc), tuple(events), meta, exc)

    def _drain_table_events(self) -> list[Event]:
        out, self._table_events[:] = list(self._table_events), []
        return out

    def _answer_probe(self, meta: ImageMeta, stamp: Stamp, events: list[Event]) -> Outcome:
        """Keep the echoed exchanges, re-estimate, and reply with t2 and t3."""
        probe = meta.probe
        assert probe is not None
        run, record = self._record(meta, stamp.monotonic_ns)
        self.runs.touch(run, stamp.monotonic_ns)
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
            events.extend(self._estimate(record, {g for g, _, _ in exchanges}))
        receive_ns = stamp.on(meta.clock)
        if probe.realtime_ns > 0:
            record.transmitter_wall_minus_clock = probe.realtime_ns - meta.send_time_ns
        events.extend(self._drain_table_events())
        events.append(ProbeAnswered(meta.protocol, meta.mode, meta.run_id))
        read_clock, clock, probe_id = self._read_clock, meta.clock, probe.id

        def reply() -> bytes:
            return wire.encode_probe_reply(
                id=probe_id,
                receive_time_ns=receive_ns,
                reply_time_ns=read_clock(clock),  # t3: as late as possible
                clock=clock,
                boot_id=self.boot_id,
            )

        return Outcome(reply, tuple(events), meta)

    def _estimate(self, record: RunRecord, changed: set[int]) -> list[Event]:
        """Re-estimate the run's clock after the groups ``changed`` got exchanges.

        The same result as ``estimate_run`` over every group held (refusals
        included: the first refused group, in group order, is the run's error),
        but only the changed groups are estimated again: a run answers up to 8
        probes per pause, and redoing every group each time made the receiver's
        work per probe grow with the run (0.3 ms per probe at 20 images).
        """
        estimates = record.group_estimates
        for g in changed:
            try:
                estimates[g] = estimate_offset(list(record.probes[g].values()))
            except ClockError as exc:
                estimates[g] = str(exc)
        try:
            ordered = []
            for g in sorted(record.probes):
                estimate = estimates[g]
                if isinstance(estimate, str):
                    raise ClockError(estimate)
                ordered.append(estimate)
            record.clock = combine_groups(
                ordered,
                transmitter_boot_id=record.transmitter_boot_id,
                receiver_boot_id=self.boot_id,
            )
            record.clock_error = ""
        except ClockError as exc:
            events: list[Event] = []
            if record.clock_error != str(exc):
                events.append(
                    ClockEstimateRefused(record.run_id, record.protocol, record.mode, str(exc))
                )
            record.clock, record.clock_error = None, str(exc)
            return events
        if record.completed_at is not None:
            # A final probe group arrives after the last image.
            estimated: list[Event] = [
                ClockEstimated(record.protocol, record.mode, record.clock_dict())
            ]
            if not record.refresh_figures():
                estimated.append(FiguresDue(record, record.figures_version))
            return estimated
        return []

    # -- phase 2: admission (run table, duplicate, clock) -----------------------

    def admit(self, decoded: Decoded) -> Outcome | NeedsDigest:
        """Run-table, duplicate and clock checks of an image; a refusal or what to hash."""
        meta, stamp = decoded.meta, decoded.stamp
        try:
            group, record = self._record(meta, stamp.monotonic_ns)
            if not meta.warmup and meta.sequence in record.samples:
                raise DuplicateImage(
                    f"sequence {meta.sequence} of run {meta.run_id} already received"
                )
            self.runs.touch(group, stamp.monotonic_ns)
            raw_ns = stamp.on(meta.clock) - meta.start_ns
            # Sent "in the future": refused (reason clock), never recorded as a negative time.
            corrected_ns, bound_ns = self._check_time(record, raw_ns, meta.start_ns)
        except WireError as exc:
            return self._refuse(decoded.protocol, exc, [], meta)
        return NeedsDigest(
            decoded, group, record, raw_ns, corrected_ns, bound_ns, self._drain_table_events()
        )

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

    # -- phase 3: integrity, the sample, completion ------------------------------

    def finish(self, pending: NeedsDigest, digest: bytes) -> Outcome:
        """Complete an admitted image given ``wire.digest(pending.data)``."""
        decoded, record = pending.decoded, pending.record
        meta, data, stamp = decoded.meta, decoded.data, decoded.stamp
        events = pending.events
        receive_ns = stamp.on(meta.clock)
        checksum_ok = digest == meta.sha256
        raw_ns = pending.raw_ns
        transmission_ns = raw_ns if pending.corrected_ns is None else pending.corrected_ns
        shift = self.span_shift(record, meta, stamp)
        events.append(
            ImageReceived(
                meta,
                stamp,
                len(data),
                raw_ns,
                transmission_ns,
                checksum_ok,
                shift,
                self.clock_attributes(record, meta, shift),
            )
        )
        if not checksum_ok:
            record.integrity_failures += 1
            events.append(IntegrityFailed(meta, len(data)))
        elif meta.warmup:
            record.warmup += 1
            events.append(WarmupReceived(meta))
        else:
            sample = Sample(
                sequence=meta.sequence,
                scheduled_ns=meta.start_ns,
                send_ns=meta.send_time_ns,
                receive_ns=receive_ns,
                ack_ns=receive_ns,  # the transmitter records its own ack time
                image_bytes=len(data),
                message_bytes=decoded.message_bytes,
                checksum_ok=True,
                transmission_ns=pending.corrected_ns,
                bound_ns=pending.bound_ns,
            )
            record.add(sample)
            events.append(SampleRecorded(meta, sample, transmission_ns / NS))
            if len(record.samples) == record.total:
                events.append(self._complete(record))
                self.runs.closed(pending.group)
        ack = wire.encode_ack(
            sequence=meta.sequence,
            receive_time_ns=receive_ns,
            bytes_received=len(data),
            checksum_ok=checksum_ok,
            transmission_ns=raw_ns,
            warmup=meta.warmup,
        )
        if self.settings.save_dir is not None:
            events.append(SaveImage(meta, data))
        return Outcome(ack, tuple(events), meta)

    def step(
        self,
        message: Message,
        stamp: Stamp,
        *,
        protocol: str,
        mode: str,
        probe_only: bool = False,
    ) -> Outcome:
        """The three phases back to back, hashing inline (no slot, no concurrency)."""
        got = self.receive(message, stamp, protocol=protocol, mode=mode, probe_only=probe_only)
        if isinstance(got, Outcome):
            return got
        checked = self.admit(got)
        if isinstance(checked, Outcome):
            return checked
        return self.finish(checked, wire.digest(checked.data))

    @staticmethod
    def span_shift(record: RunRecord, meta: ImageMeta, stamp: Stamp) -> int:
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
    def clock_attributes(record: RunRecord, meta: ImageMeta, shift: int) -> dict[str, Any]:
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

    # -- runs ----------------------------------------------------------------

    def _record(self, meta: ImageMeta, now_ns: int) -> tuple[RunGroup, RunRecord]:
        """The record ``meta`` belongs to, created if new (see :mod:`receiver.runs`)."""
        group, record = self.runs.lookup(meta, now_ns)
        if record is None:
            record = RunRecord(meta.run_id, meta.protocol, meta.mode, meta.repetition, meta.total)
            self.runs.add(group, (meta.protocol, meta.mode, meta.repetition), record)
        elif record.total != meta.total:
            raise InvalidField(f"total changed from {record.total} to {meta.total} within a run")
        return group, record

    def _complete(self, record: RunRecord) -> RunCompleted:
        record.completed_at = self._wall_time()
        record.figures_version += 1
        figures, transmissions = None, []
        if len(record.samples) <= INLINE_FIGURES:
            samples = record.corrected()
            figures = record.figures = compute_figures(samples)
            transmissions = [(s.sequence, s.transmission_s) for s in samples]
        return RunCompleted(
            run_id=record.run_id,
            protocol=record.protocol,
            mode=record.mode,
            repetition=record.repetition,
            figures=figures,
            transmissions=transmissions,
            clock=record.clock_dict(),
            integrity_failures=record.integrity_failures,
            record=record,
        )

    def is_complete(self, meta: ImageMeta) -> bool:
        """Whether the protocol run ``meta`` belongs to has received all its images."""
        record = self.runs.get(meta.run_id, (meta.protocol, meta.mode, meta.repetition))
        return record is not None and record.completed_at is not None

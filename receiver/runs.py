"""The receiver's run table: bounded, never drops a live run, O(1) per message.

A *run* is everything received under one run id: one :class:`RunRecord` per
(protocol, mode, repetition). Bounds, each a documented setting:

- ``RECEIVER_MAX_RUNS`` run ids are kept. When a message opens a new run and
  the table is full, room is made by evicting, in this order, the run that
  finished longest ago, or the run in progress that has been idle longest if it
  has been idle for ``RECEIVER_RUN_IDLE_TIMEOUT`` (abandoned). If neither
  exists, every slot holds a live run and the new run is refused
  (:class:`RunsFull`): a live run is never evicted.
- ``RECEIVER_MAX_RECORDS_PER_RUN`` records per run id (:class:`RecordsFull`).
- Samples per record are bounded by the record's ``total`` (at most
  :data:`imgbench.wire.MAX_IMAGES_PER_RUN`).

A message for a run that was evicted is refused (:class:`RunEvicted`) rather
than silently starting an empty record: the ids of the last
:data:`EVICTED_MEMORY` evicted runs are remembered for that.

Every operation is O(1) (dict and OrderedDict moves), so per-image handling
does not slow down as the table fills.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imgbench.errors import ClockError, RecordsFull, RunEvicted, RunsFull
from imgbench.measure.clock import ClockEstimate, Probe, RunClock
from imgbench.measure.results import NS, Figures, Sample, compute_figures
from imgbench.wire import ImageMeta

if TYPE_CHECKING:  # the table itself stays free of telemetry (see receiver.step)
    from imgbench.observe.metrics import ReceiverMetrics

#: How many evicted run ids are remembered so that late messages for them are refused.
EVICTED_MEMORY = 4096
#: A complete record of up to this many samples gets its figures computed inline (under
#: a few ms); a larger one's are computed off the event loop by the edge
#: (:meth:`RunRecord.summary` in a worker thread; 200,000 samples take about a second).
INLINE_FIGURES = 2000

RecordKey = tuple[str, str, int]  # protocol, mode, repetition


@dataclass
class RunRecord:
    """Everything received for one (run id, protocol, mode, repetition)."""

    run_id: str
    protocol: str
    mode: str
    repetition: int
    total: int
    samples: dict[int, Sample] = field(default_factory=dict)
    warmup: int = 0
    integrity_failures: int = 0
    completed_at: float | None = None
    #: Echoed clock probe exchanges: group -> probe id -> (t1, t2, t3, t4).
    probes: dict[int, dict[int, Probe]] = field(default_factory=dict)
    #: Exchanges held in ``probes`` (bounded by ``receiver.step.MAX_PROBES_PER_RECORD``).
    probe_count: int = 0
    #: Each group's ``estimate_offset`` (or its refusal's message), redone only for the groups a
    #: probe's echoed exchanges touch, so that re-estimating after every probe does not
    #: redo the whole run (``combine_groups`` of these is ``estimate_run`` of ``probes``).
    group_estimates: dict[int, ClockEstimate | str] = field(default_factory=dict)
    #: The transmitter's boot id, from its probes ("" when unknown).
    transmitter_boot_id: str = ""
    #: The clock estimate from ``probes``; None before the first exchange or when refused.
    clock: RunClock | None = None
    #: Why there is no estimate although probes arrived (empty otherwise).
    clock_error: str = ""
    #: The transmitter's CLOCK_REALTIME minus its probe clock (ns), from its last probe
    #: (``ClockProbe.realtime_ns - t1``); None when it did not say.
    transmitter_wall_minus_clock: int | None = None
    #: Figures of a complete record, computed at completion and again whenever the
    #: clock estimate changes afterwards (never per read).
    figures: Figures | None = None
    #: Whether samples were inserted in sequence order (the usual case): then the
    #: dict's own order is sorted and reading the record needs no sort.
    in_order: bool = True
    #: Bumped whenever the figures of a complete record become due (completion, a new
    #: clock estimate), so that a computation started earlier never overwrites them.
    figures_version: int = 0

    def add(self, sample: Sample) -> None:
        if self.samples and sample.sequence < next(reversed(self.samples)):
            self.in_order = False
        self.samples[sample.sequence] = sample

    def sequences(self) -> list[int]:
        """Sequence numbers of the measured samples, in order (no sort when they came in order)."""
        return list(self.samples) if self.in_order else sorted(self.samples)

    def corrected(self) -> list[Sample]:
        """Measured samples in sequence order, with corrected times when the clock is estimated.

        Corrected at read time, so every sample uses the latest estimate
        (interpolated between the probe groups around it once they are in).
        """
        return correct(self.clock, [self.samples[k] for k in self.sequences()])

    def refresh_figures(self) -> bool:
        """Recompute the cached figures of a complete record (the estimate changed).

        Returns False when the record is above :data:`INLINE_FIGURES`: then
        ``figures`` is cleared and left to the caller to compute off the loop
        (:meth:`summary`, then set it if ``figures_version`` is unchanged).
        """
        if self.completed_at is None or not self.samples:
            return True
        self.figures_version += 1
        if len(self.samples) > INLINE_FIGURES:
            self.figures = None
            return False
        self.figures = compute_figures(self.corrected())
        return True

    def summary(self, per_image_below: int) -> tuple[Figures, list[tuple[int, float]]]:
        """The figures of a complete record and ``(sequence, transmission_s)`` of its
        samples numbered below ``per_image_below``.

        Reads the record only: safe in a worker thread once the record is complete
        (its samples no longer change; a new clock estimate replaces ``clock``
        whole, and bumps ``figures_version``).
        """
        samples = self.corrected()
        transmissions = [
            (s.sequence, s.transmission_s) for s in samples if s.sequence < per_image_below
        ]
        return compute_figures(samples), transmissions

    def clock_dict(self) -> dict[str, Any]:
        """``status`` (shared / corrected / uncorrected), ``why``, and the estimate."""
        if self.clock is None:
            why = self.clock_error or "no clock probes received (a revision-1 transmitter)"
            return {"status": "uncorrected", "why": why}
        status = "shared" if self.clock.shared else "corrected"
        return {"status": status, **self.clock.as_dict()}

    def header(self, received: int) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "protocol": self.protocol,
            "mode": self.mode,
            "repetition": self.repetition,
            "total": self.total,
            "received": received,
            "warmup_received": self.warmup,
            "integrity_failures": self.integrity_failures,
            "complete": self.completed_at is not None,
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole record at once (small records; the HTTP API uses
        :func:`receiver.core.record_json`)."""
        samples = self.corrected()
        figures = self.figures
        if figures is None and samples:
            figures = compute_figures(samples)
        return {
            **self.header(len(samples)),
            "samples": [_sample_dict(s) for s in samples],
            "figures": figures.as_dict() if figures else None,
            "clock": self.clock_dict(),
        }


def correct(clock: RunClock | None, samples: list[Sample]) -> list[Sample]:
    """``samples`` with times corrected by ``clock``; unchanged without an estimate.

    When the estimate cannot correct (drift too large: a property of the
    estimate, not of one sample) every sample stays raw, and ``clock_dict``
    says why.
    """
    if clock is None or clock.shared:
        return samples
    out = []
    for s in samples:
        try:
            value, bound = clock.correct(s.raw_transmission_ns, s.scheduled_ns)
        except ClockError:
            return samples
        out.append(dataclasses.replace(s, transmission_ns=value, bound_ns=bound))
    return out


def _sample_dict(s: Sample) -> dict[str, Any]:
    return {
        "sequence": s.sequence,
        "scheduled_ns": s.scheduled_ns,
        "send_ns": s.send_ns,
        "receive_ns": s.receive_ns,
        "transmission_s": s.transmission_s,
        "raw_transmission_s": s.raw_transmission_ns / NS,
        "bound_s": s.bound_ns / NS,
        "image_bytes": s.image_bytes,
        "checksum_ok": s.checksum_ok,
    }


@dataclass(slots=True)
class RunGroup:
    """All records of one run id, and when it last received anything (monotonic ns)."""

    run_id: str
    records: dict[RecordKey, RunRecord] = field(default_factory=dict)
    open: int = 0
    last_ns: int = 0


class RunTable:
    """Run records by run id, with the bounds and eviction order described above."""

    def __init__(
        self,
        *,
        max_runs: int,
        max_records_per_run: int,
        idle_timeout_s: float,
        metrics: ReceiverMetrics | None = None,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        """``on_evict(state)`` is told of each eviction (state: finished / abandoned);
        ``metrics`` instead counts it in ``runs_evicted`` directly."""
        self.max_runs = max_runs
        self.max_records_per_run = max_records_per_run
        self.idle_timeout_ns = int(idle_timeout_s * 1e9)
        if on_evict is None and metrics is not None:
            on_evict = lambda state: metrics.runs_evicted.labels(state).inc()  # noqa: E731
        self._on_evict = on_evict
        self._groups: dict[str, RunGroup] = {}
        #: Runs with every record complete, longest finished first.
        self._finished: OrderedDict[str, None] = OrderedDict()
        #: Runs with an open record, least recently active first.
        self._active: OrderedDict[str, None] = OrderedDict()
        self._evicted: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._groups)

    def get(self, run_id: str, key: RecordKey) -> RunRecord | None:
        group = self._groups.get(run_id)
        return None if group is None else group.records.get(key)

    def lookup(self, meta: ImageMeta, now_ns: int) -> tuple[RunGroup, RunRecord | None]:
        """The group of ``meta``'s run (created, making room, if new) and its record if any.

        Raises :class:`RunEvicted`, :class:`RunsFull` or :class:`RecordsFull`;
        nothing changes when it raises.
        """
        group = self._groups.get(meta.run_id)
        if group is None:
            if meta.run_id in self._evicted:
                raise RunEvicted(
                    f"run {meta.run_id} was evicted to make room for newer runs; start a new run"
                )
            if len(self._groups) >= self.max_runs:
                self._make_room(now_ns)
            group = RunGroup(meta.run_id, last_ns=now_ns)
            self._groups[meta.run_id] = group
            self._finished[meta.run_id] = None  # no open record yet
        key = (meta.protocol, meta.mode, meta.repetition)
        record = group.records.get(key)
        if record is None and len(group.records) >= self.max_records_per_run:
            raise RecordsFull(
                f"run {meta.run_id} already has {len(group.records)} records"
                f" (RECEIVER_MAX_RECORDS_PER_RUN={self.max_records_per_run})"
            )
        return group, record

    def add(self, group: RunGroup, key: RecordKey, record: RunRecord) -> None:
        """Add an open (incomplete) record to ``group``."""
        group.records[key] = record
        group.open += 1
        if group.open == 1:
            self._finished.pop(group.run_id, None)
            self._active[group.run_id] = None

    def touch(self, group: RunGroup, now_ns: int) -> None:
        """Mark activity: the run moves to the back of the idle order."""
        group.last_ns = now_ns
        if group.run_id in self._active:
            self._active.move_to_end(group.run_id)

    def closed(self, group: RunGroup) -> None:
        """One record of ``group`` became complete."""
        group.open -= 1
        if group.open == 0:
            self._active.pop(group.run_id, None)
            self._finished[group.run_id] = None

    def _make_room(self, now_ns: int) -> None:
        if self._finished:
            victim, state = next(iter(self._finished)), "finished"
        elif (
            self._active
            and now_ns - self._groups[next(iter(self._active))].last_ns >= self.idle_timeout_ns
        ):
            victim, state = next(iter(self._active)), "abandoned"
        else:
            raise RunsFull(
                f"all {self.max_runs} run slots hold live runs (RECEIVER_MAX_RUNS); retry later"
            )
        self._evict(victim, state)

    def _evict(self, run_id: str, state: str) -> None:
        del self._groups[run_id]
        self._finished.pop(run_id, None)
        self._active.pop(run_id, None)
        self._evicted[run_id] = None
        if len(self._evicted) > EVICTED_MEMORY:
            self._evicted.popitem(last=False)
        if self._on_evict is not None:
            self._on_evict(state)

    def records(self, run_id: str) -> list[RunRecord]:
        group = self._groups.get(run_id)
        return [] if group is None else list(group.records.values())

    def run_ids(self) -> list[str]:
        """Kept run ids, oldest created first."""
        return list(self._groups)

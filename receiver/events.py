"""What the receiver's sans-I/O step takes in and gives out, as plain values.

In: a :class:`Stamp` (receive-complete time on both clocks) and a :data:`Message`
(bytes, text, or an :class:`Assembled` upload). Out: an :class:`Outcome`, the
Ack bytes to answer with and the :data:`Event` values that happened, in order.
:class:`receiver.step.ReceiverStep` makes them; :class:`receiver.core.ReceiverCore`
(the edge) applies the events as metrics, spans, logs and saves. No I/O, no
telemetry: these are data, and :func:`error_ack` is the one answer to a refusal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imgbench import wire
from imgbench.errors import WireError
from imgbench.measure.results import Figures, Sample
from imgbench.wire import Clock, ImageMeta

if TYPE_CHECKING:  # a reference only: the edge computes a large record's figures
    from receiver.runs import RunRecord


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


#: What a transport hands over: a binary or text message, or a reassembled upload.
Message = bytes | str | Assembled

# -- events ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refused:
    """The message was refused; ``error.reason`` is the counted reason."""

    protocol: str
    error: WireError


@dataclass(frozen=True, slots=True)
class ProbeAnswered:
    """A clock probe was answered (the reply is the outcome's ack)."""

    protocol: str
    mode: str
    run_id: str


@dataclass(frozen=True, slots=True)
class RunEvicted:
    """A run was evicted from the table to make room; ``state``: finished or abandoned."""

    state: str


@dataclass(frozen=True, slots=True)
class ClockEstimateRefused:
    """Echoed probes did not give an estimate (reported once per distinct ``detail``)."""

    run_id: str
    protocol: str
    mode: str
    detail: str


@dataclass(frozen=True, slots=True)
class ClockEstimated:
    """The clock estimate of a complete record changed (a probe group after its last image)."""

    protocol: str
    mode: str
    clock: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ImageReceived:
    """An image passed every check up to hashing: the receive span's figures.

    Times in ns. ``shift`` is subtracted from this receiver's wall-clock span
    times to put them on the transmitter's wall clock (see
    :meth:`ReceiverStep.span_shift`); ``clock_attributes`` go on the span.
    """

    meta: ImageMeta
    stamp: Stamp
    image_bytes: int
    raw_ns: int
    transmission_ns: int
    checksum_ok: bool
    shift: int
    clock_attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IntegrityFailed:
    """Length or SHA-256 did not match: counted, never a sample."""

    meta: ImageMeta
    image_bytes: int


@dataclass(frozen=True, slots=True)
class WarmupReceived:
    """A warm-up image (counted, not measured)."""

    meta: ImageMeta


@dataclass(frozen=True, slots=True)
class SampleRecorded:
    """A measured image was added to its run record; ``transmission_s`` in seconds."""

    meta: ImageMeta
    sample: Sample
    transmission_s: float


@dataclass(frozen=True, slots=True)
class RunCompleted:
    """A record received all its images; its figures, per-sample times and clock.

    ``figures`` is None (and ``transmissions`` empty) for a record above
    :data:`receiver.runs.INLINE_FIGURES` samples: the edge computes them off the
    event loop with ``record.summary()``.
    """

    run_id: str
    protocol: str
    mode: str
    repetition: int
    figures: Figures | None
    transmissions: list[tuple[int, float]]
    clock: dict[str, Any]
    integrity_failures: int
    record: RunRecord | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class FiguresDue:
    """A large complete record's figures were cleared (new clock estimate): recompute them
    off the loop (``record.summary()``), keeping them if ``figures_version`` is ``version``."""

    record: RunRecord
    version: int


@dataclass(frozen=True, slots=True)
class SaveImage:
    """``--save-dir`` is set: the edge writes ``data`` after the ack (never inside the path)."""

    meta: ImageMeta
    data: bytes | memoryview


Event = (
    Refused
    | ProbeAnswered
    | RunEvicted
    | ClockEstimateRefused
    | ClockEstimated
    | ImageReceived
    | IntegrityFailed
    | WarmupReceived
    | SampleRecorded
    | RunCompleted
    | FiguresDue
    | SaveImage
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one message produced: the bytes to answer with and what happened, in order.

    ``error`` is set (and ``ack`` is :func:`error_ack` of it, the last event a
    :class:`Refused`) when the message was refused; ``meta`` is None when it
    could not be decoded.
    """

    #: The Ack bytes, or for a clock probe the function that serialises its reply.
    answer: bytes | Callable[[], bytes]
    events: tuple[Event, ...]
    meta: ImageMeta | None = None
    error: WireError | None = None

    @property
    def ack(self) -> bytes:
        """The bytes to send back.

        A probe reply is serialised when this is read, reading t3 then: the edge
        reads it after recording the events, just before sending, so that t3 is
        as late as possible (each read reads the clock again).
        """
        return self.answer() if callable(self.answer) else self.answer


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

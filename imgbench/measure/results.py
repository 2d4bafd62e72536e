"""The result model of a comparison, its figures, and its JSON form.

Definitions (all times in seconds, all clocks the message clock of the run):

* **transmission time** of an image: receive-complete on the receiver minus the
  scheduled send start on the transmitter. In the closed loop the scheduled
  start *is* the send start, so this is the time from the first byte being
  produced to the last byte being available to the receiver.
* **queue time**: send start minus scheduled send start (0 in the closed loop).
* **round-trip time**: acknowledgement received minus send start, on the
  transmitter (includes the receiver's checksum and the ack's trip back).
* **total transfer time**: last receive-complete minus first scheduled send
  start of the run; includes the delays between sends.
* **cumulative transmission time**: the sum of the transmission times.
* **throughput**: image bytes of all measured images divided by the cumulative
  transmission time, in MB/s (10^6 bytes per second).

Across two hosts the receive stamp is on the receiver's clock and the send stamp
on the transmitter's: the raw difference includes the offset between the clocks.
Such a sample carries ``transmission_ns``, the time corrected with the run's
clock estimate (:mod:`imgbench.measure.clock`), and ``bound_ns``, the largest
error of that correction; every figure above then uses the corrected times, and
``bound_s`` figures say how far they may be off. On a shared clock (one host)
nothing is corrected and the bound is 0. Round-trip time reads one clock and is
never corrected.

Warm-up images are kept in ``warmup_samples`` and excluded from all figures.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from imgbench.errors import ResultsError
from imgbench.measure.stats import Summary, summarize

SCHEMA: Final = "imgbench.result/1"
NS: Final = 1e9


@dataclass(frozen=True, slots=True)
class Sample:
    """One acknowledged image. Timestamps in ns on the run's message clock."""

    sequence: int
    scheduled_ns: int
    send_ns: int
    receive_ns: int
    ack_ns: int
    image_bytes: int
    message_bytes: int
    checksum_ok: bool
    #: Clock-corrected transmission time (ns), None when not corrected (shared or unknown offset).
    transmission_ns: int | None = None
    #: Largest error of ``transmission_ns`` (ns); 0 when exact.
    bound_ns: int = 0

    @property
    def raw_transmission_ns(self) -> int:
        """Receive stamp minus scheduled start as measured, offset included."""
        return self.receive_ns - self.scheduled_ns

    @property
    def transmission_s(self) -> float:
        """The corrected transmission time when there is one, else the raw one."""
        if self.transmission_ns is not None:
            return self.transmission_ns / NS
        return self.raw_transmission_ns / NS

    @property
    def arrival_ns(self) -> int:
        """Receive-complete time on the transmitter's clock (corrected when possible)."""
        if self.transmission_ns is not None:
            return self.scheduled_ns + self.transmission_ns
        return self.receive_ns

    @property
    def queue_s(self) -> float:
        return (self.send_ns - self.scheduled_ns) / NS

    @property
    def round_trip_s(self) -> float:
        return (self.ack_ns - self.send_ns) / NS


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one protocol run (see the module docstring)."""

    images: int
    transmission: Summary
    round_trip: Summary
    queue: Summary
    total_transfer_s: float
    cumulative_transmission_s: float
    throughput_mb_s: float
    #: Largest clock-correction bound of one transmission time (s); 0 when exact.
    transmission_bound_s: float = 0.0
    #: Bound of the cumulative transmission time (sum of the bounds, s).
    cumulative_bound_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "transmission_bound_s": self.transmission_bound_s,
            "cumulative_bound_s": self.cumulative_bound_s,
            "images": self.images,
            "transmission": self.transmission.as_dict(),
            "round_trip": self.round_trip.as_dict(),
            "queue": self.queue.as_dict(),
            "total_transfer_s": self.total_transfer_s,
            "cumulative_transmission_s": self.cumulative_transmission_s,
            "throughput_mb_s": self.throughput_mb_s,
        }


def compute_figures(samples: list[Sample]) -> Figures:
    """Figures of a non-empty list of measured samples."""
    if not samples:
        raise ValueError("no samples")
    transmission = [s.transmission_s for s in samples]
    cumulative = math.fsum(transmission)
    total_bytes = sum(s.image_bytes for s in samples)
    return Figures(
        images=len(samples),
        transmission=summarize(transmission),
        round_trip=summarize([s.round_trip_s for s in samples]),
        queue=summarize([s.queue_s for s in samples]),
        total_transfer_s=(max(s.arrival_ns for s in samples) - min(s.scheduled_ns for s in samples))
        / NS,
        cumulative_transmission_s=cumulative,
        throughput_mb_s=total_bytes / cumulative / 1e6 if cumulative > 0 else math.inf,
        transmission_bound_s=max(s.bound_ns for s in samples) / NS,
        cumulative_bound_s=sum(s.bound_ns for s in samples) / NS,
    )


@dataclass(slots=True)
class ProtocolRun:
    """One protocol's part of a comparison (one repetition)."""

    protocol: str
    mode: str
    compression: bool
    images: int
    warmup: int
    delay_s: float
    in_flight: int
    repetition: int
    position: int
    image_bytes: int
    message_bytes: int
    samples: list[Sample] = field(default_factory=list)
    warmup_samples: list[Sample] = field(default_factory=list)
    #: Resource costs measured around the run (CPU seconds, peak RSS bytes ...).
    costs: dict[str, float] = field(default_factory=dict)
    started_at: str = ""
    #: The run's clock estimate: ``status`` ("shared", "corrected", "uncorrected"),
    #: ``why`` when uncorrected, and the summary of
    #: :meth:`imgbench.measure.clock.RunClock.as_dict` (offset, bound, drift, groups).
    clock: dict[str, Any] = field(default_factory=dict)
    #: ``upload`` (transmitter is the client) or ``push`` (transmitter is the server).
    direction: str = "upload"

    @property
    def label(self) -> str:
        """``protocol/mode``, e.g. ``websocket/binary``."""
        return f"{self.protocol}/{self.mode}"

    def figures(self) -> Figures:
        return compute_figures(self.samples)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in _RUN_SCALARS}
        out["direction"] = self.direction
        out["samples"] = [asdict(s) for s in self.samples]
        out["warmup_samples"] = [asdict(s) for s in self.warmup_samples]
        out["costs"] = dict(self.costs)
        out["clock"] = dict(self.clock)
        out["figures"] = self.figures().as_dict() if self.samples else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProtocolRun:
        return cls(
            **{k: data[k] for k in _RUN_SCALARS},
            # Results written before push existed are uploads.
            direction=data.get("direction", "upload"),
            samples=[Sample(**s) for s in data["samples"]],
            warmup_samples=[Sample(**s) for s in data.get("warmup_samples", [])],
            costs=dict(data.get("costs", {})),
            clock=dict(data.get("clock", {})),
        )


_RUN_SCALARS: Final = (
    "protocol",
    "mode",
    "compression",
    "images",
    "warmup",
    "delay_s",
    "in_flight",
    "repetition",
    "position",
    "image_bytes",
    "message_bytes",
    "started_at",
)


@dataclass(slots=True)
class Comparison:
    """A whole comparison: settings, environment, and every protocol run."""

    run_id: str
    created_at: str
    settings: dict[str, Any]
    versions: dict[str, str]
    host: dict[str, Any]
    image: dict[str, Any]
    runs: list[ProtocolRun] = field(default_factory=list)
    #: The emulated link this comparison ran over (``imgbench compare --link``): its
    #: SPEC, its settings in SI units, and what the lab measured of it (RTT over the
    #: link, the forwarder's unshaped ceiling, the forwarder's packet counters).
    #: None on loopback or against an external receiver.
    link: dict[str, Any] | None = None
    #: Why the comparison stopped part-way (None when every run completed). The
    #: runs that did complete are kept and reported; this marks the result so no
    #: one mistakes it for a whole comparison.
    incomplete: str | None = None

    def labels(self) -> list[str]:
        """Distinct ``protocol/mode`` labels in first-run order."""
        return list(dict.fromkeys(r.label for r in self.runs))

    def samples_for(self, label: str) -> list[Sample]:
        """Measured samples of every repetition of ``label``, pooled."""
        return [s for r in self.runs if r.label == label for s in r.samples]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "settings": self.settings,
            "versions": self.versions,
            "host": self.host,
            "image": self.image,
            "runs": [r.to_dict() for r in self.runs],
            "link": self.link,
            "incomplete": self.incomplete,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not an imgbench result (schema {data.get('schema')!r})")
        return cls(
            run_id=data["run_id"],
            created_at=data["created_at"],
            settings=data["settings"],
            versions=data["versions"],
            host=data["host"],
            image=data["image"],
            runs=[ProtocolRun.from_dict(r) for r in data["runs"]],
            link=data.get("link"),
            incomplete=data.get("incomplete"),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Comparison:
        """Read a ``results.json``; :class:`ResultsError` (one line) says why it cannot."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ResultsError(f"{path} does not exist") from exc
        except IsADirectoryError as exc:
            raise ResultsError(f"{path} is a directory, not a results file") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ResultsError(f"cannot read {path}: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ResultsError(
                f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from exc
        except RecursionError as exc:
            raise ResultsError(f"{path} is not an imgbench result (nested too deep)") from exc
        if not isinstance(data, dict):
            raise ResultsError(
                f"{path} is not an imgbench result (a JSON {type(data).__name__}, not an object)"
            )
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ResultsError(f"{path} is not a usable imgbench result: {what}") from exc

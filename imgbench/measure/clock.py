"""Clock offset between transmitter and receiver from NTP-style probe exchanges.

Pure: no I/O, no clock reads. The transports take the stamps; this module only
does arithmetic on them, exactly (integers and fractions, no float rounding on
the way).

Conventions (the contract in ``proto/README.md`` says the same):

* Every time is an integer number of **nanoseconds**. ``t1`` and ``t4`` are read
  on the transmitter's clock, ``t2`` and ``t3`` on the receiver's, both of the
  clock kind the probe names (monotonic or realtime).
* **Offset** = receiver clock minus transmitter clock. A receive stamp minus a
  send stamp therefore overstates the transmission time by the offset.
* **Drift** = how fast the offset changes, per unit of transmitter time, in
  parts per million (1 ppm = 1 µs per second).

One probe ``(t1, t2, t3, t4)`` proves, without any assumption on the path, that
the offset lies in ``[t3 - t4, t2 - t1]``: the request cannot arrive before it
was sent, nor the reply before it left. That interval is exactly NTP's
``θ ± δ/2`` (θ its midpoint, δ its width). Late stamps (t2, t4 read after the
bytes arrived) or early ones (t1, t3 read before they left) only widen it, so
the interval stays valid however slow the stamping is.

Estimation (:func:`estimate_offset`): of a group of probes sent back to back,
keep the lowest-delay third. NTP's clock filter keeps the single lowest-delay
sample of its last 8 and Cristian's algorithm prefers the minimum-RTT exchange,
because the lowest-delay exchanges are the ones queueing disturbed least;
Crusader keeps the lowest third and averages it, which smooths stamp noise.
Here the kept probes' intervals are *intersected* rather than averaged: the
offset is the midpoint of the intersection and the bound its half-width, which
is never more than half the lowest probe delay (the asymmetry bound) and keeps
the guarantee that the true offset is inside. The third (rather than NTP's
single minimum) keeps several narrow intervals, so a lucky asymmetric probe
cannot dominate, and drops the wide ones that add nothing. Each interval is
widened by ``max_drift_ppm`` times its distance from the group's reference
time, so the drift inside a group cannot break the guarantee.

Over a run (:func:`estimate_run`): a group before the first image, one in each
pause, one after the last. Drift is the slope between the first and the last
group, with its own bound ``(b_first + b_last) / span``; between groups the
offset is interpolated linearly and its bound is the same interpolation of the
two groups' bounds. :meth:`RunClock.correct` turns a raw
``receiver_stamp - transmitter_stamp`` into a corrected transmission time and
its bound; :meth:`RunClock.check` also refuses one that is negative beyond its
bound. On one machine (:func:`shared_clock`: same boot id and every group's
offset within its bound of zero) the figures stay exact and uncorrected.

Assumption (stated in the report): the offset is linear in time between groups
and its slope never exceeds ``max_drift_ppm``. A clock step (NTP slewing a
realtime clock, a suspended VM) breaks it; the probes usually reveal that as
intervals that do not intersect, refused with :class:`ClockError`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

from imgbench.errors import ClockError
from imgbench.wire import names

__all__ = [
    "DEFAULT_MAX_DRIFT_PPM",
    "KEEP_FRACTION",
    "METHOD",
    "PROBES_PER_GROUP",
    "PROBE_REVISION",
    "ClockEstimate",
    "Probe",
    "RunClock",
    "combine_groups",
    "estimate_offset",
    "estimate_run",
    "shared_clock",
]

#: Share of each group's probes kept, lowest delay first (Crusader keeps the lowest third).
KEEP_FRACTION: Final = Fraction(1, 3)
#: Probes per group the transports send (NTP's clock filter holds 8 samples).
PROBES_PER_GROUP: Final = 8
#: Largest drift assumed inside a group and when no second group exists yet, in ppm:
#: RFC 5905's frequency tolerance (MAXFREQ, 500 ppm), the most NTP will ever correct.
DEFAULT_MAX_DRIFT_PPM: Final = 500
#: Revision of the contract that introduced clock probes (written once, in imgbench.wire.names).
PROBE_REVISION: Final = names.PROBE_REVISION
#: ``ClockEstimate.method`` of every estimate made here.
METHOD: Final = "lowest-delay third, interval intersection, linear drift"

_PPM: Final = 10**6


@functools.lru_cache(maxsize=8)
def _rate(max_drift_ppm: float) -> tuple[int, int]:
    """``max_drift_ppm / 1e6`` as an exact (numerator, denominator), denominator > 0."""
    rate = Fraction(max_drift_ppm) / _PPM
    return rate.numerator, rate.denominator


def _ns(name: str, value: object) -> int:
    # bool is an int subclass; a float would silently lose nanoseconds above 2**53.
    if type(value) is not int:
        raise ClockError(f"{name} must be an integer number of nanoseconds, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Probe:
    """One completed exchange, integer nanoseconds.

    ``t1``: transmitter's clock when it started sending the probe;
    ``t2``: receiver's clock when the probe was completely received;
    ``t3``: receiver's clock just before it sent the reply;
    ``t4``: transmitter's clock when the reply was completely received.

    Raises :class:`ClockError` for non-integer stamps, ``t4 < t1``, ``t3 < t2``,
    or a negative delay (the receiver held the probe longer than the round trip).
    """

    t1: int
    t2: int
    t3: int
    t4: int

    def __post_init__(self) -> None:
        for name in ("t1", "t2", "t3", "t4"):
            _ns(name, getattr(self, name))
        if self.t4 < self.t1:
            raise ClockError(
                f"probe reply received before it was sent: t4 {self.t4} < t1 {self.t1}"
            )
        if self.t3 < self.t2:
            raise ClockError(f"receiver replied before receiving: t3 {self.t3} < t2 {self.t2}")
        if self.delay_ns < 0:
            raise ClockError(
                f"negative probe delay {self.delay_ns} ns: the receiver held the probe"
                f" {self.t3 - self.t2} ns, longer than the round trip of {self.t4 - self.t1} ns"
            )

    @property
    def lower_ns(self) -> int:
        """Smallest offset consistent with the probe: ``t3 - t4`` (return delay >= 0)."""
        return self.t3 - self.t4

    @property
    def upper_ns(self) -> int:
        """Largest offset consistent with the probe: ``t2 - t1`` (outbound delay >= 0)."""
        return self.t2 - self.t1

    @property
    def delay_ns(self) -> int:
        """δ = (t4 - t1) - (t3 - t2): round trip without the receiver's hold time."""
        return (self.t4 - self.t1) - (self.t3 - self.t2)

    @property
    def offset_ns(self) -> Fraction:
        """θ = ((t2 - t1) + (t3 - t4)) / 2, exact (a half-integer at worst)."""
        return Fraction(self.upper_ns + self.lower_ns, 2)


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    """Receiver clock minus transmitter clock, with a bound that contains the truth.

    ``offset_ns`` holds at ``at_ns`` (transmitter clock); ``bound_ns`` >= 0 is
    the largest possible error (for a run: the largest over its groups).
    ``drift_ppm`` and its bound ``drift_bound_ppm`` are None when only one group
    exists. ``n_probes`` counts every probe, ``n_kept`` those used;
    ``min_delay_ns`` is the lowest probe delay. ``shared`` means one clock on one
    machine: figures are exact and were not corrected.
    """

    offset_ns: int
    bound_ns: int
    drift_ppm: float | None
    n_probes: int
    min_delay_ns: int
    shared: bool
    method: str
    drift_bound_ppm: float | None = None
    n_kept: int = 0
    at_ns: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (ints, floats, None, bool, str)."""
        return dataclasses.asdict(self)


def estimate_offset(
    probes: Sequence[Probe],
    *,
    keep: Fraction = KEEP_FRACTION,
    max_drift_ppm: float = DEFAULT_MAX_DRIFT_PPM,
) -> ClockEstimate:
    """The offset from one group of probes sent close together.

    Keeps the ``ceil(len * keep)`` lowest-delay probes (ties: first sent wins),
    widens each interval by ``max_drift_ppm`` times its distance from the group's
    reference time ``at_ns`` (midpoint of the kept probes' span), and
    intersects them. Raises :class:`ClockError` for an empty group or intervals
    that do not intersect (a clock stepped, or drift beyond ``max_drift_ppm``).
    """
    if not probes:
        raise ClockError("no clock probes: a group needs at least one")
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    if max_drift_ppm < 0:
        raise ValueError(f"max_drift_ppm must not be negative, got {max_drift_ppm}")
    count = max(1, math.ceil(len(probes) * keep))
    kept = sorted(probes, key=lambda p: p.delay_ns)[:count]
    at = (min(p.t1 for p in kept) + max(p.t4 for p in kept)) // 2
    # The widening is ceil(rate * distance) with rate = max_drift_ppm / 1e6, exact; in
    # integers (-(-a // b) is ceil(a / b)) because this runs for every probe a receiver
    # answers, and Fraction arithmetic cost ~10x more for the same result.
    num, den = _rate(max_drift_ppm)
    lower = upper = None
    for p in kept:
        widen = -(-num * max(abs(p.t1 - at), abs(p.t4 - at)) // den)
        lo, hi = p.lower_ns - widen, p.upper_ns + widen
        lower = lo if lower is None else max(lower, lo)
        upper = hi if upper is None else min(upper, hi)
    assert lower is not None and upper is not None
    if lower > upper:
        raise ClockError(
            f"clock probes disagree: their offset intervals do not intersect ({lower} > {upper}"
            f" ns); the clock stepped or drifts faster than {max_drift_ppm} ppm"
        )
    offset = (lower + upper) // 2
    return ClockEstimate(
        offset_ns=offset,
        bound_ns=upper - offset,  # >= offset - lower: the floor leans towards lower
        drift_ppm=None,
        n_probes=len(probes),
        min_delay_ns=kept[0].delay_ns,
        shared=False,
        method=METHOD,
        drift_bound_ppm=None,
        n_kept=count,
        at_ns=at,
    )


def shared_clock(
    transmitter_boot_id: str, receiver_boot_id: str, groups: Sequence[ClockEstimate]
) -> bool:
    """True when both sides read one clock: same non-empty boot id, every offset within its bound.

    A boot id alone is not enough: processes in different time namespaces share
    the boot id but not CLOCK_MONOTONIC.
    """
    return (
        bool(transmitter_boot_id)
        and transmitter_boot_id == receiver_boot_id
        and bool(groups)
        and all(abs(g.offset_ns) <= g.bound_ns for g in groups)
    )


@dataclass(frozen=True, slots=True)
class RunClock:
    """The offset over one protocol run, from its probe groups in time order.

    Build it with :func:`estimate_run`. ``groups`` are single-group estimates
    with strictly increasing ``at_ns``.
    """

    groups: tuple[ClockEstimate, ...]
    shared: bool
    max_drift_ppm: float = DEFAULT_MAX_DRIFT_PPM

    def _drift(self) -> tuple[Fraction, Fraction]:
        """(drift, its bound) as fractions: the first-to-last slope, or (0, max) for one group.

        The true drift lies within the slope's bound *and* within +-max_drift_ppm
        (assumed by the groups' widening): the interval used is their
        intersection, so groups too close together for a useful slope fall back
        to the assumed maximum instead of an unbounded rate.
        """
        first, last = self.groups[0], self.groups[-1]
        limit = Fraction(self.max_drift_ppm) / _PPM
        if first is last:
            return Fraction(0), limit
        span = last.at_ns - first.at_ns
        slope = Fraction(last.offset_ns - first.offset_ns, span)
        slope_bound = Fraction(first.bound_ns + last.bound_ns, span)
        low, high = max(slope - slope_bound, -limit), min(slope + slope_bound, limit)
        # estimate_run refused an empty intersection (low > high).
        return (low + high) / 2, (high - low) / 2

    def _line(self, at_ns: int) -> tuple[Fraction, Fraction]:
        """Offset at ``at_ns`` (transmitter clock) and its bound, exact."""
        groups = self.groups
        for a, b in itertools.pairwise(groups):
            if a.at_ns <= at_ns <= b.at_ns:
                lam = Fraction(at_ns - a.at_ns, b.at_ns - a.at_ns)
                return (
                    a.offset_ns + lam * (b.offset_ns - a.offset_ns),
                    (1 - lam) * a.bound_ns + lam * b.bound_ns,
                )
        # Before the first or after the last group: extrapolate with the run's drift.
        near = groups[0] if at_ns < groups[0].at_ns else groups[-1]
        drift, drift_bound = self._drift()
        dt = at_ns - near.at_ns
        return near.offset_ns + drift * dt, near.bound_ns + drift_bound * abs(dt)

    def offset_at(self, at_ns: int) -> tuple[int, int]:
        """``(offset_ns, bound_ns)`` at ``at_ns`` on the transmitter's clock, rounded outwards."""
        offset, bound = self._line(_ns("at_ns", at_ns))
        rounded = round(offset)
        return rounded, math.ceil(bound + abs(offset - rounded))

    def correct(self, raw_ns: int, at_ns: int) -> tuple[int, int]:
        """Corrected transmission time and its bound, integer nanoseconds.

        ``raw_ns`` = receiver stamp - transmitter stamp, as measured; ``at_ns`` =
        the transmitter stamp (the send or scheduled time). The receive stamp
        includes the offset at receive time, ``o(at) + drift * T``, so
        ``T = (raw - o(at)) / (1 + drift)``. The bound covers the offset's bound,
        the drift's bound over ``T``, and the rounding. On a shared clock the raw
        value is returned unchanged with bound 0.
        """
        raw = _ns("raw_ns", raw_ns)
        if self.shared:
            return raw, 0
        offset, offset_bound = self._line(_ns("at_ns", at_ns))
        drift, drift_bound = self._drift()
        slack = 1 - abs(drift) - drift_bound
        if slack <= 0:
            raise ClockError("clock drift too large to correct")
        excess = raw - offset
        value = excess / (1 + drift)
        # |T_true - T| <= |X_true - X| / (1 + D_true) + |X| * |1/(1 + D_true) - 1/(1 + D)|
        bound = offset_bound / slack + abs(excess) * drift_bound / (slack * (1 + drift))
        rounded = round(value)
        return rounded, math.ceil(bound + abs(value - rounded))

    def check(self, raw_ns: int, at_ns: int) -> tuple[int, int]:
        """:meth:`correct`, raising :class:`ClockError` when the time is negative beyond its bound.

        A message whose send stamp is later than its receive stamp by more than
        the clocks' uncertainty cannot be real: the receiver refuses it (reason
        ``clock``) instead of recording a negative time.
        """
        value, bound = self.correct(raw_ns, at_ns)
        if value + bound < 0:
            raise ClockError(
                f"transmission time {value} ns is negative beyond its bound of {bound} ns:"
                " the send time is later than the receive time"
            )
        return value, bound

    def summary(self) -> ClockEstimate:
        """One estimate for the report: offset at the first group, the largest bound, the drift."""
        first = self.groups[0]
        drift: float | None = None
        drift_bound: float | None = None
        if len(self.groups) > 1:
            d, u = self._drift()
            drift, drift_bound = float(d * _PPM), float(u * _PPM)
        return ClockEstimate(
            offset_ns=first.offset_ns,
            bound_ns=max(g.bound_ns for g in self.groups),
            drift_ppm=drift,
            n_probes=sum(g.n_probes for g in self.groups),
            min_delay_ns=min(g.min_delay_ns for g in self.groups),
            shared=self.shared,
            method=METHOD,
            drift_bound_ppm=drift_bound,
            n_kept=sum(g.n_kept for g in self.groups),
            at_ns=first.at_ns,
        )

    def as_dict(self) -> dict[str, Any]:
        """The summary plus every group, JSON-ready."""
        return {**self.summary().as_dict(), "groups": [g.as_dict() for g in self.groups]}


def estimate_run(
    groups: Sequence[Sequence[Probe]],
    *,
    transmitter_boot_id: str = "",
    receiver_boot_id: str = "",
    keep: Fraction = KEEP_FRACTION,
    max_drift_ppm: float = DEFAULT_MAX_DRIFT_PPM,
) -> RunClock:
    """Estimate every probe group of a run (in the order sent) and decide if the clock is shared.

    Raises :class:`ClockError` for no group, an empty group, groups out of time
    order, or a measured drift beyond ``max_drift_ppm`` between two groups (the
    widening inside each group assumed less).
    """
    if not groups:
        raise ClockError("no clock probe groups")
    estimates = tuple(estimate_offset(g, keep=keep, max_drift_ppm=max_drift_ppm) for g in groups)
    return combine_groups(
        estimates,
        transmitter_boot_id=transmitter_boot_id,
        receiver_boot_id=receiver_boot_id,
        max_drift_ppm=max_drift_ppm,
    )


def combine_groups(
    estimates: Sequence[ClockEstimate],
    *,
    transmitter_boot_id: str = "",
    receiver_boot_id: str = "",
    max_drift_ppm: float = DEFAULT_MAX_DRIFT_PPM,
) -> RunClock:
    """The run's clock from its groups' estimates (:func:`estimate_offset` of each, in order).

    The second half of :func:`estimate_run`, for a caller that keeps each
    group's estimate and re-estimates only the groups that changed (the
    receiver, after every probe): ``combine_groups([estimate_offset(g) for g in
    groups])`` is ``estimate_run(groups)``, refusals included. Raises
    :class:`ClockError` for no group, groups out of time order, or a measured
    drift beyond ``max_drift_ppm`` between two groups.
    """
    if not estimates:
        raise ClockError("no clock probe groups")
    num, den = _rate(max_drift_ppm)
    for a, b in itertools.pairwise(estimates):
        span = b.at_ns - a.at_ns
        if span <= 0:
            raise ClockError("clock probe groups are not in time order")
        excess = abs(b.offset_ns - a.offset_ns) - a.bound_ns - b.bound_ns
        # excess / span > num / den, in integers (span > 0, den > 0): one check per
        # pair of groups each time the receiver re-estimates.
        if excess * den > num * span:
            slope = Fraction(excess, span)
            raise ClockError(
                f"clock drift of at least {float(slope * _PPM):.1f} ppm between probe groups"
                f" exceeds the assumed maximum of {max_drift_ppm} ppm"
            )
    shared = shared_clock(transmitter_boot_id, receiver_boot_id, estimates)
    return RunClock(groups=tuple(estimates), shared=shared, max_drift_ppm=max_drift_ppm)

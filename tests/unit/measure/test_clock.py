"""imgbench.measure.clock: exact cases, synthetic clocks (hypothesis), boundaries, refusals."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgbench.errors import ClockError, WireError
from imgbench.measure.clock import (
    DEFAULT_MAX_DRIFT_PPM,
    METHOD,
    ClockEstimate,
    Probe,
    RunClock,
    combine_groups,
    estimate_offset,
    estimate_run,
    shared_clock,
)

SECOND = 10**9


def exact(t: int, offset: int, delay: int = 0) -> Probe:
    """A probe at ``t`` whose interval is ``[offset - delay/2, offset + delay/2]`` (hold 0)."""
    half = delay // 2
    return Probe(t, t + offset + half, t + offset + half, t + 2 * half)


# -- a synthetic pair of clocks ------------------------------------------------------


class World:
    """Transmitter clock = true time; receiver clock = t + offset + drift * (t - t0)."""

    def __init__(self, offset: int, drift: Fraction, t0: int) -> None:
        self.offset, self.drift, self.t0 = offset, drift, t0

    def receiver(self, t: Fraction | int) -> Fraction:
        return t + self.offset + self.drift * (t - self.t0)

    def true_offset(self, t: int) -> Fraction:
        return self.receiver(t) - t

    def probe(self, t1: int, out: int, hold: int, back: int) -> Probe:
        # Stamps are read after arrival (ceil) and before departure (floor), as real ones are.
        arrive = t1 + out
        depart = arrive + hold
        return Probe(
            t1, math.ceil(self.receiver(arrive)), math.floor(self.receiver(depart)), depart + back
        )

    def group(self, start: int, legs: list[tuple[int, int, int]]) -> tuple[list[Probe], int]:
        probes, t = [], start
        for out, hold, back in legs:
            p = self.probe(t, out, hold, back)
            probes.append(p)
            t = p.t4 + 1_000  # next probe 1 µs after the reply
        return probes, t


legs = st.lists(
    st.tuples(
        st.integers(1_000, 50_000_000),  # outbound one-way delay, up to 50 ms
        st.integers(2, 1_000_000),  # receiver hold time
        st.integers(1_000, 50_000_000),  # return delay: asymmetric on purpose
    ),
    min_size=1,
    max_size=10,
)
offsets = st.integers(-(10**13), 10**13)  # +-10000 s, e.g. the lab's 1000 s time namespace
drifts = st.integers(-200_000, 200_000).map(lambda d: Fraction(d, 10**9))  # +-200 ppm


# -- exact cases ---------------------------------------------------------------------


def test_one_probe_formulas_are_ntps() -> None:
    p = Probe(100, 1150, 1160, 230)
    assert p.offset_ns == 990  # ((1150 - 100) + (1160 - 230)) / 2
    assert p.delay_ns == 120  # (230 - 100) - (1160 - 1150)
    assert (p.lower_ns, p.upper_ns) == (930, 1050)  # θ -+ δ/2
    est = estimate_offset([p], max_drift_ppm=0)
    assert (est.offset_ns, est.bound_ns, est.min_delay_ns) == (990, 60, 120)
    assert (est.n_probes, est.n_kept, est.at_ns, est.drift_ppm) == (1, 1, 165, None)
    assert est.method == METHOD and not est.shared


def test_half_nanosecond_offset_is_rounded_inside_the_bound() -> None:
    p = Probe(0, 11, 11, 10)  # interval [1, 11]: θ 6, δ 10
    assert estimate_offset([p], max_drift_ppm=0).bound_ns == 5
    q = Probe(0, 12, 12, 11)  # interval [1, 12]: θ 6.5
    est = estimate_offset([q], max_drift_ppm=0)
    assert q.offset_ns == Fraction(13, 2)
    assert (est.offset_ns, est.bound_ns) == (6, 6)  # covers both ends 1 and 12


def test_keeps_the_lowest_delay_third() -> None:
    probes = [exact(0, 1000, d) for d in (600, 100, 500, 200, 400, 300)]
    est = estimate_offset(probes, max_drift_ppm=0)
    assert (est.n_kept, est.min_delay_ns, est.bound_ns) == (2, 100, 50)
    # Only the narrowest probe decides with 3 probes (ceil(3/3) = 1).
    est3 = estimate_offset([exact(0, 50, 90), exact(0, 0, 10), exact(0, 40, 80)], max_drift_ppm=0)
    assert (est3.offset_ns, est3.bound_ns, est3.n_kept) == (0, 5, 1)


def test_kept_intervals_are_intersected() -> None:
    a = Probe(0, 1000, 1000, 100)  # [900, 1000]
    b = Probe(0, 1100, 1100, 150)  # [950, 1100]
    est = estimate_offset([a, b], keep=Fraction(1), max_drift_ppm=0)
    assert (est.offset_ns, est.bound_ns) == (975, 25)


def test_two_groups_give_drift_and_interpolate() -> None:
    run = estimate_run([[exact(SECOND, 1000)], [exact(2 * SECOND, 2000)]])
    summary = run.summary()
    assert summary.drift_ppm == 1.0 and summary.drift_bound_ppm == 0.0
    assert (summary.offset_ns, summary.bound_ns, summary.n_probes) == (1000, 0, 2)
    assert run.offset_at(3 * SECOND // 2) == (1500, 0)
    assert run.offset_at(3 * SECOND) == (3000, 0)  # extrapolated with the drift
    # T = (raw - 1500) / (1 + 1e-6) = 9999.99 ns
    assert run.correct(11_500, 3 * SECOND // 2) == (10_000, 1)


def test_one_group_assumes_the_maximum_drift_away_from_it() -> None:
    run = estimate_run([[exact(SECOND, 7)]])
    assert run.offset_at(SECOND) == (7, 0)
    assert run.offset_at(2 * SECOND) == (7, DEFAULT_MAX_DRIFT_PPM * 1000)
    assert run.summary().drift_ppm is None
    value, bound = run.correct(1_000_007, SECOND)
    # 500 ppm of 1 ms, over (1 - 500 ppm) for a true rate anywhere in +-500 ppm: 500.25
    assert value == 1_000_000 and bound == 501


def test_interpolated_bound_between_groups() -> None:
    run = estimate_run([[exact(0, 0, 200)], [exact(SECOND, 0, 20)]], max_drift_ppm=0)
    assert [g.bound_ns for g in run.groups] == [100, 10]
    middle = (run.groups[0].at_ns + run.groups[1].at_ns) // 2  # the sum is even here
    assert run.offset_at(middle) == (0, 55)
    assert run.summary().bound_ns == 100


def test_as_dict_is_json() -> None:
    run = estimate_run([[exact(SECOND, 5, 10)], [exact(2 * SECOND, 5, 10)]])
    doc = json.loads(json.dumps(run.as_dict()))
    assert doc["offset_ns"] == 5 and doc["shared"] is False and len(doc["groups"]) == 2
    assert set(ClockEstimate.__dataclass_fields__) <= set(doc)


# -- shared clock ----------------------------------------------------------------------


def test_shared_clock_needs_same_boot_and_offset_within_bound() -> None:
    near_zero = estimate_offset([exact(0, 3, 10)], max_drift_ppm=0)  # |3| <= 5
    at_edge = estimate_offset([exact(0, 5, 10)], max_drift_ppm=0)  # |5| <= 5
    far = estimate_offset([exact(0, 1000 * SECOND, 10)], max_drift_ppm=0)
    assert shared_clock("boot-a", "boot-a", [near_zero, at_edge])
    assert not shared_clock("boot-a", "boot-b", [near_zero])
    assert not shared_clock("", "", [near_zero])  # unknown is not the same
    assert not shared_clock("boot-a", "boot-a", [near_zero, far])  # time namespace
    assert not shared_clock("boot-a", "boot-a", [])


def test_shared_clock_keeps_exact_figures() -> None:
    run = estimate_run([[exact(SECOND, 2, 10)]], transmitter_boot_id="b", receiver_boot_id="b")
    assert run.shared and run.summary().shared
    assert run.correct(123_456, 5 * SECOND) == (123_456, 0)
    assert run.check(0, SECOND) == (0, 0)
    with pytest.raises(ClockError, match=r"-1 ns is negative beyond its bound of 0 ns"):
        run.check(-1, SECOND)


def test_time_namespace_is_not_shared() -> None:
    run = estimate_run(
        [[exact(SECOND, 1000 * SECOND, 50_000)]], transmitter_boot_id="b", receiver_boot_id="b"
    )
    assert not run.shared
    at = run.groups[0].at_ns
    # Half the delay, plus 500 ppm over the probe's own 25 us either side of its midpoint.
    assert run.groups[0].bound_ns == 25_000 + 13
    # (25013 + 500 ppm x 30000) / (1 - 500 ppm) = 25040.5: the drift is unknown with one group.
    assert run.correct(1000 * SECOND + 30_000, at) == (30_000, 25_041)


# -- negative transmission times ---------------------------------------------------------


def test_negative_time_is_refused_only_beyond_the_bound() -> None:
    # One group and no drift allowed: the bound is exactly the group's 10 ns everywhere.
    run = estimate_run([[exact(SECOND, 5000, 20)]], max_drift_ppm=0)
    assert run.check(4990, 3 * SECOND) == (-10, 10)  # -10 within +-10: accepted
    with pytest.raises(ClockError, match=r"-11 ns is negative beyond its bound of 10 ns"):
        run.check(4989, 3 * SECOND)


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamps", "message"),
    [
        ((10, 0, 0, 9), r"reply received before it was sent: t4 9 < t1 10"),
        ((0, 10, 9, 20), r"replied before receiving: t3 9 < t2 10"),
        ((0, 10, 40, 20), r"negative probe delay -10 ns: the receiver held the probe 30 ns"),
        ((0.0, 1, 1, 2), r"t1 must be an integer number of nanoseconds, got 0\.0"),
        ((0, True, 1, 2), r"t2 must be an integer number of nanoseconds, got True"),
    ],
)
def test_invalid_probes_are_refused(stamps: tuple[int, int, int, int], message: str) -> None:
    with pytest.raises(ClockError, match=message):
        Probe(*stamps)


def test_zero_delay_and_zero_hold_are_valid() -> None:
    p = Probe(5, 5, 5, 5)
    assert (p.delay_ns, p.offset_ns) == (0, 0)
    assert Probe(0, 7, 17, 10).delay_ns == 0  # the receiver held it for the whole round trip


def test_group_and_run_refusals() -> None:
    with pytest.raises(ClockError, match="no clock probes"):
        estimate_offset([])
    with pytest.raises(ClockError, match="do not intersect"):
        estimate_offset([exact(0, 0), exact(10, 100)], keep=Fraction(1), max_drift_ppm=0)
    with pytest.raises(ValueError, match="keep must be in"):
        estimate_offset([exact(0, 0)], keep=Fraction(0))
    with pytest.raises(ClockError, match="no clock probe groups"):
        estimate_run([])
    with pytest.raises(ClockError, match="not in time order"):
        estimate_run([[exact(2 * SECOND, 0)], [exact(SECOND, 0)]])
    with pytest.raises(ClockError, match=r"drift of at least 1000\.0 ppm .* maximum of 500 ppm"):
        estimate_run([[exact(SECOND, 0)], [exact(2 * SECOND, 1_000_000)]])
    with pytest.raises(ClockError, match="raw_ns must be an integer"):
        estimate_run([[exact(SECOND, 0)]]).correct(1.5, SECOND)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    drift_ppm=st.one_of(
        st.integers(0, 10**6), st.floats(0, 10**4, allow_nan=False, allow_infinity=False)
    ),
    distance=st.integers(0, 10**15),
)
def test_integer_widening_is_the_exact_ceiling(drift_ppm: float, distance: int) -> None:
    """The widening in integers is ceil(rate * distance) with the exact Fraction rate."""
    # One probe [t1, t4] = [0, 2d]: interval [-2d, 0], reference time d, widened by
    # ceil(rate * d) on both sides, so the bound is d + that ceiling.
    est = estimate_offset([Probe(0, 0, 0, 2 * distance)], max_drift_ppm=drift_ppm)
    widen = math.ceil(Fraction(drift_ppm) / 10**6 * distance)
    assert (est.offset_ns, est.bound_ns, est.at_ns) == (-distance, distance + widen, distance)


def test_combine_groups_is_estimate_run() -> None:
    """combine_groups of each group's estimate_offset equals estimate_run, refusals included."""
    groups = [[exact(SECOND, 100, 40), exact(SECOND + 100, 90, 60)], [exact(3 * SECOND, 140, 20)]]
    run = estimate_run(groups, transmitter_boot_id="a", receiver_boot_id="a")
    assert (
        combine_groups(
            [estimate_offset(g) for g in groups], transmitter_boot_id="a", receiver_boot_id="a"
        )
        == run
    )
    assert not run.shared and run.groups[1].offset_ns == 140
    with pytest.raises(ClockError, match="no clock probe groups"):
        combine_groups([])
    backwards = [estimate_offset(g) for g in reversed(groups)]
    with pytest.raises(ClockError, match="not in time order"):
        combine_groups(backwards)
    too_fast = [estimate_offset([exact(SECOND, 0)]), estimate_offset([exact(2 * SECOND, 10**6)])]
    with pytest.raises(ClockError, match=r"drift of at least 1000\.0 ppm .* maximum of 500 ppm"):
        combine_groups(too_fast)
    # Exactly at the limit passes, one nanosecond over does not (the integer comparison).
    at_limit = [estimate_offset([exact(SECOND, 0)]), estimate_offset([exact(2 * SECOND, 500_000)])]
    assert combine_groups(at_limit).groups[1].offset_ns == 500_000
    over = [estimate_offset([exact(SECOND, 0)]), estimate_offset([exact(2 * SECOND, 500_001)])]
    with pytest.raises(ClockError, match=r"drift of at least 500\.0 ppm"):
        combine_groups(over)


def test_clock_errors_are_counted_like_wire_errors() -> None:
    assert issubclass(ClockError, WireError) and ClockError.reason == "clock"


# -- properties on synthetic clocks -----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    offset=offsets,
    drift=drifts,
    groups=st.lists(legs, min_size=1, max_size=4),
    pause=st.integers(1_000_000, 60 * SECOND),
    sends=st.lists(
        st.tuples(st.floats(-0.2, 1.2), st.integers(0, 5 * SECOND)), min_size=1, max_size=5
    ),
)
def test_true_offset_and_transmission_lie_within_the_bound(
    offset: int,
    drift: Fraction,
    groups: list[list[tuple[int, int, int]]],
    pause: int,
    sends: list[tuple[float, int]],
) -> None:
    t0 = 10**12
    world = World(offset, drift, t0)
    probes, t = [], t0
    for group_legs in groups:
        group, t = world.group(t, group_legs)
        probes.append(group)
        t += pause
    run = estimate_run(probes)
    first, last = run.groups[0].at_ns, run.groups[-1].at_ns
    for where, transmission in sends:
        at = first + round(where * max(last - first, SECOND))  # inside and beyond the groups
        estimate, bound = run.offset_at(at)
        assert abs(world.true_offset(at) - estimate) <= bound
        raw = math.ceil(world.receiver(at + transmission)) - at
        corrected, bound = run.correct(raw, at)
        # +1: the synthetic receive stamp itself is rounded up to a whole nanosecond.
        assert abs(corrected - transmission) <= bound + 1
        assert run.check(raw, at)[0] == corrected  # a real, non-negative time is never refused


@settings(max_examples=200, deadline=None)
@given(offset=offsets, legs_=legs)
def test_bound_is_at_most_half_the_lowest_delay(
    offset: int, legs_: list[tuple[int, int, int]]
) -> None:
    world = World(offset, Fraction(0), 0)
    probes, _ = world.group(10**12, legs_)
    est = estimate_offset(probes, max_drift_ppm=0)
    assert est.min_delay_ns == min(p.delay_ns for p in probes)
    assert est.bound_ns <= math.ceil(est.min_delay_ns / 2)
    assert abs(est.offset_ns - offset) <= est.bound_ns


@settings(max_examples=200, deadline=None)
@given(offset=offsets, legs_=legs, shrink=st.integers(1, 4))
def test_bound_shrinks_with_better_probes(
    offset: int, legs_: list[tuple[int, int, int]], shrink: int
) -> None:
    """Dividing every one-way delay by 2**shrink (same order) never widens the bound."""
    factor = 2**shrink
    world = World(offset, Fraction(0), 0)
    slow, _ = world.group(10**12, [(o * factor, h, b * factor) for o, h, b in legs_])
    fast, _ = world.group(10**12, legs_)
    before = estimate_offset(slow, max_drift_ppm=0)
    after = estimate_offset(fast, max_drift_ppm=0)
    assert after.bound_ns <= before.bound_ns
    assert after.min_delay_ns < before.min_delay_ns


@settings(max_examples=200, deadline=None)
@given(
    delays=st.lists(st.tuples(st.integers(0, 10**8), st.integers(0, 10**6)), min_size=1),
    raw=st.integers(-(10**9), 10**9),
)
def test_zero_offset_with_symmetric_delays_is_exact(
    delays: list[tuple[int, int]], raw: int
) -> None:
    world = World(0, Fraction(0), 0)
    probes, _ = world.group(10**12, [(d, hold, d) for d, hold in delays])
    run = estimate_run([probes])
    assert run.groups[0].offset_ns == 0
    assert run.correct(raw, run.groups[0].at_ns)[0] == raw


def test_runclock_is_frozen() -> None:
    run = estimate_run([[exact(SECOND, 0)]])
    assert isinstance(run, RunClock)
    with pytest.raises(AttributeError):
        run.shared = True  # type: ignore[misc]


# -- the contract (proto revision 2) ---------------------------------------------------


def test_probe_is_refused_by_a_revision_1_decoder_and_its_reply_round_trips() -> None:
    """Backwards compatibility: today's image decoder refuses a probe instead of recording it."""
    from imgbench import wire
    from imgbench.errors import InvalidField
    from imgbench.measure.clock import PROBE_REVISION
    from imgbench.v1.imgbench_pb2 import (
        Ack,
        Clock,
        ClockExchange,
        ClockProbe,
        ClockProbeReply,
        ImageMessage,
    )
    from imgbench.wire import protowire

    probe = ImageMessage(
        run_id="r1", protocol="grpc", mode="unary", total=3, send_time_ns=1_000,
        clock=Clock.CLOCK_MONOTONIC,
        probe=ClockProbe(id=7, revision=PROBE_REVISION, group=0,
                         completed=[ClockExchange(id=6, t1_ns=1, t2_ns=2, t3_ns=3, t4_ns=4)]),
    ).SerializeToString()  # fmt: skip
    # Revision 2 decodes it as a probe ...
    meta, _ = wire.decode_image(probe, max_bytes=1 << 20, protocol="grpc", mode="unary")
    assert meta.probe is not None and meta.probe.completed[0].t4 == 4
    # ... while a revision-1 decoder, which does not know field 14, sees an image
    # without a checksum and refuses it.
    seen_by_revision_1 = ImageMessage.FromString(probe)
    seen_by_revision_1.ClearField("probe")
    with pytest.raises(InvalidField, match="sha256 must be 32 bytes"):
        wire.decode_image(
            seen_by_revision_1.SerializeToString(), max_bytes=1 << 20, protocol="grpc",
            mode="unary",
        )  # fmt: skip
    # The probe field precedes data (14 < 15): the zero-copy split keeps it in the head.
    split = protowire.split_data(probe)
    assert split is not None and ImageMessage.FromString(split[0]).probe.id == 7
    reply = Ack(
        probe_reply=ClockProbeReply(
            id=7, receive_time_ns=5, reply_time_ns=6, clock=Clock.CLOCK_MONOTONIC,
            boot_id="b", revision=PROBE_REVISION,
        )
    ).SerializeToString()  # fmt: skip
    ack = wire.decode_ack(reply)
    assert ack.HasField("probe_reply") and ack.probe_reply.reply_time_ns == 6
    assert not wire.decode_ack(wire.encode_ack(
        sequence=0, receive_time_ns=1, bytes_received=0, checksum_ok=True,
        transmission_ns=1, warmup=False,
    )).HasField("probe_reply")  # fmt: skip


def _group(
    offset_ns: int, at_ns: int, *, bound_ns: int = 10, min_delay_ns: int = 30
) -> ClockEstimate:
    return ClockEstimate(
        offset_ns=offset_ns, bound_ns=bound_ns, drift_ppm=None, n_probes=8,
        min_delay_ns=min_delay_ns, shared=False, method=METHOD, n_kept=3, at_ns=at_ns,
    )  # fmt: skip


def test_two_groups_summary_and_extrapolation_on_each_side() -> None:
    # 1000 ns over 1 s: 1 ppm, each end +-10 ns, so the slope is known to +-0.02 ppm.
    run = combine_groups([_group(0, 0), _group(1000, SECOND, min_delay_ns=20)])
    assert run.summary() == ClockEstimate(
        offset_ns=0, bound_ns=10, drift_ppm=1.0, n_probes=16, min_delay_ns=20, shared=False,
        method=METHOD, drift_bound_ppm=pytest.approx(0.02), n_kept=6, at_ns=0,
    )  # fmt: skip
    assert run.offset_at(0) == (0, 10) and run.offset_at(SECOND) == (1000, 10)
    # Half-way: offset 0.5 rounds to 0, and the bound grows by the rounding.
    assert run.offset_at(SECOND // 2000) == (0, 11)
    # Outside, from the nearer group with the run's drift: 10 ns + 0.02 ppm * 1 s.
    assert run.offset_at(-SECOND) == (-1000, 30)
    assert run.offset_at(2 * SECOND) == (2000, 30)


def test_one_group_summary_has_no_drift() -> None:
    summary = combine_groups([_group(7, 5)]).summary()
    assert (summary.drift_ppm, summary.drift_bound_ppm, summary.at_ns) == (None, None, 5)


def test_clock_refusals_read_exactly() -> None:
    run = combine_groups([_group(0, 0), _group(1000, SECOND)])
    with pytest.raises(
        ClockError, match=r"^at_ns must be an integer number of nanoseconds, got 1\.5$"
    ):
        run.offset_at(1.5)  # type: ignore[arg-type]
    with pytest.raises(
        ClockError,
        match=r"^transmission time -1000999 ns is negative beyond its bound of 11 ns:"
        r" the send time is later than the receive time$",
    ):
        run.check(-(10**6), SECOND)
    with pytest.raises(ClockError, match=r"^no clock probe groups$"):
        estimate_run([])


def test_estimate_run_passes_keep_on() -> None:
    probes = [exact(SECOND + i * 1000, 500, delay=100 + i) for i in range(6)]
    assert estimate_run([probes]).groups[0].n_kept == 2
    assert estimate_run([probes], keep=Fraction(1)).groups[0].n_kept == 6

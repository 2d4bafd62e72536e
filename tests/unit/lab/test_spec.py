"""The link SPEC parser: values, units, refusals that name the key, round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgbench.errors import ConfigError
from imgbench.lab.spec import (
    DEFAULT_MTU,
    DEFAULT_QUEUE_PACKETS,
    MAX_MTU,
    MIN_MTU,
    LinkSpec,
    parse_link,
)


def test_the_issue_example_parses_to_si_units() -> None:
    spec = parse_link("rtt=40ms,rate=100mbit,clock-offset=1000s")
    assert spec == LinkSpec(rtt=0.04, rate=100e6, clock_offset=1000.0)
    assert spec.one_way_delay == pytest.approx(0.02)


def test_every_key_and_unit() -> None:
    spec = parse_link(
        " rtt = 1.5s , rate=500kbit, jitter=250us, loss=0.1%, clock-offset=-5s, mtu=9000,"
        " queue=50, seed=7"
    )
    assert spec.rtt == 1.5
    assert spec.rate == 500e3
    assert spec.jitter == pytest.approx(250e-6)
    assert spec.loss == pytest.approx(0.001)
    assert spec.clock_offset == -5.0
    assert (spec.mtu, spec.queue, spec.seed) == (9000, 50, 7)
    assert parse_link("rate=1gbit").rate == 1e9
    assert parse_link("rate=64000bit").rate == 64000
    assert parse_link("RTT=10MS").rtt == pytest.approx(0.01)


def test_empty_spec_is_an_ideal_link_with_defaults() -> None:
    spec = parse_link("")
    assert spec.is_ideal
    assert (spec.rtt, spec.rate, spec.loss, spec.clock_offset) == (0.0, None, 0.0, 0.0)
    assert (spec.mtu, spec.queue) == (DEFAULT_MTU, DEFAULT_QUEUE_PACKETS) == (1500, 1000)
    assert parse_link("rtt=0").rtt == 0.0
    assert not parse_link("rtt=1ms").is_ideal


@pytest.mark.parametrize(
    ("text", "setting", "why"),
    [
        ("bandwidth=1mbit", "link.bandwidth", "unknown key"),
        ("rtt", "link", "not key=value"),
        ("=5ms", "link", "not key=value"),
        ("rtt=", "link.rtt", "no value"),
        ("rtt=40", "link.rtt", "duration unit"),
        ("rtt=40min", "link.rtt", "duration unit"),
        ("rtt=-1ms", "link.rtt", "negative"),
        ("rtt=11s", "link.rtt", "at most"),
        ("rtt=fast", "link.rtt", "not a number"),
        ("rtt=nanms", "link.rtt", "not a number"),
        ("rtt=1ms,rtt=2ms", "link.rtt", "more than once"),
        ("rtt=1ms,,rate=1mbit", "link", "empty item"),
        ("rate=100", "link.rate", "rate unit"),
        ("rate=100mbps", "link.rate", "ambiguous"),
        ("rate=0mbit", "link.rate", "at least"),
        ("rate=-5mbit", "link.rate", "at least"),
        ("rate=2000gbit", "link.rate", "at most"),
        ("jitter=-1ms", "link.jitter", "negative"),
        ("loss=5", "link.loss", "percent"),
        ("loss=100%", "link.loss", "below 100%"),
        ("loss=-1%", "link.loss", "at least 0%"),
        ("clock-offset=5", "link.clock-offset", "duration unit"),
        ("mtu=575", "link.mtu", "576..65535"),
        ("mtu=65536", "link.mtu", "576..65535"),
        ("mtu=1500.5", "link.mtu", "whole number"),
        ("queue=0", "link.queue", "packets"),
        ("seed=-1", "link.seed", "non-negative"),
    ],
)
def test_bad_input_names_the_key_and_why(text: str, setting: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_link(text)
    assert caught.value.setting == setting
    assert why in caught.value.reason


@pytest.mark.parametrize("mtu", [MIN_MTU, MAX_MTU])
def test_mtu_bounds_are_inclusive(mtu: int) -> None:
    assert parse_link(f"mtu={mtu}").mtu == mtu


def test_loss_just_below_100_percent_is_accepted() -> None:
    assert parse_link("loss=99.999%").loss == pytest.approx(0.99999)


def test_the_dataclass_validates_direct_construction_too() -> None:
    with pytest.raises(ConfigError, match=r"link\.rtt"):
        LinkSpec(rtt=math.inf)
    with pytest.raises(ConfigError, match=r"link\.loss"):
        LinkSpec(loss=1.0)


durations = st.floats(min_value=0, max_value=10, allow_nan=False)
specs = st.builds(
    LinkSpec,
    rtt=durations,
    rate=st.none() | st.floats(min_value=8e3, max_value=1e12),
    jitter=durations,
    loss=st.floats(min_value=0, max_value=0.99),
    clock_offset=st.floats(min_value=-1e9, max_value=1e9),
    mtu=st.integers(MIN_MTU, MAX_MTU),
    queue=st.integers(1, 1_000_000),
    seed=st.integers(0, 2**32),
)


@given(specs)
def test_render_parses_back_to_the_same_spec(spec: LinkSpec) -> None:
    again = parse_link(spec.render())
    assert again.loss == pytest.approx(spec.loss, rel=1e-12, abs=1e-15)
    assert again == LinkSpec(**{**_fields(spec), "loss": again.loss})


@given(st.text(max_size=60))
def test_arbitrary_text_either_parses_or_raises_config_error(text: str) -> None:
    try:
        spec = parse_link(text)
    except ConfigError as exc:
        assert exc.setting.startswith("link")
        assert exc.reason
    else:
        assert isinstance(spec, LinkSpec)


@given(st.floats(min_value=0, max_value=10_000), st.sampled_from(["s", "ms", "us"]))
def test_durations_scale_by_their_unit(number: float, unit: str) -> None:
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6}[unit]
    if number * scale > 10:
        with pytest.raises(ConfigError, match="at most"):
            parse_link(f"rtt={number!r}{unit}")
    else:
        assert parse_link(f"rtt={number!r}{unit}").rtt == pytest.approx(number * scale)


def _fields(spec: LinkSpec) -> dict[str, object]:
    return {name: getattr(spec, name) for name in LinkSpec.__dataclass_fields__}


@pytest.mark.parametrize(
    ("text", "setting", "reason"),
    [
        ("rtt=-1ms", "link.rtt", "must not be negative, got -0.001 s"),
        ("rate=7999bit", "link.rate", "must be at least 8000 bit/s, got 7999 bit/s"),
        ("rtt=11s", "link.rtt", "must be at most 10 s, got 11 s"),
        ("jitter=10.001s", "link.jitter", "must be at most 10 s, got 10.001 s"),
        ("loss=100%", "link.loss", "must be at least 0% and below 100%, got 100.000000%"),
        ("loss=-1%", "link.loss", "must be at least 0% and below 100%, got -1.000000%"),
        ("mtu=575", "link.mtu", "must be 576..65535 bytes, got 575"),
        ("queue=0", "link.queue", "must be 1..1000000 packets, got 0"),
        ("queue=1000001", "link.queue", "must be 1..1000000 packets, got 1000001"),
        ("seed=-1", "link.seed", "must be a non-negative integer, got -1"),
        ("rtt=fast", "link.rtt", "'fast' is not a number with a unit"),
        ("rtt=1e999ms", "link.rtt", "'1e999ms' is not a finite number"),
        ("rtt=40", "link.rtt", "'40' needs a duration unit: s, ms or us (e.g. 40ms)"),
        ("rate=100", "link.rate", "'100' needs a rate unit: bit, kbit, mbit or gbit"),
        (
            "rate=100mbps",
            "link.rate",
            "'100mbps' is ambiguous (tc reads mbps as bytes per second): "
            "write bit, kbit, mbit or gbit",
        ),
        ("loss=5", "link.loss", "'5' needs a percent sign (e.g. 0.1%)"),
        ("mtu=1500.5", "link.mtu", "'1500.5' is not a whole number"),
        ("rtt=1ms,", "link", "empty item in 'rtt=1ms,' (stray comma?)"),
        ("rtt", "link", "'rtt' is not key=value"),
        (
            "bandwidth=1mbit",
            "link.bandwidth",
            "unknown key; known keys: rtt, rate, jitter, loss, clock-offset, mtu, queue, seed",
        ),
        ("seed=1,seed=2", "link.seed", "given more than once"),
        ("mtu= ", "link.mtu", "has no value"),
    ],
)
def test_each_refusal_reads_exactly(text: str, setting: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_link(text)
    assert (caught.value.setting, caught.value.reason) == (setting, reason)


def test_a_non_finite_field_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        LinkSpec(jitter=math.nan)
    assert (caught.value.setting, caught.value.reason) == (
        "link.jitter",
        "must be a finite number, got nan",
    )


def test_every_range_is_inclusive_at_both_ends() -> None:
    edges = parse_link("rtt=10s,jitter=10s,rate=8000bit,queue=1000000,seed=0,loss=0%")
    assert (edges.rtt, edges.jitter, edges.rate, edges.queue, edges.seed) == (
        10.0, 10.0, 8000.0, 1_000_000, 0,
    )  # fmt: skip
    assert parse_link("rate=1000gbit,queue=1").rate == 1e12
    assert parse_link("clock-offset=1000000000s").clock_offset == 1e9
    assert parse_link("clock-offset=-1000000000s").clock_offset == -1e9
    for text, setting in (
        ("rate=1000000000001bit", "link.rate"),
        ("clock-offset=1000000001s", "link.clock-offset"),
        ("clock-offset=-1000000001s", "link.clock-offset"),
        ("jitter=11s", "link.jitter"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_link(text)
        assert caught.value.setting == setting


def test_ideal_means_no_delay_shaping_jitter_or_loss() -> None:
    assert parse_link(" ").is_ideal
    assert LinkSpec(clock_offset=5.0, mtu=9000, queue=10, seed=3).is_ideal
    for spec in (
        LinkSpec(rtt=0.001),
        LinkSpec(rate=1e6),
        LinkSpec(jitter=0.001),
        LinkSpec(loss=0.01),
    ):
        assert not spec.is_ideal, spec


def test_render_writes_each_changed_field_with_its_unit() -> None:
    spec = LinkSpec(
        rtt=0.04, rate=1e8, jitter=0.002, loss=0.001, clock_offset=-5.0, mtu=9000, queue=50, seed=7
    )
    assert spec.render() == (
        "rtt=0.04s,rate=100000000.0bit,jitter=0.002s,loss=0.1%,clock-offset=-5.0s,"
        "mtu=9000,queue=50,seed=7"
    )
    assert LinkSpec().render() == ""
    assert LinkSpec(mtu=DEFAULT_MTU, queue=DEFAULT_QUEUE_PACKETS, seed=1).render() == "seed=1"
    assert parse_link(spec.render()) == spec


@pytest.mark.parametrize(
    ("text", "setting", "reason"),
    [
        ("clock-offset=1000000001s", "link.clock-offset", "must be at most 1e+09 s, got 1e+09 s"),
        ("rate=fast", "link.rate", "'fast' is not a number with a unit"),
        ("loss=some%", "link.loss", "'some%' is not a number with a unit"),
        ("rtt=1ms=2", "link.rtt", "'1ms=2' is not a number with a unit"),
    ],
)
def test_refusals_name_the_key_they_came_from(text: str, setting: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_link(text)
    assert (caught.value.setting, caught.value.reason) == (setting, reason)


@pytest.mark.parametrize("unit", ["bps", "kbps", "mbps", "gbps", "KBPS"])
def test_every_tc_bytes_per_second_unit_is_ambiguous(unit: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_link(f"rate=5{unit}")
    assert caught.value.reason == (
        f"'5{unit}' is ambiguous (tc reads {unit.lower()} as bytes per second): "
        "write bit, kbit, mbit or gbit"
    )

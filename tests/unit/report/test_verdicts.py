"""Verdict rules: minimum n, method stated, repetitions resampled or their spread shown."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from imgbench.measure.results import ProtocolRun, Sample
from imgbench.measure.stats import (
    MIN_REPETITIONS_TO_RESAMPLE,
    MIN_SAMPLES_PER_GROUP,
    RatioCI,
    bootstrap_ratio_ci,
    cluster_bootstrap_ratio_ci,
)
from imgbench.report import compare_results, write_outputs
from imgbench.report.model import _label_figures, compact_table
from imgbench.report.runs import regressions
from imgbench.report.verdicts import (
    BOOTSTRAP_CONFIDENCE,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CLUSTER_RESAMPLES,
    Verdict,
    _ms_text,
    compare_groups,
    headline,
    verdicts,
)

from helpers.synthetic import comparison

WS, GRPC = "websocket/binary", "grpc/unary"


def test_below_the_minimum_there_is_no_interval_and_the_reason_gives_n() -> None:
    (v,) = verdicts(comparison({WS: [1.0], GRPC: [3.0]}, images=MIN_SAMPLES_PER_GROUP - 1))
    assert v.outcome == "too few samples" and v.ci is None and v.faster is None
    assert f"too few samples for a verdict (n={MIN_SAMPLES_PER_GROUP - 1}" in v.text
    assert "CI" not in v.text
    assert v.as_dict()["ci_low"] is None and v.as_dict()["n"] == {WS: 9, GRPC: 9}


def test_at_the_minimum_a_clear_difference_gets_a_verdict_with_its_method() -> None:
    (v,) = verdicts(comparison({WS: [1.0], GRPC: [3.0]}, images=MIN_SAMPLES_PER_GROUP))
    assert v.outcome == "faster" and v.faster == WS
    assert v.ci is not None and v.ci.high < 1.0
    assert v.text.startswith(f"{WS} is ") and "x faster than grpc/unary (95% CI" in v.text
    assert "ratio of median transmission times, n=10 vs 10, 1 repetition" in v.method
    assert "percentile bootstrap, 10000 resamples of the samples" in v.method


def test_equal_groups_show_no_significant_difference() -> None:
    (v,) = verdicts(comparison({WS: [2.0], GRPC: [2.0]}, images=40, seed=3))
    assert v.outcome == "no significant difference" and v.faster is None
    assert v.ci is not None and v.ci.low < 1.0 < v.ci.high


def test_five_repetitions_resample_repetitions() -> None:
    reps = MIN_REPETITIONS_TO_RESAMPLE
    (v,) = verdicts(comparison({WS: [1.0] * reps, GRPC: [2.0] * reps}, images=10))
    assert v.resampling == "repetitions" and v.repetitions == reps
    assert "of whole repetitions (cluster bootstrap)" in v.method
    assert v.outcome == "faster" and len(v.per_repetition) == reps


def test_repetition_drift_widens_the_cluster_interval() -> None:
    # The same pooled data, but one side drifts between repetitions: resampling
    # repetitions must see that variance, pooling the samples does not.
    steady = comparison({WS: [1.0] * 6, GRPC: [1.2] * 6}, images=30, sigma=0.05)
    drift = comparison({WS: [0.6, 1.4, 0.7, 1.3, 0.8, 1.2], GRPC: [1.2] * 6}, images=30, sigma=0.05)
    (vs,), (vd,) = verdicts(steady), verdicts(drift)
    assert vs.ci is not None and vd.ci is not None
    assert vs.outcome == "faster" and vd.outcome == "no significant difference"
    assert math.log(vd.ci.high / vd.ci.low) > 10 * math.log(vs.ci.high / vs.ci.low)
    # Pooling the drifting samples would have claimed a difference.
    pooled = bootstrap_ratio_ci(
        [s.transmission_s for s in drift.samples_for(WS)],
        [s.transmission_s for s in drift.samples_for(GRPC)],
    )
    assert pooled.significant


def test_few_repetitions_that_disagree_give_no_verdict() -> None:
    # Pooled, A looks faster; but repetition 2 has A slower: no verdict.
    c = comparison({WS: [1.0, 1.0, 2.6], GRPC: [2.0, 2.0, 2.0]}, images=20, sigma=0.05)
    (v,) = verdicts(c)
    assert v.resampling == "samples" and v.repetitions == 3
    assert v.outcome == "inconsistent across repetitions" and v.faster is None
    assert "repetitions disagree" in v.text
    assert "repetitions pooled" in v.method and "per-repetition ratios 0.50-1.30" in v.method


def test_throughput_on_the_median_basis_resists_one_outlier() -> None:
    c = comparison({WS: [1.0], GRPC: [1.0]}, images=20, sigma=0.01)
    run = c.runs[0]
    s = run.samples[0]
    late = 200 * 10**6
    run.samples[0] = type(s)(s.sequence, s.scheduled_ns, s.send_ns, s.scheduled_ns + late,
                             s.ack_ns + late, s.image_bytes, s.message_bytes, True)  # fmt: skip
    ws, grpc = _label_figures(c)
    assert ws.pooled is not None and grpc.pooled is not None
    # bytes / cumulative time: the 200 ms outlier cuts WebSocket's figure ~10x ...
    assert grpc.pooled.throughput_mb_s / ws.pooled.throughput_mb_s > 5
    # ... the median basis barely moves, and agrees with the verdict (no difference).
    assert math.isclose(ws.robust_throughput_mb_s, grpc.robust_throughput_mb_s, rel_tol=0.05)
    rows = {r[0]: r[1:] for r in compact_table(c).rows}
    assert "throughput, median (MB/s)" in rows


def test_results_json_carries_the_verdicts(tmp_path: Path) -> None:
    c = comparison({WS: [1.0], GRPC: [3.0]}, images=12)
    write_outputs(c, tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    (v,) = data["verdicts"]
    assert v["outcome"] == "faster" and v["faster"] == WS and v["n"] == {WS: 12, GRPC: 12}
    assert v["ci_low"] < v["ratio"] < v["ci_high"] < 1


def test_two_runs_regression_and_no_silent_overwrite(tmp_path: Path) -> None:
    a = comparison({WS: [1.0], GRPC: [1.0]}, images=20, run_id="a", seed=1)
    b = comparison({WS: [1.5], GRPC: [1.0]}, images=20, run_id="b", seed=2,
                   versions={"imgbench": "0.2.0"})  # fmt: skip
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    out = tmp_path / "ab"
    written = compare_results(tmp_path / "a.json", tmp_path / "b.json", out)
    by_label = {v.b.removeprefix("A "): v for v in written.verdicts}
    assert by_label[WS].outcome == "slower" and by_label[GRPC].outcome != "slower"
    assert [v.a for v in regressions(written.verdicts)] == [f"B {WS}"]
    before = (out / "compare.md").read_text()
    with pytest.raises(FileExistsError):
        compare_results(tmp_path / "a.json", tmp_path / "a.json", out)
    assert (out / "compare.md").read_text() == before
    assert "versions.imgbench" in before and "port" not in before
    compare_results(tmp_path / "a.json", tmp_path / "a.json", out, overwrite=True)
    assert (out / "compare.md").read_text() != before


# Direct tests of the rules, on exact times (from mutmut survivors).

NS = 1_000_000_000


def _run(label: str, times_s: list[float], repetition: int = 0) -> ProtocolRun:
    protocol, mode = label.split("/")
    samples = [
        Sample(i, 0, 0, 0, 0, 100, 130, True, transmission_ns=round(t * NS))
        for i, t in enumerate(times_s)
    ]
    return ProtocolRun(
        protocol=protocol, mode=mode, compression=False, images=len(times_s), warmup=0,
        delay_s=0.0, in_flight=1, repetition=repetition, position=0, image_bytes=100,
        message_bytes=130, samples=samples,
    )  # fmt: skip


def _spread(median_ms: float, n: int = MIN_SAMPLES_PER_GROUP) -> list[float]:
    """n distinct times (s) around ``median_ms``, +-10 %, median exactly ``median_ms``."""
    half = n // 2
    step = 0.1 * median_ms / max(half, 1)
    offset = 0.0 if n % 2 else 0.5
    ms = [median_ms + (i - half + offset) * step for i in range(n)]
    return [round(m * 1e6) / NS for m in ms]  # whole ns, as the samples hold them


def test_as_dict_gives_every_field_exactly() -> None:
    ci = RatioCI(ratio=0.5, low=0.4, high=0.6, confidence=0.95, resamples=10_000)
    v = Verdict(a=WS, b=GRPC, n_a=10, n_b=12, repetitions=2, resampling="samples",
                outcome="faster", ci=ci, reason=None, median_a_s=0.001, median_b_s=0.002,
                per_repetition=(0.45, 0.55))  # fmt: skip
    assert v.as_dict() == {
        "a": WS,
        "b": GRPC,
        "outcome": "faster",
        "faster": WS,
        "statistic": "ratio of median transmission times (a / b)",
        "ratio": 0.5,
        "ci_low": 0.4,
        "ci_high": 0.6,
        "confidence": 0.95,
        "resamples": 10_000,
        "resampling": "samples",
        "n": {WS: 10, GRPC: 12},
        "min_n": MIN_SAMPLES_PER_GROUP,
        "repetitions": 2,
        "per_repetition_ratios": [0.45, 0.55],
        "median_s": {WS: 0.001, GRPC: 0.002},
        "text": v.text,
        "method": v.method,
        "reason": None,
    }
    assert v.text.startswith(f"{WS} is 2.00x faster than {GRPC}")
    assert v.method.endswith("per-repetition ratios 0.45-0.55")


def test_as_dict_without_an_interval_has_none_in_every_interval_field() -> None:
    v = Verdict(a=WS, b=GRPC, n_a=3, n_b=4, repetitions=1, resampling="samples",
                outcome="no ratio", ci=None, reason="zero times", median_a_s=0.0,
                median_b_s=0.0)  # fmt: skip
    d = v.as_dict()
    assert [d[k] for k in ("ratio", "ci_low", "ci_high", "confidence", "resamples")] == [None] * 5
    assert d["faster"] is None and d["reason"] == "zero times" and d["per_repetition_ratios"] == []
    assert d["text"] == f"{WS} vs {GRPC}: no ratio (zero times)"
    assert d["method"] == "ratio of median transmission times, n=3 vs 4, 1 repetition"


def test_compare_groups_is_none_when_either_side_has_no_sample() -> None:
    some = [_run(WS, _spread(1.0))]
    assert compare_groups(WS, GRPC, some, [_run(GRPC, [])]) is None
    assert compare_groups(WS, GRPC, [_run(WS, [])], some) is None
    assert compare_groups(WS, GRPC, [], some) is None


@pytest.mark.parametrize("side", ["a", "b"])
def test_one_group_below_the_minimum_is_enough_for_no_verdict(side: str) -> None:
    few, many = _spread(1.0, MIN_SAMPLES_PER_GROUP - 1), _spread(3.0, 40)
    ta, tb = (few, many) if side == "a" else (many, few)
    v = compare_groups(WS, GRPC, [_run(WS, ta)], [_run(GRPC, tb)])
    assert v is not None and v.outcome == "too few samples" and v.ci is None
    assert v.resampling == "samples" and v.repetitions == 1 and v.per_repetition == ()
    assert v.reason == f"fewer than {MIN_SAMPLES_PER_GROUP} measured samples in a group"
    assert (v.n_a, v.n_b) == (len(ta), len(tb))
    assert v.median_a_s == statistics.median(ta) and v.median_b_s == statistics.median(tb)


def test_exactly_the_minimum_on_both_sides_gives_the_bootstrap_of_the_samples() -> None:
    ta, tb = _spread(1.0), _spread(3.0)
    v = compare_groups(WS, GRPC, [_run(WS, ta)], [_run(GRPC, tb)])
    assert v is not None and v.outcome == "faster" and v.faster == WS and v.reason is None
    assert v.ci == bootstrap_ratio_ci(
        ta, tb, resamples=BOOTSTRAP_RESAMPLES, confidence=BOOTSTRAP_CONFIDENCE, seed=BOOTSTRAP_SEED
    )
    assert (BOOTSTRAP_RESAMPLES, BOOTSTRAP_CONFIDENCE, BOOTSTRAP_SEED) == (10_000, 0.95, 0)
    assert v.median_a_s == pytest.approx(0.001) and v.median_b_s == pytest.approx(0.003)
    w = compare_groups(GRPC, WS, [_run(GRPC, tb)], [_run(WS, ta)])
    assert w is not None and w.outcome == "slower" and w.faster == WS


def test_repetitions_count_only_pairs_and_one_pair_shows_no_ratios() -> None:
    # Repetition 0 on one side, 1 on the other: nothing pairs, counted as 1.
    v = compare_groups(WS, GRPC, [_run(WS, _spread(1.0), 0)], [_run(GRPC, _spread(3.0), 1)])
    assert v is not None and v.repetitions == 1 and v.per_repetition == ()
    # One pair (and an empty run, which is not a repetition): no per-repetition ratios.
    v = compare_groups(WS, GRPC, [_run(WS, _spread(1.0), 0), _run(WS, [], 1)],
                       [_run(GRPC, _spread(3.0), 0), _run(GRPC, _spread(3.0), 1)])  # fmt: skip
    assert v is not None and v.repetitions == 1 and v.per_repetition == ()


def test_two_pairs_give_exact_per_repetition_ratios_in_repetition_order() -> None:
    runs_a = [_run(WS, _spread(2.0), 1), _run(WS, _spread(1.0), 0)]
    runs_b = [_run(GRPC, _spread(4.0), 0), _run(GRPC, _spread(4.0), 1)]
    v = compare_groups(WS, GRPC, runs_a, runs_b)
    assert v is not None and v.repetitions == 2 and v.resampling == "samples"
    assert v.per_repetition == pytest.approx((0.25, 0.5))
    assert v.n_a == v.n_b == 2 * MIN_SAMPLES_PER_GROUP


def test_a_repetition_with_a_zero_median_is_left_out_of_the_ratios() -> None:
    zero = [0.0] * MIN_SAMPLES_PER_GROUP
    runs_a = [_run(WS, _spread(1.0), r) for r in range(3)]
    runs_b = [_run(GRPC, _spread(2.0), 0), _run(GRPC, zero, 1), _run(GRPC, _spread(4.0), 2)]
    v = compare_groups(WS, GRPC, runs_a, runs_b)
    assert v is not None and v.repetitions == 3
    assert v.per_repetition == pytest.approx((0.5, 0.25))


def test_zero_times_give_no_ratio_with_the_reason() -> None:
    zero = [0.0] * MIN_SAMPLES_PER_GROUP
    v = compare_groups(WS, GRPC, [_run(WS, _spread(1.0))], [_run(GRPC, zero)])
    assert v is not None and v.outcome == "no ratio" and v.ci is None
    assert v.resampling == "samples" and v.reason == "statistic of b must be positive, got 0.0"
    with pytest.raises(ValueError) as info:
        bootstrap_ratio_ci(_spread(1.0), zero)
    assert v.reason == str(info.value)


def test_four_repetitions_pool_and_five_resample_with_the_cluster_settings() -> None:
    reps = MIN_REPETITIONS_TO_RESAMPLE
    for n_reps, expected in ((reps - 1, "samples"), (reps, "repetitions")):
        runs_a = [_run(WS, _spread(1.0 + 0.01 * r), r) for r in range(n_reps)]
        runs_b = [_run(GRPC, _spread(3.0), r) for r in range(n_reps)]
        v = compare_groups(WS, GRPC, runs_a, runs_b)
        assert v is not None and v.resampling == expected and v.repetitions == n_reps
        assert v.outcome == "faster" and v.ci is not None
    assert v.ci == cluster_bootstrap_ratio_ci(
        [_spread(1.0 + 0.01 * r) for r in range(reps)], [_spread(3.0)] * reps,
        resamples=CLUSTER_RESAMPLES, confidence=BOOTSTRAP_CONFIDENCE, seed=BOOTSTRAP_SEED,
    )  # fmt: skip
    assert CLUSTER_RESAMPLES == 2_000 and v.ci.resamples == 2_000


def test_resampled_repetitions_that_disagree_are_not_called_inconsistent() -> None:
    # Four repetitions with A clearly faster, one with A slower: the cluster
    # interval decides; the per-repetition spread only overrides pooled samples.
    medians = [1.0, 1.0, 1.0, 1.0, 3.5]
    reps = MIN_REPETITIONS_TO_RESAMPLE
    runs_a = [_run(WS, _spread(m), r) for r, m in enumerate(medians[:reps])]
    runs_b = [_run(GRPC, _spread(3.0), r) for r in range(reps)]
    v = compare_groups(WS, GRPC, runs_a, runs_b)
    assert v is not None and v.resampling == "repetitions"
    assert min(v.per_repetition) < 1.0 < max(v.per_repetition)
    assert v.ci is not None
    assert v.outcome == ("faster" if v.ci.significant else "no significant difference")


def test_pooled_repetitions_all_on_one_side_keep_the_verdict() -> None:
    # A ratio of exactly 1 in one repetition is not "both sides of 1".
    runs_a = [_run(WS, _spread(m), r) for r, m in enumerate([1.0, 1.0, 3.0])]
    runs_b = [_run(GRPC, _spread(3.0), r) for r in range(3)]
    v = compare_groups(WS, GRPC, runs_a, runs_b)
    assert v is not None and v.resampling == "samples"
    assert max(v.per_repetition) == pytest.approx(1.0) and v.outcome == "faster"
    runs_a = [_run(WS, _spread(m), r) for r, m in enumerate([3.0, 6.0, 6.0])]
    v = compare_groups(WS, GRPC, runs_a, runs_b)
    assert v is not None and min(v.per_repetition) == pytest.approx(1.0) and v.outcome == "slower"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0123456, "12.3 ms"),
        (1.5, "1.5e+03 ms"),
        (1e-5, "0.01 ms"),
        (9.99e-6, "9.99 µs"),
        (1.234e-7, "0.123 µs"),
        (1.2349999e-6, "1.23 µs"),  # just below a rounding step: the factor is exactly 1e6
    ],
)
def test_ms_text_switches_to_microseconds_below_ten_microseconds(seconds: float, text: str) -> None:
    assert _ms_text(seconds) == text


def test_headline_is_the_verdict_then_both_medians() -> None:
    v = Verdict(a=WS, b=GRPC, n_a=3, n_b=4, repetitions=1, resampling="samples",
                outcome="no ratio", ci=None, reason="r", median_a_s=0.002,
                median_b_s=5e-6)  # fmt: skip
    assert headline(v) == f"{WS} vs {GRPC}: no ratio (r); median transmission 2 ms vs 5 µs"


@pytest.mark.parametrize("reps", [1, MIN_REPETITIONS_TO_RESAMPLE + 1])
def test_the_interval_is_the_seeded_bootstrap_with_the_stated_settings(reps: int) -> None:
    # Lognormal times that vary between repetitions: another seed or resample
    # count moves the percentile bounds.
    c = comparison({WS: [1.0 + 0.3 * (r % 3) for r in range(reps)], GRPC: [1.4] * reps},
                   images=12, sigma=0.4, seed=5)  # fmt: skip
    (v,) = verdicts(c)
    assert v.ci is not None
    by_rep = [[s.transmission_s for s in r.samples] for r in c.runs]
    if reps == 1:
        expected = bootstrap_ratio_ci(by_rep[0], by_rep[1], resamples=10_000, confidence=0.95,
                                      seed=0)  # fmt: skip
    else:
        expected = cluster_bootstrap_ratio_ci(by_rep[:reps], by_rep[reps:], resamples=2_000,
                                              confidence=0.95, seed=0)  # fmt: skip
    assert v.ci == expected

"""Verdict rules: minimum n, method stated, repetitions resampled or their spread shown."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from imgbench.measure.stats import (
    MIN_REPETITIONS_TO_RESAMPLE,
    MIN_SAMPLES_PER_GROUP,
    bootstrap_ratio_ci,
)
from imgbench.report import compare_results, write_outputs
from imgbench.report.model import _label_figures, compact_table
from imgbench.report.runs import regressions
from imgbench.report.verdicts import verdicts

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
    drift = comparison(
        {WS: [0.6, 1.4, 0.7, 1.3, 0.8, 1.2], GRPC: [1.2] * 6}, images=30, sigma=0.05
    )
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

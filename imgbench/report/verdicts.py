"""Verdicts: which label is faster, by how much, how sure, and by which method.

One :class:`Verdict` per pair of ``protocol/mode`` labels, on the ratio of
median transmission times. The rules (why each number, in
:mod:`imgbench.measure.stats`):

* fewer than :data:`~imgbench.measure.stats.MIN_SAMPLES_PER_GROUP` measured
  samples in either group: no interval and no verdict, the reason says n;
* at least :data:`~imgbench.measure.stats.MIN_REPETITIONS_TO_RESAMPLE`
  repetitions of both: the interval resamples repetitions (cluster bootstrap,
  paired by repetition index);
* 2 to 4 repetitions: samples pooled, and the per-repetition ratios are
  reported; when the pooled interval excludes 1 but the repetitions point both
  ways, there is no verdict ("inconsistent across repetitions");
* one repetition: a percentile bootstrap of the samples.

Every verdict carries its method in words (:attr:`Verdict.method`) and as
fields (:meth:`Verdict.as_dict`), so the terminal, the report files and the
JSON output state the same thing. Deterministic (seed 0).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from imgbench.measure.results import Comparison, ProtocolRun
from imgbench.measure.stats import (
    MIN_REPETITIONS_TO_RESAMPLE,
    MIN_SAMPLES_PER_GROUP,
    RatioCI,
    bootstrap_ratio_ci,
    cluster_bootstrap_ratio_ci,
    verdict,
)

#: Bootstrap settings of every verdict in the outputs.
BOOTSTRAP_RESAMPLES: Final = 10_000
#: Resamples of the cluster bootstrap: each one takes a median of every pooled
#: sample (about 1 ms per 10 000 samples), so fewer than the O(1) path.
CLUSTER_RESAMPLES: Final = 2_000
BOOTSTRAP_CONFIDENCE: Final = 0.95
BOOTSTRAP_SEED: Final = 0

#: Values of :attr:`Verdict.outcome`.
OUTCOMES: Final = (
    "faster",
    "slower",
    "no significant difference",
    "too few samples",
    "inconsistent across repetitions",
    "no ratio",
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The comparison of label ``a`` with label ``b`` (ratio of medians a / b).

    ``outcome`` is one of :data:`OUTCOMES`, read as "a is <outcome> than b".
    ``ci`` is None when no interval is shown (``reason`` says why).
    ``median_a_s``/``median_b_s`` are in seconds; ``per_repetition`` holds the
    ratio of medians of each repetition (a / b, repetition order) when there
    are several.
    """

    a: str
    b: str
    n_a: int
    n_b: int
    repetitions: int
    resampling: str  # "samples" or "repetitions"
    outcome: str
    ci: RatioCI | None
    reason: str | None
    median_a_s: float
    median_b_s: float
    per_repetition: tuple[float, ...] = ()

    @property
    def faster(self) -> str | None:
        """The faster label, or None without a significant, consistent difference."""
        return {"faster": self.a, "slower": self.b}.get(self.outcome)

    @property
    def text(self) -> str:
        """One plain sentence: the verdict with its interval, or why there is none."""
        if self.outcome == "too few samples":
            return (
                f"{self.a} vs {self.b}: too few samples for a verdict "
                f"(n={self.n_a} and n={self.n_b}; at least {MIN_SAMPLES_PER_GROUP} per group)"
            )
        if self.outcome == "no ratio" or self.ci is None:
            return f"{self.a} vs {self.b}: no ratio ({self.reason})"
        sentence = verdict(self.a, self.b, self.ci)
        if self.outcome == "inconsistent across repetitions":
            low, high = min(self.per_repetition), max(self.per_repetition)
            return (
                f"{self.a} vs {self.b}: no verdict, the repetitions disagree "
                f"(per-repetition ratios {low:.2f}-{high:.2f} on both sides of 1; "
                f"pooled: {sentence})"
            )
        return sentence

    @property
    def method(self) -> str:
        """The statistic, the resampling, n per group and how repetitions were used."""
        reps = f"{self.repetitions} repetition{'s' if self.repetitions != 1 else ''}"
        head = f"ratio of median transmission times, n={self.n_a} vs {self.n_b}, {reps}"
        if self.outcome == "too few samples":
            return f"{head}; no interval below n={MIN_SAMPLES_PER_GROUP} per group"
        if self.ci is None:
            return head
        level = f"{self.ci.confidence * 100:g}% percentile bootstrap, {self.ci.resamples} resamples"
        if self.resampling == "repetitions":
            return f"{head}; {level} of whole repetitions (cluster bootstrap)"
        text = f"{head}; {level} of the samples"
        if self.repetitions > 1:
            low, high = min(self.per_repetition), max(self.per_repetition)
            text += (
                f", repetitions pooled (fewer than {MIN_REPETITIONS_TO_RESAMPLE} to resample);"
                f" per-repetition ratios {low:.2f}-{high:.2f}"
            )
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (see ``schemas/compare.schema.json``)."""
        ci = self.ci
        return {
            "a": self.a,
            "b": self.b,
            "outcome": self.outcome,
            "faster": self.faster,
            "statistic": "ratio of median transmission times (a / b)",
            "ratio": ci.ratio if ci else None,
            "ci_low": ci.low if ci else None,
            "ci_high": ci.high if ci else None,
            "confidence": ci.confidence if ci else None,
            "resamples": ci.resamples if ci else None,
            "resampling": self.resampling,
            "n": {self.a: self.n_a, self.b: self.n_b},
            "min_n": MIN_SAMPLES_PER_GROUP,
            "repetitions": self.repetitions,
            "per_repetition_ratios": list(self.per_repetition),
            "median_s": {self.a: self.median_a_s, self.b: self.median_b_s},
            "text": self.text,
            "method": self.method,
            "reason": self.reason,
        }


def _by_repetition(runs: Sequence[ProtocolRun]) -> dict[int, list[float]]:
    return {r.repetition: [s.transmission_s for s in r.samples] for r in runs if r.samples}


def compare_groups(
    a: str,
    b: str,
    runs_a: Sequence[ProtocolRun],
    runs_b: Sequence[ProtocolRun],
) -> Verdict | None:
    """The verdict of ``a`` against ``b`` from their runs; None if one has no sample.

    Runs are paired by ``repetition`` index for the per-repetition ratios and
    the cluster bootstrap; only repetitions measured on both sides count.
    """
    times_a = [s.transmission_s for r in runs_a for s in r.samples]
    times_b = [s.transmission_s for r in runs_b for s in r.samples]
    if not times_a or not times_b:
        return None
    reps_a, reps_b = _by_repetition(runs_a), _by_repetition(runs_b)
    paired = sorted(set(reps_a) & set(reps_b))
    repetitions = max(1, len(paired))
    per_rep = tuple(
        statistics.median(reps_a[i]) / statistics.median(reps_b[i])
        for i in paired
        if statistics.median(reps_b[i]) > 0
    )
    if len(per_rep) < 2:
        per_rep = ()
    common: dict[str, Any] = {
        "a": a,
        "b": b,
        "n_a": len(times_a),
        "n_b": len(times_b),
        "repetitions": repetitions,
        "median_a_s": statistics.median(times_a),
        "median_b_s": statistics.median(times_b),
        "per_repetition": per_rep,
    }
    if min(len(times_a), len(times_b)) < MIN_SAMPLES_PER_GROUP:
        return Verdict(
            resampling="samples",
            outcome="too few samples",
            ci=None,
            reason=f"fewer than {MIN_SAMPLES_PER_GROUP} measured samples in a group",
            **common,
        )
    resampling = "repetitions" if len(paired) >= MIN_REPETITIONS_TO_RESAMPLE else "samples"
    try:
        if resampling == "repetitions":
            ci = cluster_bootstrap_ratio_ci(
                [reps_a[i] for i in paired],
                [reps_b[i] for i in paired],
                resamples=CLUSTER_RESAMPLES,
                confidence=BOOTSTRAP_CONFIDENCE,
                seed=BOOTSTRAP_SEED,
            )
        else:
            ci = bootstrap_ratio_ci(
                times_a,
                times_b,
                resamples=BOOTSTRAP_RESAMPLES,
                confidence=BOOTSTRAP_CONFIDENCE,
                seed=BOOTSTRAP_SEED,
            )
    except ValueError as exc:  # e.g. zero times on a coarse clock
        return Verdict(
            resampling=resampling, outcome="no ratio", ci=None, reason=str(exc), **common
        )
    if not ci.significant:
        outcome = "no significant difference"
    else:
        outcome = "slower" if ci.low > 1.0 else "faster"
        if resampling == "samples" and per_rep and min(per_rep) < 1.0 < max(per_rep):
            outcome = "inconsistent across repetitions"
    return Verdict(resampling=resampling, outcome=outcome, ci=ci, reason=None, **common)


def verdicts(comparison: Comparison) -> list[Verdict]:
    """One verdict per pair of labels with measured samples, in label order."""
    labels = [label for label in comparison.labels() if comparison.samples_for(label)]
    out = []
    for a, b in itertools.combinations(labels, 2):
        v = compare_groups(
            a,
            b,
            [r for r in comparison.runs if r.label == a],
            [r for r in comparison.runs if r.label == b],
        )
        if v is not None:
            out.append(v)
    return out


def headline(v: Verdict) -> str:
    """The answer in plain words: the verdict, then the two medians."""
    medians = f"median transmission {_ms_text(v.median_a_s)} vs {_ms_text(v.median_b_s)}"
    return f"{v.text}; {medians}"


def _ms_text(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g} ms" if ms >= 0.01 else f"{seconds * 1e6:.3g} µs"

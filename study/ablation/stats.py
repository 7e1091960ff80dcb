"""The statistics of the ablation tables: intervals across seeds, paired deltas, the paired test-AUC bootstrap.

scipy supplies the t intervals and the paired t-test. The test-AUC comparison resamples patients, as the
headline intervals do: a child's films are not independent, so a film-level test (DeLong's) would be too sure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from study.evaluate.metrics import patient_resamples, percentile_interval, rank_auc


@dataclass(frozen=True)
class Interval:
    """Mean of the seeds' values with its t-based confidence interval; sd with ddof=1."""

    n: int
    mean: float
    sd: float
    low: float
    high: float


@dataclass(frozen=True)
class PairedDelta:
    """Variant minus reference over the seeds they share, with a paired-t interval and two-sided p-value."""

    n: int
    mean: float
    low: float
    high: float
    p: float


@dataclass(frozen=True)
class PairedAucDifference:
    """Variant minus reference test AUC over the shared seeds, with its patient-bootstrap interval; p is the
    bootstrap's two-sided share of differences on the far side of zero; one_class counts resamples with films
    of one class only (no AUC: left out)."""

    seeds: int
    mean: float
    low: float
    high: float
    p: float
    one_class: int


def seed_interval(values: Sequence[float], confidence: float, bounds: tuple[float, float] | None = None) -> Interval:
    """Student-t interval of the mean over seeds: with 2-3 seeds it is wide, and honestly so. `bounds` cuts
    it to a metric's range (an AUC interval reaching 1.3 says only "up to 1")."""
    sample = np.asarray(values, dtype=float)
    n = sample.size
    mean = float(sample.mean()) if n else math.nan
    if n < 2:
        return Interval(n, mean, math.nan, math.nan, math.nan)
    sd = float(sample.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    low, high = _clip(mean - half, mean + half, bounds)
    return Interval(n, mean, sd, low, high)


def _clip(low: float, high: float, bounds: tuple[float, float] | None) -> tuple[float, float]:
    return (low, high) if bounds is None else (max(low, bounds[0]), min(high, bounds[1]))


def paired_delta(
    variant: Sequence[float],
    reference: Sequence[float],
    confidence: float,
    bounds: tuple[float, float] | None = None,
) -> PairedDelta:
    """Per-seed differences (same seed, same split, same data order): a paired t interval and test.
    Identical differences (common for accuracy on a small test set) have no spread to estimate an interval
    from: the interval and p are then NaN rather than a zero-width certainty that two runs cannot give."""
    differences = np.asarray(variant, dtype=float) - np.asarray(reference, dtype=float)
    n = differences.size
    mean = float(differences.mean()) if n else math.nan
    if n < 2 or np.allclose(differences, differences[0], rtol=0.0, atol=1e-12):
        return PairedDelta(n, mean, math.nan, math.nan, math.nan)
    result = stats.ttest_rel(variant, reference)
    interval = result.confidence_interval(confidence)
    low, high = _clip(float(interval.low), float(interval.high), bounds)
    return PairedDelta(n, mean, low, high, float(result.pvalue))


def paired_auc_difference(
    labels: np.ndarray,
    patients: Sequence[str],
    variant_probs: Sequence[np.ndarray],
    reference_probs: Sequence[np.ndarray],
    resamples: int,
    confidence: float,
    seed: int,
) -> PairedAucDifference:
    """Mean over the shared seeds of test AUC(variant) - AUC(reference), seed by seed, with a patient-cluster
    bootstrap interval: each resample draws the test patients once and scores both models of every seed on
    them. The interval is the test set's sampling of this difference, given these trained models; the paired-t
    interval beside it is the seeds' spread."""
    pairs = list(zip(variant_probs, reference_probs, strict=True))

    def difference(chosen: np.ndarray) -> float:
        chosen_labels = labels[chosen]
        if chosen_labels.all() or not chosen_labels.any():
            return math.nan
        return float(
            np.mean([rank_auc(chosen_labels, v[chosen]) - rank_auc(chosen_labels, r[chosen]) for v, r in pairs])
        )

    value = difference(np.arange(labels.size))
    draws = np.array([difference(chosen) for chosen in patient_resamples(patients, resamples, seed)])
    low, high = percentile_interval(draws, confidence)
    scored = draws[~np.isnan(draws)]
    p = min(1.0, 2.0 * min(float(np.mean(scored <= 0)), float(np.mean(scored >= 0))))
    return PairedAucDifference(len(pairs), value, max(low, -1.0), min(high, 1.0), p, int(draws.size - scored.size))

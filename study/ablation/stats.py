"""The statistics of the ablation tables: intervals across seeds, paired deltas, DeLong's test.

scipy supplies the t intervals and the paired t-test. DeLong's test for two correlated ROC AUCs is in no
well-kept Python library (it is in R's pROC), so it is written here, in the fast midrank form of Sun & Xu
(2014), and tested against pROC's published example.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


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
class DelongResult:
    """DeLong's test of AUC(a) = AUC(b) on the same films: z = (a - b) / se, two-sided p."""

    auc_a: float
    auc_b: float
    se: float
    z: float
    p: float


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


def _midrank_components(positives: np.ndarray, negatives: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's structural components V10 (per positive) and V01 (per negative), ties counting half."""
    m, n = positives.size, negatives.size
    combined_ranks = stats.rankdata(np.concatenate([positives, negatives]))
    positive_ranks = stats.rankdata(positives)
    negative_ranks = stats.rankdata(negatives)
    v10 = (combined_ranks[:m] - positive_ranks) / n  # share of negatives below each positive
    v01 = 1.0 - (combined_ranks[m:] - negative_ranks) / m  # share of positives above each negative
    auc = (combined_ranks[:m].sum() - m * (m + 1) / 2) / (m * n)
    return float(auc), v10, v01


def delong_test(labels: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray) -> DelongResult:
    """DeLong, DeLong & Clarke-Pearson (1988) for two correlated ROC curves, labels 1 = positive."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("DeLong's test needs both classes among the labels")
    auc_a, v10_a, v01_a = _midrank_components(np.asarray(probs_a)[labels], np.asarray(probs_a)[~labels])
    auc_b, v10_b, v01_b = _midrank_components(np.asarray(probs_b)[labels], np.asarray(probs_b)[~labels])
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    covariance = s10 / v10_a.size + s01 / v01_a.size
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    if variance <= 0:
        same = math.isclose(auc_a, auc_b, abs_tol=1e-15)
        return DelongResult(auc_a, auc_b, 0.0, 0.0 if same else math.copysign(math.inf, auc_a - auc_b),
                            1.0 if same else 0.0)  # fmt: skip
    se = math.sqrt(variance)
    z = (auc_a - auc_b) / se
    return DelongResult(auc_a, auc_b, se, z, float(2 * stats.norm.sf(abs(z))))

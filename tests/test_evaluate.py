"""Threshold, metrics and confidence intervals on hand-checked cases."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from study.config import EvaluateConfig
from study.evaluate.metrics import (
    Predictions,
    choose_threshold,
    cluster_bootstrap,
    point_metrics,
    rank_auc,
    score_test_set,
)


def test_youden_threshold_separates_a_separable_validation_set() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([0.1, 0.2, 0.3, 0.35, 0.8, 0.9])
    threshold = choose_threshold(labels, probs, "youden")
    assert 0.3 < threshold <= 0.35
    metrics = point_metrics(labels, probs, threshold)
    assert metrics["sensitivity"] == 1.0 and metrics["specificity"] == 1.0
    assert choose_threshold(labels, probs, "fixed") == 0.5


def test_point_metrics_match_a_hand_computed_confusion_matrix() -> None:
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    probs = np.array([0.9, 0.8, 0.6, 0.2, 0.7, 0.4, 0.3, 0.2, 0.1, 0.05])
    metrics = point_metrics(labels, probs, 0.5)  # tp 3, fn 1, fp 1, tn 5
    assert metrics["accuracy"] == 0.8
    assert metrics["sensitivity"] == 0.75
    assert metrics["specificity"] == 5 / 6
    assert metrics["precision"] == 0.75
    assert metrics["f1"] == 0.75


def test_rank_auc_equals_sklearn_with_ties() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    probs = np.round(rng.random(300) * 0.5 + labels * 0.3, 2)  # rounding creates ties
    assert abs(rank_auc(labels, probs) - roc_auc_score(labels, probs)) < 1e-12


def _predictions(n_patients: int, films_each: int, seed: int) -> Predictions:
    rng = np.random.default_rng(seed)
    labels = np.repeat(rng.integers(0, 2, n_patients), films_each)
    probs = np.clip(0.5 + (labels - 0.5) * 0.4 + rng.normal(0, 0.25, labels.size), 0, 1)
    patients = tuple(f"p{index // films_each}" for index in range(labels.size))
    return Predictions(tuple(f"f{i}" for i in range(labels.size)), labels, probs, patients)


def test_cluster_bootstrap_is_reproducible_and_brackets_the_estimate() -> None:
    predictions = _predictions(60, 3, seed=0)
    cfg = EvaluateConfig(threshold_rule="youden", bootstrap_resamples=400, confidence=0.95, seed=7)
    report = score_test_set(predictions, 0.5, cfg, "patients")
    auc = report.metrics["auc"]
    assert auc.ci_low < auc.value < auc.ci_high
    assert report == score_test_set(predictions, 0.5, cfg, "patients")
    assert report.ci_method == "percentile bootstrap over patients"
    assert report.confusion_matrix.tp + report.confusion_matrix.fn == report.n_positive


def test_clustered_films_widen_the_interval() -> None:
    """Three identical films per patient carry the information of one: the CI must not shrink by sqrt(3)."""
    single = _predictions(80, 1, seed=3)
    tripled = Predictions(
        tuple(f"f{i}" for i in range(240)),
        np.repeat(single.labels, 3),
        np.repeat(single.probs, 3),
        tuple(np.repeat(np.array(single.patients), 3)),
    )

    def width(predictions: Predictions) -> float:
        low, high = cluster_bootstrap(predictions, lambda y, p: {"auc": rank_auc(y, p)}, 400, 0.95, 0)["auc"]
        return high - low

    assert width(tripled) > 0.8 * width(single)

"""The selected model, once, on the test set: threshold from validation, metrics with bootstrap CIs.

The test films are scored here for the first time: the data stage validated and decoded them with every
other film, but no label, pixel or prediction of theirs is used before this stage. The threshold is chosen on validation
predictions (the test balance differs: 37.5% NORMAL against 25.7% in train), and CIs come from a
patient-cluster bootstrap, because films of one child are not independent samples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import precision_recall_curve, roc_curve

from study.config import EvaluateConfig
from study.results import (
    PREDICTION_COLUMNS,
    ConfusionCounts,
    Estimate,
    ResultsPaths,
    TestMetrics,
    Threshold,
    write_csv,
)
from study.results.classes import Classes
from study.results.vocab import TEST_METRICS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Predictions:
    """Labels (0/1), P(positive class) and patient ids for one split, aligned with its paths."""

    paths: tuple[str, ...]
    labels: np.ndarray
    probs: np.ndarray
    patients: tuple[str, ...]


def choose_threshold(labels: np.ndarray, probs: np.ndarray, rule: str) -> float:
    """Youden's J (max sensitivity + specificity - 1), max F1, or the fixed 0.5."""
    if rule == "fixed":
        return 0.5
    if rule == "f1":
        precision, recall, thresholds = precision_recall_curve(labels, probs)
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        return float(thresholds[int(np.argmax(f1))])
    fpr, tpr, thresholds = roc_curve(labels, probs)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))


def confusion(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, int]:
    predicted = probs >= threshold
    positive = labels == 1
    return {
        "tn": int(np.sum(~predicted & ~positive)),
        "fp": int(np.sum(predicted & ~positive)),
        "fn": int(np.sum(~predicted & positive)),
        "tp": int(np.sum(predicted & positive)),
    }


def rank_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half): exact, and fast enough for thousands of resamples."""
    ranks = rankdata(probs)
    positives = int(labels.sum())
    negatives = labels.size - positives
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def point_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float]:
    """The six reported metrics; NaN where a resample lacks the class a metric needs."""
    cm = confusion(labels, probs, threshold)
    both_classes = 0 < labels.sum() < labels.size
    return {
        "auc": rank_auc(labels, probs) if both_classes else float("nan"),
        "accuracy": (cm["tp"] + cm["tn"]) / labels.size,
        "sensitivity": cm["tp"] / (cm["tp"] + cm["fn"]) if cm["tp"] + cm["fn"] else float("nan"),
        "specificity": cm["tn"] / (cm["tn"] + cm["fp"]) if cm["tn"] + cm["fp"] else float("nan"),
        "precision": cm["tp"] / (cm["tp"] + cm["fp"]) if cm["tp"] + cm["fp"] else float("nan"),
        "f1": 2 * cm["tp"] / (2 * cm["tp"] + cm["fp"] + cm["fn"]) if cm["tp"] + cm["fp"] + cm["fn"] else float("nan"),
    }


def cluster_bootstrap(
    predictions: Predictions,
    statistic: Callable[[np.ndarray, np.ndarray], dict[str, float]],
    resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, tuple[float, float]]:
    """Percentile CIs from resampling patients (with all their films) with replacement."""
    samples: dict[str, list[float]] = {}
    for chosen in patient_resamples(predictions.patients, resamples, seed):
        for name, value in statistic(predictions.labels[chosen], predictions.probs[chosen]).items():
            samples.setdefault(name, []).append(value)
    return {name: percentile_interval(values, confidence) for name, values in samples.items()}


def patient_resamples(patients: Sequence[str], resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Indices of one bootstrap sample per resample: patients drawn with replacement, each with all their films
    (several films of one child are not independent evidence)."""
    unique, inverse = np.unique(np.array(patients), return_inverse=True)
    members = [np.flatnonzero(inverse == index) for index in range(unique.size)]
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield np.concatenate([members[i] for i in rng.integers(0, unique.size, unique.size)])


def percentile_interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    return float(np.nanpercentile(values, tail)), float(np.nanpercentile(values, 100.0 - tail))


def score_test_set(predictions: Predictions, threshold: float, cfg: EvaluateConfig, groups: str) -> TestMetrics:
    """test_metrics.json: point estimates, cluster-bootstrap CIs over `groups` (patients, or a non-chest study's
    groups) and the confusion matrix."""
    point = point_metrics(predictions.labels, predictions.probs, threshold)
    intervals = cluster_bootstrap(
        predictions,
        lambda labels, probs: point_metrics(labels, probs, threshold),
        cfg.bootstrap_resamples,
        cfg.confidence,
        cfg.seed,
    )
    return TestMetrics(
        n=int(predictions.labels.size),
        n_positive=int(predictions.labels.sum()),
        n_negative=int(predictions.labels.size - predictions.labels.sum()),
        n_patients=len(set(predictions.patients)),
        threshold=threshold,
        confidence=cfg.confidence,
        bootstrap_resamples=cfg.bootstrap_resamples,
        ci_method=f"percentile bootstrap over {groups}",
        metrics={name: Estimate(point[name], *intervals[name]) for name in TEST_METRICS},
        confusion_matrix=ConfusionCounts(**confusion(predictions.labels, predictions.probs, threshold)),
        one_class_resamples=sum(
            1
            for chosen in patient_resamples(predictions.patients, cfg.bootstrap_resamples, cfg.seed)
            if predictions.labels[chosen].min() == predictions.labels[chosen].max()
        ),
    )


def make_predictions(
    rows: Sequence[dict[str, str]], kept_paths: Sequence[str], probs: np.ndarray, classes: Classes
) -> Predictions:
    by_path = {row["path"]: row for row in rows}
    chosen = [by_path[path] for path in kept_paths]
    return Predictions(
        paths=tuple(kept_paths),
        labels=np.array([classes.code(row["label"]) for row in chosen]),
        probs=np.asarray(probs, dtype=np.float64).ravel(),
        patients=tuple(row["patient_id"] for row in chosen),
    )


def write_evaluation(
    paths: ResultsPaths, val: Predictions, test: Predictions, cfg: EvaluateConfig, groups: str
) -> TestMetrics:
    """Choose the threshold on val, score test once, and write threshold.json, test_metrics.json, predictions.csv."""
    threshold = choose_threshold(val.labels, val.probs, cfg.threshold_rule)
    val_cm = confusion(val.labels, val.probs, threshold)
    Threshold(
        method=cfg.threshold_rule,
        threshold=threshold,
        val_sensitivity=val_cm["tp"] / max(val_cm["tp"] + val_cm["fn"], 1),
        val_specificity=val_cm["tn"] / max(val_cm["tn"] + val_cm["fp"], 1),
        n_val=int(val.labels.size),
    ).write(paths.threshold)
    report = score_test_set(test, threshold, cfg, groups)
    report.write(paths.test_metrics)
    write_csv(
        paths.predictions_csv,
        PREDICTION_COLUMNS,
        [
            {"split": split, "path": path, "label": int(label), "prob": float(prob)}
            for split, predictions in (("val", val), ("test", test))
            for path, label, prob in zip(predictions.paths, predictions.labels, predictions.probs, strict=True)
        ],
    )
    metrics = report.metrics
    logger.info(
        "test (n=%d, threshold %.3f by %s): AUC %.3f [%.3f, %.3f], accuracy %.3f, sensitivity %.3f, specificity %.3f",
        report.n, threshold, cfg.threshold_rule, metrics["auc"].value, metrics["auc"].ci_low, metrics["auc"].ci_high,
        metrics["accuracy"].value, metrics["sensitivity"].value, metrics["specificity"].value,
    )  # fmt: skip
    return report

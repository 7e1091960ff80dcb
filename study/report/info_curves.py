"""best/predictions.csv and the best trial's histories -> the Best model section's curves, as plain data.

Precision-recall, calibration (with the expected calibration error) and the learning curves, computed
with numpy so the report needs nothing heavier. The learning curve follows the best trial back through
the Hyperband trials it continued: a continuation trains on from its parent's checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from study.report.records import CalibrationInfo, LearningCurve, PrInfo, as_float, as_int
from study.results import BestTrial, ConfusionCounts, ResultsPaths, read_csv

CALIBRATION_BINS = 10


def load_test_predictions(paths: ResultsPaths) -> tuple[np.ndarray, np.ndarray]:
    """Labels and P(PNEUMONIA) of best/predictions.csv's test rows; both classes are required."""
    test = [r for r in read_csv(paths.predictions_csv) if r.get("split") == "test"]
    labels = np.array([int(float(r["label"])) for r in test], dtype=np.int64)
    probs = np.array([float(r["prob"]) for r in test], dtype=np.float64)
    if labels.sum() in (0, labels.size):
        raise ValueError(f"{labels.size} test rows with {int(labels.sum())} positive: the curves need both classes")
    return labels, probs


def precision_recall(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Recall and precision at every distinct threshold (highest first), and average precision
    (sum of precision x recall step, as scikit-learn defines it); tied scores share one point."""
    order = np.argsort(-probs, kind="mergesort")
    probs, labels = probs[order], labels[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(probs)), probs.size - 1]
    tps = np.cumsum(labels)[last_of_each].astype(float)
    predicted = last_of_each + 1.0
    recall = tps / tps[-1]
    precision = tps / predicted
    average = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return recall, precision, average


def get_pr_info(paths: ResultsPaths, confusion: ConfusionCounts | None) -> PrInfo | None:
    if not paths.predictions_csv.exists():
        return None
    labels, probs = load_test_predictions(paths)
    recall, precision, average = precision_recall(labels, probs)
    point = None
    if confusion is not None and confusion.tp + confusion.fn and confusion.tp + confusion.fp:
        point = (confusion.tp / (confusion.tp + confusion.fn), confusion.tp / (confusion.tp + confusion.fp))
    return PrInfo(
        recall=tuple(float(x) for x in recall),
        precision=tuple(float(x) for x in precision),
        average_precision=average,
        prevalence=float(labels.mean()),
        operating_point=point,
    )


def calibration_bins(labels: np.ndarray, probs: np.ndarray, bins: int) -> tuple[list[tuple[float, float, int]], float]:
    """Equal-width probability bins: (mean predicted, observed share of pneumonia, films) per non-empty bin,
    and the expected calibration error: the films-weighted mean gap between the two."""
    index = np.minimum((probs * bins).astype(int), bins - 1)
    rows = []
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            predicted, observed = float(probs[members].mean()), float(labels[members].mean())
            rows.append((predicted, observed, int(members.sum())))
            error += members.sum() / probs.size * abs(predicted - observed)
    return rows, float(error)


def get_calibration_info(paths: ResultsPaths) -> CalibrationInfo | None:
    if not paths.predictions_csv.exists():
        return None
    labels, probs = load_test_predictions(paths)
    rows, error = calibration_bins(labels, probs, CALIBRATION_BINS)
    return CalibrationInfo(bins=tuple(rows), ece=error, n=int(labels.size), bin_count=CALIBRATION_BINS)


def _chain(trials: Sequence[dict[str, str]], trial_id: str) -> list[dict[str, str]]:
    """The trial and the trials it continued, oldest first."""
    by_id = {row["trial_id"]: row for row in trials}
    chain = []
    current = by_id.get(trial_id)
    while current is not None and current not in chain:
        chain.insert(0, current)
        current = by_id.get(current.get("parent") or "")
    return chain


def get_learning_curve(paths: ResultsPaths) -> LearningCurve | None:
    """Loss and AUC per epoch of the best trial, including the epochs of the trials it continued."""
    if not paths.best_hyperparameters.exists() or not paths.trials_csv.exists():
        return None
    best_id = BestTrial.read(paths.best_hyperparameters).trial_id
    chain = _chain(read_csv(paths.trials_csv), best_id)
    epochs: list[int] = []
    columns: dict[str, list[float | None]] = {"loss": [], "val_loss": [], "auc": [], "val_auc": []}
    continued_at = []
    for position, trial in enumerate(chain):
        history_path = paths.history_csv(trial["trial_id"])
        if not history_path.exists():
            continue
        start = as_int(trial.get("initial_epoch")) or 0
        end = as_int(chain[position + 1].get("initial_epoch")) if position + 1 < len(chain) else None
        if position:
            continued_at.append((trial["trial_id"], start))
        for row in read_csv(history_path):
            epoch = int(row["epoch"])
            if epoch > start and (end is None or epoch <= end):
                epochs.append(epoch)
                for name, values in columns.items():
                    values.append(as_float(row.get(name)))
    if not epochs:
        return None
    return LearningCurve(
        trial_id=best_id,
        epochs=tuple(epochs),
        loss=tuple(columns["loss"]),
        val_loss=tuple(columns["val_loss"]),
        auc=tuple(columns["auc"]),
        val_auc=tuple(columns["val_auc"]),
        continued_at=tuple(continued_at),
    )

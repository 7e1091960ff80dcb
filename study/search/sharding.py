"""Batches that divide among the devices: JAX's DataParallel splits every batch evenly across them and refuses
any other (jax's IndivisibleError, after which the model cannot be used again), while the study's splits are
of any size. A split is padded to a multiple of the device count with copies of its first films: predictions
of the copies are dropped, and in training and validation the copies weigh nothing. On one device (and on
TensorFlow) nothing changes.

Keras hands sample weights to a model's `weighted_metrics` only, so on several devices the metrics are
compiled as such (`study_metrics`), and count every film of weight above 0 once: AUC and accuracy, in
training and validation, are the real films' own, unweighted by class, as on one device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from study.data.split import SplitArrays
from study.device import replicas


def padding(count: int, parts: int) -> int:
    """How many copies make `count` films divide into `parts`."""
    return -count % parts


def _padded(films: np.ndarray, extra: int) -> np.ndarray:
    return films if extra == 0 else np.concatenate([films, films[np.arange(extra) % len(films)]])


def weighted_split(
    films: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, parts: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Films, labels and per-film weights padded to divide into `parts`. The copies weigh 0 and every real
    film's weight is scaled by padded/real count: Keras averages a batch's loss over all its rows, so the scale
    keeps an epoch's loss what it is unpadded (and a step's gradient, on average over the shuffles), while AUC
    and accuracy, ratios of weights, ignore it. A trainable BatchNorm still counts the copies in its batch
    statistics: at most parts - 1 films an epoch."""
    extra = padding(len(films), parts)
    real = np.ones(len(films), np.float32) if weights is None else np.asarray(weights, np.float32)
    scaled = real * np.float32((len(films) + extra) / len(films))
    return _padded(films, extra), _padded(labels, extra), np.concatenate([scaled, np.zeros(extra, np.float32)])


class _RealFilmsOnly:
    """A metric that counts each film of weight above 0 once and the weightless copies not at all."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if sample_weight is not None:
            sample_weight = keras.ops.cast(keras.ops.greater(sample_weight, 0), "float32")
        return super().update_state(y_true, y_pred, sample_weight=sample_weight)  # type: ignore[misc]


@keras.saving.register_keras_serializable(package="chest_xray_study")
class RealFilmsAUC(_RealFilmsOnly, keras.metrics.AUC):
    """AUC over the real films of a padded split."""


@keras.saving.register_keras_serializable(package="chest_xray_study")
class RealFilmsAccuracy(_RealFilmsOnly, keras.metrics.BinaryAccuracy):
    """Accuracy over the real films of a padded split."""


def study_metrics() -> dict[str, list[keras.metrics.Metric]]:
    """model.compile's metrics, AUC and accuracy: Keras's own on one device; on several, weighted metrics that
    see the weights and count the real films only."""
    if replicas() > 1:
        return {"weighted_metrics": [RealFilmsAUC(name="auc"), RealFilmsAccuracy(name="accuracy")]}
    return {"metrics": [keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")]}


def fit_data(arrays: SplitArrays, class_weight: dict[int, float] | None) -> dict[str, Any]:
    """model.fit's data arguments for training on the training split, weighted per class, validated on the
    validation split, on however many devices share each batch (search.batch_size divides among them: checked
    at start-up)."""
    parts = replicas()
    if padding(len(arrays.x_train), parts) == 0 and padding(len(arrays.x_val), parts) == 0:
        return {
            "x": arrays.x_train,
            "y": arrays.y_train,
            "class_weight": class_weight,
            "validation_data": (arrays.x_val, arrays.y_val),
        }
    labels = arrays.y_train.astype(int)
    per_film = None if class_weight is None else np.vectorize(class_weight.__getitem__)(labels)
    x, y, sample_weight = weighted_split(arrays.x_train, arrays.y_train, per_film, parts)
    return {
        "x": x,
        "y": y,
        "sample_weight": sample_weight,
        "validation_data": weighted_split(arrays.x_val, arrays.y_val, None, parts),
    }


def predict_probabilities(model: keras.Model, films: np.ndarray, batch_size: int) -> np.ndarray:
    """P(positive class) per film, one value each, whatever the device count. The batch is cut down to a
    multiple of the device count: in inference a batch's size does not change its films' outputs."""
    parts = replicas()
    batch = max(parts, batch_size - batch_size % parts)
    padded = _padded(films, padding(len(films), parts))
    return model.predict(padded, batch_size=batch, verbose=0).ravel()[: len(films)]


def first_rows(arrays: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    """The first `count` rows of each array (fewer when an array is shorter), padded to divide among the
    devices: a whole batch for the calibration's timed steps."""
    parts = replicas()
    return [_padded(array[:count], padding(len(array[:count]), parts)) for array in arrays]

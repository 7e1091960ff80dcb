"""Every batch whole: training and validation batches all hold search.batch_size films, and prediction
batches one size each (the caller's batch, or fewer films' worth).

A split of any size ends in a smaller batch, and a smaller batch is a new input shape, which XLA compiles
again: every step on JAX, and on TensorFlow with model.xla on. Two CPU cores, JAX, the smoke study's model: an
epoch of 600 films validated on 120 took 38 s the first time, one of 608 and 128 took 24 s (later epochs 6 s
each); TensorFlow without XLA traces once for any batch size and times the two alike. Several JAX devices need
it as well: DataParallel splits every batch evenly across them and refuses any other (search.batch_size
divides among them: checked at start-up). So each split is padded to a multiple of the batch with copies of
its first films: predictions of the copies are dropped, and in training and validation the copies weigh nothing.

Keras hands sample weights to a model's `weighted_metrics` only, so the metrics are compiled as such
(`study_metrics`), and count every film of weight above 0 once: AUC and accuracy, in training and validation,
are the real films' own, unweighted by class."""

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


def one_batch_size(count: int, batch_size: int, parts: int = 1) -> int:
    """The one batch size for `count` films: `batch_size` cut down to a multiple of `parts`, or fewer films' worth
    rounded up to that multiple (no batch larger than the films need)."""
    return max(parts, min(batch_size - batch_size % parts, count + padding(count, parts)))


def with_copies(rows: np.ndarray, extra: int) -> np.ndarray:
    """`rows` and `extra` copies of its first rows after them."""
    return rows if extra == 0 else np.concatenate([rows, rows[np.arange(extra) % len(rows)]])


def weighted_split(
    films: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, batch_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Films, labels and per-film weights padded to whole batches of `batch_size`. The copies weigh 0 and every real
    film's weight is scaled by padded/real count: Keras averages a batch's loss over all its rows, so the scale
    keeps an epoch's loss what it is unpadded (and a step's gradient, on average over the shuffles), while AUC
    and accuracy, ratios of weights, ignore it. A trainable BatchNorm still counts the copies in its batch
    statistics: at most batch_size - 1 films an epoch."""
    extra = padding(len(films), batch_size)
    real = np.ones(len(films), np.float32) if weights is None else np.asarray(weights, np.float32)
    scaled = real * np.float32((len(films) + extra) / len(films))
    return with_copies(films, extra), with_copies(labels, extra), np.concatenate([scaled, np.zeros(extra, np.float32)])


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
    """model.compile's metrics, AUC and accuracy, as weighted metrics that see the weights of a padded split
    and count its real films only."""
    return {"weighted_metrics": [RealFilmsAUC(name="auc"), RealFilmsAccuracy(name="accuracy")]}


def fit_data(arrays: SplitArrays, class_weight: dict[int, float] | None, batch_size: int) -> dict[str, Any]:
    """model.fit's data arguments: the training split weighted per class, validated on the validation split,
    both padded to whole batches of `batch_size`. A padded training split is a copy: one split at one size in
    memory again while the model trains."""
    labels = arrays.y_train.astype(int)
    per_film = None if class_weight is None else np.vectorize(class_weight.__getitem__)(labels)
    x, y, sample_weight = weighted_split(arrays.x_train, arrays.y_train, per_film, batch_size)
    return {
        "x": x,
        "y": y,
        "sample_weight": sample_weight,
        "validation_data": weighted_split(arrays.x_val, arrays.y_val, None, batch_size),
        "batch_size": batch_size,
    }


def predict_probabilities(model: keras.Model, films: np.ndarray, batch_size: int) -> np.ndarray:
    """P(positive class) per film, one value each, in batches of one size: `batch_size` cut down to a multiple
    of the device count, or fewer films' worth rounded up to that multiple (no batch larger than the films
    need). In inference a batch's size does not change its films' outputs."""
    batch = one_batch_size(len(films), batch_size, replicas())
    padded = with_copies(films, padding(len(films), batch))
    return model.predict(padded, batch_size=batch, verbose=0).ravel()[: len(films)]


def first_rows(arrays: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    """The first `count` rows of each array, padded with copies to `count` when an array is shorter: whole
    batches, as every trial's steps take, for the calibration's timed passes."""
    return [with_copies(head, count - len(head)) for head in (array[:count] for array in arrays)]

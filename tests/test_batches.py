"""Splits padded to whole batches (which also divide among several devices, for JAX's DataParallel) score,
train and predict as the films alone do, and a model traces its steps once. The device count is patched where
it matters, so these run on one device and on any backend; the study on really several devices is
tests/test_jax_backend.py's."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from study.data.split import SplitArrays
from study.device import check_batch_divides
from study.errors import UserInputError
from study.search import batches

PARTS = 3
BATCH = 6


def _model(learning_rate: float = 0.0) -> keras.Model:
    """A small model compiled as the study compiles its own: same loss, same metrics."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss="binary_crossentropy",
        **batches.study_metrics(),
    )
    return model


def _films(count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(count)
    return rng.normal(size=(count, 4)).astype(np.float32), (rng.random(count) < 0.4).astype(np.float32)


@pytest.fixture
def three_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches, "replicas", lambda: PARTS)


def test_a_padded_validation_split_scores_as_its_films_alone() -> None:
    """val_loss, val_auc and val_accuracy of 13 films padded to 18 are the 13 films' own."""
    model = _model()
    films, labels = _films(13)
    alone = model.evaluate(films, labels, batch_size=BATCH, verbose=0, return_dict=True)
    x, y, weights = batches.weighted_split(films, labels, None, BATCH)
    assert len(x) == 18 and weights[-5:].tolist() == [0.0] * 5
    padded = model.evaluate(x, y, sample_weight=weights, batch_size=BATCH, verbose=0, return_dict=True)
    for name in ("loss", "auc", "accuracy"):
        assert padded[name] == pytest.approx(alone[name], rel=1e-5), name


def test_a_padded_training_split_keeps_its_class_weighted_loss() -> None:
    """Training on 37 films padded to 42: an epoch's loss (learning rate 0, so the weights stay) is the
    class-weighted loss of the 37 films, its AUC and accuracy theirs unweighted, as on one device, and the
    validation figures are the 13 validation films' own."""
    model = _model(learning_rate=0.0)
    films, labels = _films(37)
    val_films, val_labels = _films(13)
    class_weight = {0: 0.7, 1: 1.9}
    data = batches.fit_data(SplitArrays(films, labels, val_films, val_labels), class_weight, BATCH)
    assert len(data["x"]) == 42 and len(data["validation_data"][0]) == 18 and data["batch_size"] == BATCH
    history = model.fit(**data, epochs=1, shuffle=True, verbose=0).history
    per_film = np.where(labels == 1, class_weight[1], class_weight[0])
    weighted = model.evaluate(films, labels, sample_weight=per_film, batch_size=BATCH, verbose=0, return_dict=True)
    validation = model.evaluate(val_films, val_labels, batch_size=BATCH, verbose=0, return_dict=True)
    unweighted = model.evaluate(films, labels, batch_size=BATCH, verbose=0, return_dict=True)
    assert history["loss"][0] == pytest.approx(weighted["loss"], rel=1e-5)
    assert history["accuracy"][0] == pytest.approx(unweighted["accuracy"], rel=1e-5)
    assert history["auc"][0] == pytest.approx(unweighted["auc"], rel=1e-5)
    assert history["val_loss"][0] == pytest.approx(validation["loss"], rel=1e-5)
    assert history["val_auc"][0] == pytest.approx(validation["auc"], rel=1e-5)
    assert history["val_accuracy"][0] == pytest.approx(validation["accuracy"], rel=1e-5)


class CountedSteps(keras.Sequential):
    """Counts the traces of its training and evaluation steps (Python runs in a step only while it is traced)."""

    traces: dict[str, int]

    def train_step(self, *args: Any, **kwargs: Any) -> Any:
        self.traces["train"] += 1
        return super().train_step(*args, **kwargs)

    def test_step(self, *args: Any, **kwargs: Any) -> Any:
        self.traces["test"] += 1
        return super().test_step(*args, **kwargs)


def test_a_model_traces_its_training_and_evaluation_steps_once() -> None:
    """A last, smaller batch would be a new input shape, which JAX traces and compiles again: 14 s more per
    model at the smoke study's size on two CPU cores. (TensorFlow traces once for any batch size, and its XLA,
    like JAX's, compiles per shape.)"""
    model = CountedSteps([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.traces = {"train": 0, "test": 0}
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy", **batches.study_metrics())
    films, labels = _films(37)
    model.fit(**batches.fit_data(SplitArrays(films, labels, films[:13], labels[:13]), None, BATCH), epochs=2, verbose=0)
    assert model.traces == {"train": 1, "test": 1}


def test_predictions_are_one_per_film_in_batches_the_devices_share(three_devices: None) -> None:
    model = _model()
    films, _ = _films(14)
    batches_seen: list[tuple[int, int]] = []
    predict = model.predict

    def spy(x: np.ndarray, batch_size: int, **kwargs: Any) -> np.ndarray:
        batches_seen.append((len(x), batch_size))
        return predict(x, batch_size=batch_size, **kwargs)

    model.predict = spy  # type: ignore[method-assign]
    for batch_size in (BATCH, 32):
        probs = batches.predict_probabilities(model, films, batch_size=batch_size)
        np.testing.assert_allclose(probs, predict(films, verbose=0).ravel(), atol=1e-6)
    assert batches_seen == [(18, BATCH), (15, 15)]  # whole batches; no batch larger than the films need


def test_a_batch_size_the_devices_cannot_share_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("study.device.replicas", lambda: 4)
    check_batch_divides(32)
    expected = r"search\.batch_size 30: .* multiple of 4 \(--set search\.batch_size=28\)"
    with pytest.raises(UserInputError, match=expected):
        check_batch_divides(30)

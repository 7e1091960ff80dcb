"""The fused Adam trains exactly as Keras's Adam: same formula, one op per variable."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from study.search.optimizer import FusedAdam


def _trained_weights(optimizer: keras.optimizers.Optimizer) -> list[np.ndarray]:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 6)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    return [np.asarray(weight) for weight in model.get_weights()]


def test_fused_adam_takes_the_same_steps_as_keras_adam() -> None:
    fused = _trained_weights(FusedAdam(0.05))
    plain = _trained_weights(keras.optimizers.Adam(0.05))
    assert any(not np.allclose(a, b) for a, b in zip(fused, _initial_weights(), strict=True)), "the model trained"
    for got, expected in zip(fused, plain, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)  # float rounding; a step is 0.05


def _initial_weights() -> list[np.ndarray]:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    return [np.asarray(weight) for weight in model.get_weights()]


def test_a_saved_model_with_the_fused_adam_loads_back(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=FusedAdam(1e-3), loss="mse")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer, FusedAdam) and np.isclose(float(loaded.optimizer.learning_rate), 1e-3)

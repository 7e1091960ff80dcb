"""What only the JAX backend needs: every model compiles with XLA, augmentation included. Runs in bash .ci/run's
JAX environment (KERAS_BACKEND=jax); skipped on TensorFlow."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from study.config import ModelConfig
from study.search.hypermodel import build_model
from study.search.saving import load_model

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX backend only (KERAS_BACKEND=jax)")


CFG = ModelConfig(
    weights="none", alpha=0.35, bn_momentum=0.9, horizontal_flip=True, precision="float32", xla="off",
    require_gpu=False, deterministic=False,
)  # fmt: skip


def test_an_augmented_model_trains_compiled_on_jax_whatever_model_xla_says() -> None:
    """Keras runs a whole training step op by op when one layer says it cannot compile, as its rotation, zoom and
    translation say of themselves (true of TensorFlow's kernel only): 3x slower per epoch on two CPU cores."""
    model = build_model(32, augmentation=0.3, dropout=0.1, unfrozen_layers=-1, learning_rate=1e-3, model_cfg=CFG)
    films = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 1), dtype=np.uint8)
    history = model.fit(films, np.tile([0.0, 1.0], 8), batch_size=8, epochs=1, verbose=0)
    assert model.jit_compile is True
    assert np.isfinite(history.history["loss"]).all()


def test_a_loaded_augmented_model_predicts_compiled(tmp_path: Path) -> None:
    """The flag is not saved: evaluate, export, Grad-CAM and predict.py load the best model, and Keras's own
    loader leaves it predicting op by op."""
    model = build_model(32, augmentation=0.3, dropout=0.1, unfrozen_layers=-1, learning_rate=1e-3, model_cfg=CFG)
    model.save(tmp_path / "model.keras")
    films = np.zeros((4, 32, 32, 1), np.uint8)
    plain = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    plain.predict(films, verbose=0)
    assert plain.jit_compile is False, "Keras now compiles it by itself: load_model's mending can go"
    loaded = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(films, verbose=0), model.predict(films, verbose=0), atol=1e-6)
    assert loaded.jit_compile is True

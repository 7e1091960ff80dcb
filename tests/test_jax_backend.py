"""What only the JAX backend needs: every model compiles with XLA, augmentation included. Runs in bash .ci/run's
JAX environment (KERAS_BACKEND=jax); skipped on TensorFlow."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from study.config import ModelConfig
from study.search.hypermodel import build_model

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX backend only (KERAS_BACKEND=jax)")


def test_an_augmented_model_trains_compiled_on_jax_whatever_model_xla_says() -> None:
    """Keras runs a whole training step op by op when one layer says it cannot compile, as its rotation, zoom and
    translation say of themselves (true of TensorFlow's kernel only): 3x slower per epoch on two CPU cores."""
    cfg = ModelConfig(
        weights="none", alpha=0.35, bn_momentum=0.9, horizontal_flip=True, precision="float32", xla="off",
        require_gpu=False, deterministic=False,
    )  # fmt: skip
    model = build_model(32, augmentation=0.3, dropout=0.1, unfrozen_layers=-1, learning_rate=1e-3, model_cfg=cfg)
    films = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 1), dtype=np.uint8)
    history = model.fit(films, np.tile([0.0, 1.0], 8), batch_size=8, epochs=1, verbose=0)
    assert model.jit_compile is True
    assert np.isfinite(history.history["loss"]).all()

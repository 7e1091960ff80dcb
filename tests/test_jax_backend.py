"""What only the JAX backend needs: every model compiles with XLA, augmentation included. Runs in bash .ci/run's
JAX environment (KERAS_BACKEND=jax); skipped on TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from study.explain.gradcam import GradCam
from study.search.batches import predict_probabilities
from study.search.hypermodel import build_model
from study.search.saving import load_model
from tests.several_devices import CFG, LAYER, films

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX backend only (KERAS_BACKEND=jax)")


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


def test_several_devices_train_validate_predict_and_explain_as_one(tmp_path: Path) -> None:
    """On several devices (two host devices here; several GPUs alike) every model holds its weights on each and
    splits every batch across them, splits of any size included; the saved model's predictions and Grad-CAM
    maps on one device equal those the several made, and the validation loss is the validation films' own."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    script = Path(__file__).with_name("several_devices.py")
    subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, check=True, timeout=600)
    several = np.load(tmp_path / "several.npz")
    assert int(several["replicas"]) == 2
    assert int(several["devices_per_variable"]) == int(several["devices_per_loaded_variable"]) == 2
    model = load_model(tmp_path / "model.keras")
    x_val, y_val = films(13, seed=2)
    probs = predict_probabilities(model, x_val, batch_size=32)
    np.testing.assert_allclose(several["probs"], probs, atol=1e-5)
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    loss = -np.mean(y_val * np.log(clipped) + (1 - y_val) * np.log(1 - clipped))
    assert float(several["val_loss"]) == pytest.approx(loss, rel=1e-4)
    maps = GradCam(model, LAYER).maps(x_val[:5], np.arange(5) % 2 == 0, "gradcam")
    np.testing.assert_allclose(several["maps"], maps, atol=1e-4)

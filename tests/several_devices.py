"""The study's model trained, validated, predicted and explained on several JAX devices, for the test that
compares it with one device: python tests/several_devices.py OUT_DIR. Run with KERAS_BACKEND=jax and
XLA_FLAGS=--xla_force_host_platform_device_count=2 (host devices stand in for GPUs: the same DataParallel)."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from study.config import ModelConfig
from study.data.split import SplitArrays
from study.device import replicas
from study.explain.gradcam import GradCam
from study.search.batches import fit_data, predict_probabilities
from study.search.hypermodel import build_model, build_optimizer
from study.search.saving import load_model, save_model_atomically

CFG = ModelConfig(
    weights="none", alpha=0.35, bn_momentum=0.9, horizontal_flip=True, precision="float32", xla="off",
    require_gpu=False, deterministic=False,
)  # fmt: skip
SIZE = 32
LAYER = "block_13_expand_relu"


def films(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (count, SIZE, SIZE, 1), dtype=np.uint8), (np.arange(count) % 3 == 0).astype("float32")


def model() -> keras.Model:
    return build_model(SIZE, augmentation=0.3, dropout=0.1, unfrozen_layers=-1, learning_rate=1e-3, model_cfg=CFG)


def devices_holding(variable: keras.Variable) -> int:
    return len(variable.value.sharding.device_set)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    model()
    keras.backend.clear_session()  # as keras-tuner does before every trial: the distribution must survive it
    keras.utils.set_random_seed(0)
    trained = model()
    build_optimizer(trained)
    x_train, y_train = films(37, seed=1)  # neither count divides by the batch (8) or the two devices
    x_val, y_val = films(13, seed=2)
    history = trained.fit(
        **fit_data(SplitArrays(x_train, y_train, x_val, y_val), {0: 0.75, 1: 1.5}, batch_size=8), epochs=1, verbose=0
    ).history
    save_model_atomically(trained, out / "model.keras")
    keras.backend.clear_session()
    loaded = load_model(out / "model.keras")  # evaluate, export, Grad-CAM and predict.py load the best model
    np.savez(
        out / "several.npz",
        replicas=replicas(),
        devices_per_variable=min(devices_holding(v) for v in trained.variables),
        devices_per_loaded_variable=min(devices_holding(v) for v in loaded.variables),
        val_loss=history["val_loss"][0],
        probs=predict_probabilities(trained, x_val, batch_size=32),
        maps=GradCam(trained, LAYER).maps(x_val[:5], np.arange(5) % 2 == 0, "gradcam"),
    )

"""The fused BatchNorm trains and predicts as Keras's own, in one TensorFlow op, and survives a save."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from study.config import ModelConfig
from study.search.batchnorm import FusedBatchNormalization
from study.search.hypermodel import build_model
from study.search.saving import load_model

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the fused kernel is TensorFlow's; other backends run Keras's code"
)

CFG = ModelConfig(
    weights="none", alpha=0.35, bn_momentum=0.9, horizontal_flip=True, precision="float32", xla="off",
    require_gpu=False, deterministic=False,
)  # fmt: skip


def _step(layer: keras.layers.BatchNormalization, films: np.ndarray) -> list[np.ndarray]:
    """One training step's output and gradients (films, gamma, beta) through a traced function, as fit runs it."""
    import tensorflow as tf

    layer.build(films.shape)
    layer.gamma.assign(np.linspace(0.5, 1.5, films.shape[-1]))
    layer.beta.assign(np.linspace(-1.0, 1.0, films.shape[-1]))

    @tf.function
    def step(x: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))  # any loss whose gradient depends on y
        return [y, *tape.gradient(loss, [x, layer.gamma, layer.beta])]

    return [np.asarray(value) for value in step(tf.constant(films))]


def test_the_fused_layer_trains_and_predicts_as_keras_batchnorm() -> None:
    films = np.random.default_rng(0).normal(2.0, 3.0, size=(8, 5, 5, 4)).astype("float32")
    fused, plain = FusedBatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    for got, expected in zip(_step(fused, films), _step(plain, films), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance, plain.moving_variance, rtol=1e-5)  # biased, as Keras
    assert not np.allclose(plain.moving_variance, 1.0), "the step moved the statistics"
    np.testing.assert_allclose(fused(films, training=False), plain(films, training=False), rtol=1e-5, atol=1e-5)


def test_the_study_model_runs_the_fused_kernel_and_loads_back(tmp_path: Path) -> None:
    import tensorflow as tf

    model = build_model(32, augmentation=0.0, dropout=0.1, unfrozen_layers=-1, learning_rate=1e-3, model_cfg=CFG)
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is FusedBatchNormalization for layer in norms)
    assert "block_3_expand_relu" in {layer.name for layer in backbone.layers}, "the layer names Grad-CAM uses"

    films = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 1), dtype=np.uint8)
    graph = tf.function(lambda x: model(x, training=True)).get_concrete_function(tf.constant(films)).graph
    ops = {op.type for op in graph.get_operations()}
    assert "FusedBatchNormV3" in ops and "SquaredDifference" not in ops, "Keras's op-by-op moments came back"

    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(films, verbose=0), model.predict(films, verbose=0), atol=1e-6)

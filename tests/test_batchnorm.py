"""The fused BatchNorm trains and predicts as Keras's own, in one TensorFlow op, and survives a save."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from study.config import ModelConfig
from study.search import batchnorm, hypermodel
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
    fused, plain = batchnorm.BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    for got, expected in zip(_step(fused, films), _step(plain, films), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance, plain.moving_variance, rtol=1e-5)  # biased, as Keras
    assert not np.allclose(plain.moving_variance, 1.0), "the step moved the statistics"
    np.testing.assert_allclose(fused(films, training=False), plain(films, training=False), rtol=1e-5, atol=1e-5)


def _model(monkeypatch: pytest.MonkeyPatch | None = None) -> keras.Model:
    """The study's model at 32 px; with Keras's own BatchNorm when `monkeypatch` is given."""
    if monkeypatch is not None:
        monkeypatch.setattr(hypermodel, "with_fused_batchnorm", lambda model: model)
    keras.utils.set_random_seed(0)
    return hypermodel.build_model(32, 0.0, 0.1, unfrozen_layers=-1, learning_rate=1e-3, model_cfg=CFG)


def _op_types(model: keras.Model, films: np.ndarray, training: bool) -> set[str]:
    """The op types of one traced pass and its gradient with respect to the trainable weights."""
    import tensorflow as tf

    def step(x: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=training))
        return tape.gradient(loss, model.trainable_variables)

    graph = tf.function(step).get_concrete_function(tf.constant(films)).graph
    return {op.type for op in graph.get_operations()}


FILMS = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 1), dtype=np.uint8)


def test_the_study_model_trains_on_the_fused_kernel_and_loads_back(tmp_path: Path) -> None:
    model = _model()
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is batchnorm.BatchNormalization for layer in norms)
    assert "block_3_expand_relu" in {layer.name for layer in backbone.layers}, "the layer names Grad-CAM uses"
    ops = _op_types(model, FILMS, training=True)
    assert {"FusedBatchNormV3", "FusedBatchNormGradV3"} <= ops, "the fused op, forward and backward"
    assert "SquaredDifference" not in ops, "Keras's op-by-op moments came back"

    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(FILMS, verbose=0), model.predict(FILMS, verbose=0), atol=1e-6)


def test_a_checkpoint_written_with_keras_batchnorm_loads_into_the_fused_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study started before the fusing resumes: its trials' checkpoints load into the models built now."""
    plain = _model(monkeypatch)
    plain.fit(FILMS, np.array([0.0, 1.0, 0.0, 1.0]), epochs=1, verbose=0)  # moving statistics off their start
    plain.save_weights(tmp_path / "checkpoint.weights.h5")
    monkeypatch.undo()
    fused = _model()
    fused.load_weights(tmp_path / "checkpoint.weights.h5")
    np.testing.assert_allclose(fused.predict(FILMS, verbose=0), plain.predict(FILMS, verbose=0), atol=1e-5)


def test_inference_keeps_keras_code_once_deterministic_kernels_are_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorFlow's GPU kernel refuses the fused op's gradient in inference mode under op determinism, and
    Grad-CAM (and a frozen pretrained backbone) takes that gradient."""
    model = _model()
    assert "FusedBatchNormV3" in _op_types(model, FILMS, training=False)
    monkeypatch.setattr(batchnorm, "deterministic_kernels", lambda: True)
    assert "FusedBatchNormV3" not in _op_types(model, FILMS, training=False)
    assert "FusedBatchNormGradV3" in _op_types(model, FILMS, training=True), "training still fuses"

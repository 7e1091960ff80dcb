"""The searched dropout: Keras's Dropout in what it does and what it writes, with a rate that models share one
compiled step over (on JAX, where the compilation cache then serves one trial's step to the next)."""

from __future__ import annotations

from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from study.search.dropout import SearchedDropout
from study.search.saving import load_model, save_model_atomically


def _model(dropout: keras.layers.Layer) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(32, name="hidden"), dropout, keras.layers.Dense(1, name="out")]
    )


@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_training_drops_that_share_and_keeps_the_mean_and_inference_drops_nothing(rate: float) -> None:
    layer = SearchedDropout(rate, seed=1)
    films = np.ones((4000, 50), np.float32)
    dropped = keras.ops.convert_to_numpy(layer(films, training=True))
    assert (dropped == 0).mean() == pytest.approx(rate, abs=0.01)
    np.testing.assert_allclose(dropped[dropped != 0], 1 / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(films, training=False)), films)


def test_a_saved_model_keeps_its_rate_and_its_checkpoints_load_as_keras_dropouts_do(tmp_path: Path) -> None:
    """The rate travels in the config; a weights checkpoint holds no weights for the layer, as for Keras's
    Dropout, so trial checkpoints written before this layer (with Keras's Dropout) load into it, and the other
    way round."""
    ours = _model(SearchedDropout(0.25, name="dropout"))
    films = np.random.default_rng(0).normal(size=(8, 16)).astype(np.float32)
    save_model_atomically(ours, tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    assert loaded.get_layer("dropout").rate == 0.25
    assert float(keras.ops.convert_to_numpy(loaded.get_layer("dropout").rate_variable)) == 0.25
    np.testing.assert_allclose(loaded.predict(films, verbose=0), ours.predict(films, verbose=0), atol=1e-6)
    ours.save_weights(tmp_path / "ours.weights.h5")
    with h5py.File(tmp_path / "ours.weights.h5", "r") as weights:
        stored: list[str] = []
        weights.visititems(lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None)
    assert stored and not [name for name in stored if "dropout" in name], stored
    keras_dropout = _model(keras.layers.Dropout(0.25, name="dropout"))
    keras_dropout.load_weights(tmp_path / "ours.weights.h5")
    np.testing.assert_allclose(keras_dropout.predict(films, verbose=0), ours.predict(films, verbose=0), atol=1e-6)
    keras_dropout.save_weights(tmp_path / "keras.weights.h5")
    again = _model(SearchedDropout(0.25, name="dropout"))
    again.load_weights(tmp_path / "keras.weights.h5")
    assert float(keras.ops.convert_to_numpy(again.get_layer("dropout").rate_variable)) == 0.25
    np.testing.assert_allclose(again.predict(films, verbose=0), ours.predict(films, verbose=0), atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX backend only (KERAS_BACKEND=jax)")
def test_on_jax_models_that_differ_in_dropout_alone_compile_to_one_step() -> None:
    """What JAX compiles is the lowered step: equal text, one compile (and one cache entry) for both."""
    import jax

    films = np.zeros((4, 16), np.float32)

    def lowered_training_pass(dropout: keras.layers.Layer) -> str:
        keras.backend.clear_session()
        model = _model(dropout)

        def forward(trainable: list, non_trainable: list, x: jax.Array) -> jax.Array:
            return model.stateless_call(trainable, non_trainable, x, training=True)[0]

        variables = [[v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]]
        return jax.jit(forward).lower(*variables, films).as_text()

    assert lowered_training_pass(SearchedDropout(0.1, name="dropout")) == lowered_training_pass(
        SearchedDropout(0.4, name="dropout")
    )
    assert lowered_training_pass(keras.layers.Dropout(0.1, name="dropout")) != lowered_training_pass(
        keras.layers.Dropout(0.4, name="dropout")
    ), "Keras's Dropout now shares its step across rates: this layer can go"

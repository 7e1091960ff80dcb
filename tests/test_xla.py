"""model.xla on TensorFlow: its XLA cannot compile the augmentation's rotation, zoom and translation, and Keras then
trains the model without XLA after a generic warning alone, so the search says once which trials are compiled."""

from __future__ import annotations

import dataclasses

import keras
import pytest

from study.config import builtin_config_path, load_config
from study.search.hypermodel import build_model, xla_caveat

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="on JAX every trial is compiled")


def test_xla_on_compiles_only_the_trials_without_augmentation_and_the_search_says_so() -> None:
    cfg = load_config(builtin_config_path("overnight"))
    model_cfg = dataclasses.replace(cfg.model, weights="none", alpha=0.35, xla="on")
    with pytest.warns(UserWarning, match="jit_compile"):
        augmented = build_model(32, 0.5, 0.1, -1, 1e-3, model_cfg)
    assert not augmented.jit_compile, "TensorFlow's XLA compiles the augmentation now: xla_caveat can go"
    assert build_model(32, 0.0, 0.1, -1, 1e-3, model_cfg).jit_compile
    caveat = xla_caveat(model_cfg, (0.0, 0.5, 1.0))
    assert caveat is not None and 'model.xla = "on"' in caveat and "augmentation 0.5, 1 train without" in caveat
    assert xla_caveat(dataclasses.replace(model_cfg, xla="auto"), (1.0, 0.0)) is not None
    assert xla_caveat(dataclasses.replace(model_cfg, xla="off"), (0.0, 0.5, 1.0)) is None  # nothing asked of XLA
    assert xla_caveat(model_cfg, (0.0,)) is None  # no trial augments

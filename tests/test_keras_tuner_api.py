"""The keras-tuner adapter on a tiny model: what it promises beyond keras-tuner's own Hyperband."""

from __future__ import annotations

from pathlib import Path

import keras
import keras_tuner
import numpy as np

from study.search.keras_tuner_api import HyperbandTunerBase


class _TinyModel(keras_tuner.HyperModel):
    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("units", 2, 8), activation="relu"),
                                  keras.layers.Dense(1)])  # fmt: skip
        model.compile(optimizer="sgd", loss="mse")
        return model


def test_a_continued_trial_loads_from_its_own_checkpoint_without_its_parents(tmp_path: Path) -> None:
    """The best trial may continue one whose checkpoint was cut short on Drive (the kill loop met it) or pruned
    once the search ended; its own checkpoint is all its model needs. keras-tuner's load_model would load the
    parent's first and fail."""
    oracle = keras_tuner.oracles.HyperbandOracle(objective="val_loss", max_epochs=2, factor=2, seed=0)
    tuner = HyperbandTunerBase(oracle=oracle, hypermodel=_TinyModel(), directory=str(tmp_path), project_name="tiny")
    features = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    tuner.search(features, features.sum(axis=1), validation_data=(features, features.sum(axis=1)), verbose=0)
    continued = next(trial for trial in oracle.trials.values() if "tuner/trial_id" in trial.hyperparameters.values)
    parent = str(continued.hyperparameters.values["tuner/trial_id"])
    tuner.checkpoint_file(parent).unlink()

    model = tuner.load_trial_model(continued)

    saved = keras.models.clone_model(model)
    saved.load_weights(tuner.checkpoint_file(continued.trial_id))
    for ours, theirs in zip(model.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)

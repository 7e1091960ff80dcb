"""The one place that touches keras-tuner's private API, checked against the version it was written for.

The study's kill-safety needs what keras-tuner keeps private: where its state files live, its retry queue,
the hook that saves a trial, the hook that builds a trial's model, and a Hyperband tuner built around an
oracle of our own; a chief needs keras-tuner's trial server. Each is named here once, behind a public name, so a
keras-tuner upgrade is checked in one module; another version is refused at import with what to install.
"""

from __future__ import annotations

import os
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import h5py
import keras
import keras_tuner
from keras_tuner import synchronized
from keras_tuner.engine.trial import Trial, TrialStatus
from keras_tuner.oracles import HyperbandOracle
from keras_tuner.src.distribute import utils as distribute_utils

from study.errors import UserInputError

SUPPORTED_VERSION = "1.4.8"
CHIEF_POLL_SECONDS = 1.0  # how often a chief checks whether its last worker has left

if keras_tuner.__version__ != SUPPORTED_VERSION:
    raise UserInputError(
        f"keras-tuner {keras_tuner.__version__} is installed; this study relies on the internals of keras-tuner "
        f"{SUPPORTED_VERSION} to resume after a kill: pip install keras-tuner=={SUPPORTED_VERSION}"
    )

__all__ = ["HyperbandOracleBase", "HyperbandTunerBase", "Trial", "TrialStatus", "synchronized"]


class HyperbandOracleBase(HyperbandOracle):
    """keras-tuner's Hyperband oracle, with its private state files and retry queue under public names."""

    def set_seed(self, seed: int) -> None:
        """keras-tuner takes `seed or random.randint(1, 10000)`, so seed 0 would draw a random seed."""
        self.seed = self._seed_state = seed

    def oracle_file(self) -> Path:
        return Path(self._get_oracle_fname())

    def trial_dir(self, trial_id: str) -> Path:
        return Path(self._get_trial_dir(trial_id))

    @property
    def brackets(self) -> list[dict[str, Any]]:
        """Hyperband's open brackets: {"bracket_num", "rounds": [[{"id", "past_id"?}, ...], ...]}."""
        return self._brackets

    def round_size(self, bracket_num: int, round_num: int) -> int:
        return self._get_size(bracket_num, round_num)

    @property
    def retry_queue(self) -> list[str]:
        """Trials handed out but not ended (keras-tuner's `_retry_queue`): run again on reload."""
        return self._retry_queue

    def _save_trial(self, trial: Trial) -> None:  # keras-tuner's hook, called wherever it saves a trial
        self.save_trial_file(trial)

    def save_trial_file(self, trial: Trial) -> None:
        super()._save_trial(trial)


class HyperbandTunerBase(keras_tuner.Hyperband):
    """keras-tuner's Hyperband tuner around a given oracle, with its private files and hooks named."""

    def __init__(self, oracle: HyperbandOracle, **kwargs: Any) -> None:
        # keras_tuner.Hyperband.__init__ would build its own oracle; its trial logic is kept.
        keras_tuner.Tuner.__init__(self, oracle=oracle, **kwargs)

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """keras-tuner's search; a chief serves the trials through `serve_trials` instead of keras-tuner's server."""
        if not distribute_utils.is_chief_oracle():
            super().search(*fit_args, **fit_kwargs)
            return
        self.oracle.verbose = fit_kwargs.get("verbose", self.oracle.verbose)
        self.save()
        serve_trials(self.oracle)

    def tuner_file(self) -> Path:
        return Path(self._get_tuner_fname())

    def checkpoint_file(self, trial_id: str) -> Path:
        return Path(self._get_checkpoint_fname(trial_id))

    def is_worker(self) -> bool:
        return self._is_worker()

    # set for a continuation whose parent's checkpoint is lost, for a retrain, and to load a finished trial
    train_from_scratch = False

    def run_trial(self, trial: Trial, *args: Any, **kwargs: Any) -> Any:
        """Hyperband's trial, except a continuation whose parent's checkpoint cannot be read (lost with a
        runtime, or cut short on Drive): it trains from its own hyperparameters from epoch 0 instead."""
        values = trial.hyperparameters.values
        parent = values.get("tuner/trial_id")
        self.train_from_scratch = parent is not None and not self.checkpoint_readable(str(parent))
        if not self.train_from_scratch:
            return super().run_trial(trial, *args, **kwargs)
        self.parent_lost(trial, str(parent))
        kwargs.update(epochs=values["tuner/epochs"], initial_epoch=0)
        return keras_tuner.Tuner.run_trial(self, trial, *args, **kwargs)  # Hyperband's would set initial_epoch

    def fit_from_scratch(self, hp: keras_tuner.HyperParameters, epochs: int) -> keras.Model:
        """Build and train a trial's model from its hyperparameters alone (its checkpoint is lost)."""
        self.train_from_scratch = True
        model = self._build_hypermodel(hp)
        self.hypermodel.fit(hp, model, epochs=epochs)
        return model

    def load_trial_model(self, trial: Trial) -> keras.Model:
        """A finished trial's model from its own checkpoint. Hyperband's load_model would first load, as starting
        weights, the checkpoint of the trial it continued, which may be cut short on Drive or already pruned."""
        self.train_from_scratch = True
        try:
            return self.load_model(trial)
        finally:
            self.train_from_scratch = False

    def _build_hypermodel(self, hp: keras_tuner.HyperParameters) -> keras.Model:  # called for every trial
        self.before_build(hp)
        if self.train_from_scratch:
            return keras_tuner.Tuner._build_hypermodel(self, hp)  # Hyperband's would load the parent's checkpoint
        return super()._build_hypermodel(hp)

    def checkpoint_readable(self, trial_id: str) -> bool:
        """The trial's weights file is there and every array in it reads back."""
        try:
            with h5py.File(self.checkpoint_file(trial_id), "r") as weights:
                weights.visititems(_read_dataset)
        except (OSError, KeyError, ValueError, RuntimeError):
            return False
        return True

    def before_build(self, hp: keras_tuner.HyperParameters) -> None:
        """Runs after keras-tuner's clear_session(), just before the trial's model is built."""

    def parent_lost(self, trial: Trial, parent_id: str) -> None:
        """Runs before a continuation trains from scratch because its parent's checkpoint is lost."""


def serve_trials(oracle: HyperbandOracle) -> None:
    """keras-tuner's chief server (`oracle_chief.start_server`), returning within a second of its last worker's
    goodbye: keras-tuner's own checks every 20 s once a worker has been told to stop, so the chief sat idle for up
    to 20 s after the search (22 s measured with two workers) before its later stages could start."""
    from keras_tuner.src.distribute import oracle_chief  # late, as keras-tuner does: it loads the protobuf modules

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    oracle_chief.protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}")
    server.start()
    while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
        time.sleep(CHIEF_POLL_SECONDS)
    server.stop(grace=CHIEF_POLL_SECONDS).wait()  # the last worker's final reply may still be on its way


def _read_dataset(_: str, item: h5py.Group | h5py.Dataset) -> None:
    """Read one array (h5py's visit stops at the first callback that returns a value, so none is returned)."""
    if isinstance(item, h5py.Dataset):
        item[()]

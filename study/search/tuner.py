"""The Hyperband tuner made safe to kill: atomic state files, each trial seeded from its own values, a NaN
loss failing its trial, and a fresh process when memory has grown too far."""

from __future__ import annotations

import importlib.util
import logging
import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import keras_tuner

from study.budget import MemoryWatch, format_duration
from study.config import StudyConfig
from study.device import gpu_names
from study.results import HISTORY_COLUMNS, ResultsPaths, read_csv, write_csv, write_json
from study.results.mirror import Mirror
from study.search.keras_tuner_api import HyperbandTunerBase, Trial
from study.search.ledger import OBJECTIVE, trial_epochs
from study.search.oracle import DurableHyperbandOracle, trial_seed

logger = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = 1.0


class StudyHyperband(HyperbandTunerBase):
    """Hyperband that is safe to kill: atomic state files, each trial seeded from its own values, a NaN loss
    failing its trial. On a worker it logs its own trials; the books are kept where the oracle is."""

    def __init__(self, paths: ResultsPaths, cfg: StudyConfig, **kwargs: Any) -> None:
        oracle = DurableHyperbandOracle(
            objective=keras_tuner.Objective(OBJECTIVE, direction="max"),
            max_epochs=cfg.search.max_epochs,
            factor=cfg.search.factor,
            hyperband_iterations=cfg.search.hyperband_iterations,
            seed=cfg.search.seed,
            max_consecutive_failed_trials=cfg.search.max_consecutive_failed_trials,
        )
        super().__init__(oracle, **kwargs)
        self.search_seed = cfg.search.seed
        self.memory = MemoryWatch(cfg.budget.memory_growth)
        self._trials_run_here = 0
        self.paths = paths
        self._epoch_started = 0.0
        self._trial_started = 0.0
        self._requests_since_trial = 0
        self.mirror: Mirror | None = None

    def save(self) -> None:
        """keras-tuner writes its tuner file in place; a kill mid-write would make the study unloadable."""
        if not self.is_worker():
            self.oracle.save()
        write_json(self.tuner_file(), self.get_state())

    def before_build(self, hp: keras_tuner.HyperParameters) -> None:
        """Seed each trial from its own hyperparameters (after keras-tuner's clear_session, which drops the
        global seed): a trial rerun after a kill, or in another process, trains exactly as it would have."""
        keras.utils.set_random_seed(trial_seed(self.search_seed, hp.values))

    def run_trial(self, trial: Trial, *args: Any, **kwargs: Any) -> Any:
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), FailOnNaN()]
        return super().run_trial(trial, *args, **kwargs)

    def parent_lost(self, trial: Trial, parent_id: str) -> None:
        logger.warning(
            "trial [%s]: the checkpoint of trial %s, which it continues, is missing or unreadable (lost with a "
            "runtime?); it trains from its hyperparameters for all %s epochs instead",
            trial.trial_id, parent_id, trial.hyperparameters.values["tuner/epochs"],
        )  # fmt: skip

    def pre_create_trial(self) -> None:
        """Between trials: restart when memory has grown too far (see MemoryWatch); and a worker
        asking while Hyperband waits for a round to finish gets IDLE and asks again at once, so wait a
        second between such requests instead of spinning on the chief."""
        if self._trials_run_here:
            self.memory.between_steps()
        self._requests_since_trial += 1
        if self._requests_since_trial > 1:
            time.sleep(IDLE_WAIT_SECONDS)

    def on_trial_begin(self, trial: Trial) -> None:
        super().on_trial_begin(trial)
        self._requests_since_trial = 0
        self._trial_started = time.monotonic()
        if self.is_worker():
            values = trial.hyperparameters.values
            logger.info(
                "trial [%s] (bracket %s, round %s) %d epochs @ %s px",
                trial.trial_id, values.get("tuner/bracket"), values.get("tuner/round"), trial_epochs(trial),
                values.get("resolution"),
            )  # fmt: skip

    def on_epoch_begin(self, trial: Trial, model: keras.Model, epoch: int, logs: Any = None) -> None:
        self._epoch_started = time.monotonic()

    def on_epoch_end(self, trial: Trial, model: keras.Model, epoch: int, logs: Any = None) -> None:
        """Log the epoch and append it to the trial's history: keras-tuner itself keeps only the best epoch."""
        metrics = {name: float(value) for name, value in (logs or {}).items() if name in HISTORY_COLUMNS}
        shown = " ".join(f"{name} {metrics[name]:.4f}" for name in HISTORY_COLUMNS[1:] if name in metrics)
        total = trial.hyperparameters.values.get("tuner/epochs", epoch + 1)
        logger.info("  epoch %d/%d  %s  (%.1f s)", epoch + 1, total, shown, time.monotonic() - self._epoch_started)
        history_path = self.paths.history_csv(trial.trial_id)
        initial_epoch = 0 if self.train_from_scratch else trial.hyperparameters.values.get("tuner/initial_epoch", 0)
        rows = read_csv(history_path) if epoch > initial_epoch else []
        write_csv(history_path, HISTORY_COLUMNS, [*rows, {"epoch": epoch + 1, **metrics}])

    def on_trial_end(self, trial: Trial) -> None:
        super().on_trial_end(trial)
        self._trials_run_here += 1
        if self.mirror is not None:  # only the checkpoints a later trial (or the best model) needs travel
            needed = self.oracle.checkpoints_needed()
            unneeded = [self.checkpoint_file(trial_id) for trial_id in self.oracle.trials if trial_id not in needed]
            self.mirror.sync(f"trial {trial.trial_id} {trial.status}", skip=unneeded)
        if self.is_worker():
            seconds = time.monotonic() - self._trial_started
            logger.info("trial [%s] %s in %s", trial.trial_id, trial.status, format_duration(seconds))


class FailOnNaN(keras.callbacks.Callback):
    """A NaN loss fails the trial with a message saying so (keras's TerminateOnNaN would end it quietly and
    leave a score computed from NaN weights); the search goes on with the next trial."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise keras_tuner.errors.FailedTrialError(f"loss became {float(loss)} at batch {batch + 1}")


def tensorboard_callbacks(paths: ResultsPaths) -> list[keras.callbacks.Callback]:
    """TensorBoard logs per trial under results/tensorboard; keras-tuner adds the HParams dashboard to this
    callback by itself. The writer is TensorFlow's summary API on every Keras backend: a study on JAX without
    TensorFlow installed writes no TensorBoard logs, and says so once."""
    if importlib.util.find_spec("tensorflow") is None:
        logger.info("TensorBoard: no logs (its summary writer needs TensorFlow, which is not installed)")
        return []
    return [keras.callbacks.TensorBoard(str(paths.tensorboard_dir), write_graph=False, profile_batch=0)]


def several_gpus_strategy() -> Any:
    """MirroredStrategy over every visible GPU when there are several (TensorFlow backend); else None. On JAX
    every model is built under Keras's DataParallel instead (study.device.distribute_batches)."""
    if keras.backend.backend() != "tensorflow" or len(gpu_names()) < 2:
        return None
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


@contextmanager
def quiet_optimizer_restore() -> Iterator[None]:
    """Checkpoints are loaded into freshly compiled models (continuations, the best model): Adam's moments
    restart by keras-tuner's design, and Keras warns about it every time, which tells the user nothing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer", category=UserWarning)
        yield

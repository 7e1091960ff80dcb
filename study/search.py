"""Hyperband wiring: the plan up front, one progress line per trial, trials exported as they finish.

keras-tuner has no export API and mixes its bookkeeping (`tuner/epochs`, `tuner/trial_id`, ...) into the
hyperparameters; the export reads its trials and splits those keys out into bracket/round/parent/epochs
columns so no report ever shows them as hyperparameters.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import psutil
from keras_tuner.engine.trial import Trial

from study.budget import Calibration, Deadline, TrialClock, format_duration
from study.calibration import calibrate
from study.config import StudyConfig
from study.data.split import SplitArrays
from study.device import gpu_names
from study.distributed import Role
from study.durable_oracle import ENDED_STATUSES, DurableHyperbandOracle, Refusal, trial_seed
from study.errors import UserInputError
from study.hypermodel import ChestXrayHyperModel
from study.results import (
    HISTORY_COLUMNS,
    HP_PREFIX,
    TRIAL_METRIC_COLUMNS,
    ResultsPaths,
    read_csv,
    read_json,
    trial_columns,
    write_csv,
    write_json,
)

logger = logging.getLogger(__name__)

OBJECTIVE = "val_auc"
IDLE_WAIT_SECONDS = 1.0


class SearchFailedError(UserInputError):
    """No trial completed (every setting failed): exit 2 pointing at trials.csv, not a traceback."""


TUNER_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")


def hyperband_plan(max_epochs: int, factor: int, iterations: int) -> dict[str, Any]:
    """Brackets, trials and epochs exactly as keras_tuner.HyperbandOracle schedules them (min_epochs = 1).

    keras-tuner's docstring estimate (max_epochs * log(max_epochs)^2) is off by 1.5-2x; this mirrors its
    _get_num_brackets/_get_size/_get_epochs so the user knows the real cost before the first trial.
    """
    brackets_count, epochs = 0, float(max_epochs)
    while epochs >= 1:
        epochs /= factor
        brackets_count += 1
    end_size = math.ceil(1 + math.log(max_epochs, factor))
    brackets = []
    total_trials = total_epochs = 0
    for iteration in range(iterations):
        for bracket in range(brackets_count - 1, -1, -1):
            rounds = []
            for round_num in range(bracket + 1):
                trials = math.ceil(end_size / (bracket + 1) * factor ** (bracket - round_num))
                round_epochs = math.ceil(max_epochs / factor ** (bracket - round_num))
                initial = 0 if round_num == 0 else math.ceil(max_epochs / factor ** (bracket - round_num + 1))
                rounds.append({"round": round_num, "trials": trials, "epochs": round_epochs, "initial_epoch": initial})
                total_trials += trials
                total_epochs += trials * (round_epochs - initial)
            brackets.append({"iteration": iteration, "bracket": bracket, "rounds": rounds})
    return {
        "max_epochs": max_epochs,
        "factor": factor,
        "hyperband_iterations": iterations,
        "total_trials": total_trials,
        "total_epochs": total_epochs,
        "brackets": brackets,
    }


class SearchLedger:
    """The books of the process holding the oracle (the only one, or the chief): the budget gate, one
    progress line per trial handed out, trial timings and memory, and trials.csv rewritten as trials end."""

    def __init__(
        self, paths: ResultsPaths, plan: dict[str, Any], clock: TrialClock, deadline: Deadline,
        resolutions: tuple[int, ...], distributed: bool,
    ) -> None:  # fmt: skip
        self.paths = paths
        self.plan = plan
        self.clock = clock
        self.deadline = deadline
        self.resolutions = resolutions
        self.distributed = distributed
        self.search_started = time.monotonic()
        self.started: dict[str, float] = {}
        self.seconds: dict[str, str] = {}
        self.memory: dict[str, str] = {}
        rows = _existing_rows(paths)
        for row in rows:
            self.seconds[row["trial_id"]] = row["seconds"]
            self.memory[row["trial_id"]] = row.get("rss_mb", "")
        record_trial_times(clock, rows)

    def admit(self, oracle: DurableHyperbandOracle, trial: Trial, tuner_id: str) -> Refusal | None:
        """Refuse a trial whose estimate exceeds the time left; else log its progress line and start its clock."""
        values = trial.hyperparameters.values
        epochs, resolution = _trial_epochs(trial), int(values["resolution"])
        ended = [t for t in oracle.trials.values() if t.status in ENDED_STATUSES]
        needed, left = self.clock.estimate(resolution, epochs), self.deadline.left()
        if self.clock.knows_time and needed > left:
            completed = sum(t.status == "COMPLETED" for t in ended)
            return Refusal(
                f"not started: needs about {format_duration(needed)}, {format_duration(left)} left",
                f"stopped by the time budget after {completed} of {self.plan['total_trials']} planned trials "
                f"(the next needs about {format_duration(needed)}, {format_duration(left)} was left)",
            )
        epochs_done = sum(_trial_epochs(t) for t in ended)
        remaining = self.clock.remaining(
            self.plan["total_trials"] - len(ended), self.plan["total_epochs"] - epochs_done, self.resolutions
        )
        best = oracle.get_best_trials(1)
        logger.info(
            "trial %d/%d [%s]%s (bracket %s, round %s) %d epochs @ %d px | best val AUC %s | elapsed %s | ETA %s",
            oracle.start_order.index(trial.trial_id) + 1, self.plan["total_trials"], trial.trial_id,
            f" to {tuner_id}" if self.distributed else "", values.get("tuner/bracket"), values.get("tuner/round"),
            epochs, resolution, f"{best[0].score:.3f}" if best and best[0].score is not None else "-",
            format_duration(time.monotonic() - self.search_started),
            format_duration(remaining) if self.clock.knows_time else "after the first trials",
        )  # fmt: skip
        self.started[trial.trial_id] = time.monotonic()
        return None

    def ended(self, oracle: DurableHyperbandOracle, trial: Trial) -> None:
        started = self.started.pop(trial.trial_id, None)
        if started is not None:
            seconds = time.monotonic() - started
            self.seconds[trial.trial_id] = f"{seconds:.1f}"
            if not self.distributed:  # a chief's own memory says nothing about the workers that trained
                self.memory[trial.trial_id] = f"{psutil.Process().memory_info().rss / 2**20:.0f}"
            if trial.status == "COMPLETED":
                self.clock.record(int(trial.hyperparameters.get("resolution")), _trial_epochs(trial), seconds)
            outcome = f"val AUC {trial.score:.4f}" if trial.status == "COMPLETED" else _last_line(trial.message)
            logger.info("trial [%s] %s in %s: %s", trial.trial_id, trial.status, format_duration(seconds), outcome)
        export_trials(oracle, self.paths, self.seconds, self.memory)


def record_trial_times(clock: TrialClock, rows: list[dict[str, str]]) -> None:
    """Teach the clock how long the finished trials of trials.csv really took."""
    for row in rows:
        if row["status"] == "COMPLETED" and row["seconds"]:
            epochs = int(row["epochs"]) - int(row["initial_epoch"] or 0)
            clock.record(int(row[HP_PREFIX + "resolution"]), epochs, float(row["seconds"]))


def search_clock(cfg: StudyConfig, paths: ResultsPaths) -> TrialClock:
    """After the search: the calibration (pixel units on a chief, which has none) corrected by every trial."""
    if paths.calibration.exists():
        clock = TrialClock(Calibration.from_dict(read_json(paths.calibration)))
    else:
        clock = TrialClock(Calibration.pixel_units(cfg.space.resolutions), in_seconds=False)
    record_trial_times(clock, _existing_rows(paths))
    return clock


class StudyHyperband(keras_tuner.Hyperband):
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
        # keras_tuner.Hyperband.__init__ would build its own (non-durable) oracle; its trial logic is kept.
        keras_tuner.Tuner.__init__(self, oracle=oracle, **kwargs)
        self.search_seed = cfg.search.seed
        self.memory_limit_mb = cfg.budget.memory_share * psutil.virtual_memory().total / 2**20
        self._trials_run_here = 0
        self.paths = paths
        self._epoch_started = 0.0
        self._trial_started = 0.0
        self._requests_since_trial = 0

    def save(self) -> None:
        """keras-tuner writes its tuner file in place; a kill mid-write would make the study unloadable."""
        if not self._is_worker():
            self.oracle.save()
        write_json(Path(self._get_tuner_fname()), self.get_state())

    def _build_hypermodel(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Seed each trial from its own hyperparameters (after keras-tuner's clear_session, which drops the
        global seed): a trial rerun after a kill, or in another process, trains exactly as it would have."""
        keras.utils.set_random_seed(trial_seed(self.search_seed, hp.values))
        return super()._build_hypermodel(hp)

    def run_trial(self, trial: Trial, *args: Any, **kwargs: Any) -> Any:
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), FailOnNaN()]
        return super().run_trial(trial, *args, **kwargs)

    def pre_create_trial(self) -> None:
        """Between trials: restart when memory has grown too far (see restart_if_memory_above); and a worker
        asking while Hyperband waits for a round to finish gets IDLE and asks again at once, so wait a
        second between such requests instead of spinning on the chief."""
        if self._trials_run_here:
            restart_if_memory_above(self.memory_limit_mb)
        self._requests_since_trial += 1
        if self._requests_since_trial > 1:
            time.sleep(IDLE_WAIT_SECONDS)

    def on_trial_begin(self, trial: Trial) -> None:
        super().on_trial_begin(trial)
        self._requests_since_trial = 0
        self._trial_started = time.monotonic()
        if self._is_worker():
            values = trial.hyperparameters.values
            logger.info(
                "trial [%s] (bracket %s, round %s) %d epochs @ %s px",
                trial.trial_id, values.get("tuner/bracket"), values.get("tuner/round"), _trial_epochs(trial),
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
        rows = read_csv(history_path) if epoch > trial.hyperparameters.values.get("tuner/initial_epoch", 0) else []
        write_csv(history_path, HISTORY_COLUMNS, [*rows, {"epoch": epoch + 1, **metrics}])

    def on_trial_end(self, trial: Trial) -> None:
        super().on_trial_end(trial)
        self._trials_run_here += 1
        if self._is_worker():
            seconds = time.monotonic() - self._trial_started
            logger.info("trial [%s] %s in %s", trial.trial_id, trial.status, format_duration(seconds))


def restart_if_memory_above(limit_mb: float) -> None:
    """Replace this process with a fresh run of the same command, which resumes exactly where this one is.

    TensorFlow keeps about 150 MB per trained model that clear_session() does not free (RSS grows from
    1.4 to 2.1 GB over the 5 smoke trials), which over a 90-trial night exceeds a Colab machine's RAM.
    Between trials every state file is written, so a restart loses nothing; the time budget carries over."""
    rss_mb = psutil.Process().memory_info().rss / 2**20
    if rss_mb <= limit_mb:
        return
    logger.info(
        "search: %.0f MB resident, above %.0f MB (budget.memory_share): restarting to free it", rss_mb, limit_mb
    )
    for handler in logging.getLogger("study").handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.argv])


class FailOnNaN(keras.callbacks.Callback):
    """A NaN loss fails the trial with a message saying so (keras's TerminateOnNaN would end it quietly and
    leave a score computed from NaN weights); the search goes on with the next trial."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise keras_tuner.errors.FailedTrialError(f"loss became {float(loss)} at batch {batch + 1}")


def _last_line(message: str | None) -> str:
    """keras-tuner keeps the whole traceback; its last line is the error a person needs."""
    lines = (message or "").strip().splitlines()
    return lines[-1] if lines else ""


def _trial_epochs(trial: Trial) -> int:
    """Epochs a trial trains itself (a continuation starts from its parent's last epoch)."""
    values = trial.hyperparameters.values
    return int(values.get("tuner/epochs", 0)) - int(values.get("tuner/initial_epoch", 0))


def _existing_rows(paths: ResultsPaths) -> list[dict[str, str]]:
    return read_csv(paths.trials_csv) if paths.trials_csv.exists() else []


def _best_epoch(paths: ResultsPaths, trial_id: str) -> dict[str, str] | None:
    """The history row with the highest val AUC: the epoch whose weights keras-tuner checkpointed."""
    path = paths.history_csv(trial_id)
    rows = [row for row in read_csv(path) if row.get(OBJECTIVE)] if path.exists() else []
    return max(rows, key=lambda row: float(row[OBJECTIVE])) if rows else None


def trial_row(trial: Trial, paths: ResultsPaths) -> dict[str, Any]:
    """One trials.csv row: keras-tuner's bookkeeping split from the real hyperparameters."""
    values = trial.hyperparameters.values
    row: dict[str, Any] = {
        "trial_id": trial.trial_id,
        "status": trial.status,
        "bracket": values.get("tuner/bracket"),
        "round": values.get("tuner/round"),
        "parent": values.get("tuner/trial_id"),
        "epochs": values.get("tuner/epochs"),
        "initial_epoch": values.get("tuner/initial_epoch"),
        "error": _last_line(trial.message) or None,
    }
    row.update({HP_PREFIX + name: value for name, value in values.items() if name not in TUNER_KEYS})
    best = _best_epoch(paths, trial.trial_id) if trial.status == "COMPLETED" else None
    if best is not None:
        row["best_epoch"] = best["epoch"]
        row.update({metric: best.get(metric) for metric in TRIAL_METRIC_COLUMNS})
    return row


def export_trials(
    oracle: keras_tuner.Oracle, paths: ResultsPaths, seconds: dict[str, str], memory: dict[str, str]
) -> None:
    """Rewrite trials.csv (atomically) from the oracle's trials and the per-epoch histories on disk."""
    trials = sorted(oracle.trials.values(), key=lambda trial: trial.trial_id)
    rows = [
        {**trial_row(trial, paths), "seconds": seconds.get(trial.trial_id), "rss_mb": memory.get(trial.trial_id)}
        for trial in trials
    ]
    hp_names = {key[len(HP_PREFIX) :] for row in rows for key in row if key.startswith(HP_PREFIX)}
    write_csv(paths.trials_csv, trial_columns(hp_names), rows)


def tensorboard_callbacks(paths: ResultsPaths) -> list[keras.callbacks.Callback]:
    """TensorBoard logs per trial under results/tensorboard; keras-tuner adds the HParams dashboard to this
    callback by itself (TensorFlow backend only: the JAX backend has no summary writer here)."""
    if keras.backend.backend() != "tensorflow":
        return []
    return [keras.callbacks.TensorBoard(str(paths.tensorboard_dir), write_graph=False, profile_batch=0)]


def _several_gpus_strategy() -> Any:
    """MirroredStrategy over every visible GPU when there are several (TensorFlow backend); else None."""
    if keras.backend.backend() != "tensorflow" or len(gpu_names()) < 2:
        return None
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


@dataclass(frozen=True)
class SearchOutcome:
    """How the search ended: None when every planned trial ran, else why it stopped short."""

    stopped: str | None


def trial_clock(cfg: StudyConfig, arrays: dict[int, SplitArrays], paths: ResultsPaths, role: Role) -> TrialClock:
    """Calibrate once per study (a resumed study reuses search/calibration.json); a chief trains nothing, so
    it learns the seconds from the workers' finished trials."""
    if role.is_chief:
        return TrialClock(Calibration.pixel_units(cfg.space.resolutions), in_seconds=False)
    if paths.calibration.exists():
        return TrialClock(Calibration.from_dict(read_json(paths.calibration)))
    calibration = calibrate(cfg, arrays)
    write_json(paths.calibration, calibration.to_dict())
    return TrialClock(calibration)


def run_search(
    cfg: StudyConfig, arrays: dict[int, SplitArrays], paths: ResultsPaths, deadline: Deadline, role: Role
) -> SearchOutcome:
    """Run (or resume) the Hyperband search and save the best model, selected on validation AUC only.

    On a single machine this process trains every trial. A chief serves trials to the workers until the
    plan (or the budget) is spent, then saves the best model from their checkpoints. A worker trains what
    the chief hands it and returns when the chief says stop."""
    plan = hyperband_plan(cfg.search.max_epochs, cfg.search.factor, cfg.search.hyperband_iterations)
    tuner = StudyHyperband(
        paths=paths,
        cfg=cfg,
        hypermodel=ChestXrayHyperModel(cfg.space, cfg.model, cfg.search, arrays),
        directory=str(paths.search_dir),
        project_name=paths.tuner_dir.name,
        overwrite=False,
        distribution_strategy=_several_gpus_strategy(),
    )
    if role.is_worker:
        logger.info("worker %s: training the trials the chief at %s:%s hands out", role.tuner_id, role.host, role.port)
        _search(tuner, paths)
        return SearchOutcome(None)
    write_json(paths.plan, plan)
    clock = trial_clock(cfg, arrays, paths, role)
    if clock.knows_time:
        estimate = clock.remaining(plan["total_trials"], plan["total_epochs"], cfg.space.resolutions)
        duration = f"about {format_duration(estimate)} on this machine"
    else:
        duration = "time estimated from the workers' first trials"
    budget = "" if deadline.ends_at is None else f"; {format_duration(deadline.left())} of the time budget left for it"
    logger.info(
        "Hyperband plan: %d trials, %d epochs, %s (search/plan.json)%s",
        plan["total_trials"], plan["total_epochs"], duration, budget,
    )  # fmt: skip
    if role.is_chief:
        logger.info("chief: serving trials on %s:%s to the workers", role.host, role.port)
    oracle = tuner.oracle
    oracle.ledger = SearchLedger(paths, plan, clock, deadline, cfg.space.resolutions, distributed=role.is_chief)
    _search(tuner, paths)
    if oracle.stopped:
        logger.warning("search %s", oracle.stopped)
    best_trials = oracle.get_best_trials(1)
    if not best_trials:
        raise SearchFailedError(
            f"the search ended without a completed trial ({oracle.stopped or 'every trial failed'}); "
            f"see {paths.trials_csv}"
        )
    best = best_trials[0]
    with _quiet_optimizer_restore():
        model = tuner.load_model(best)
    paths.best_dir.mkdir(parents=True, exist_ok=True)
    tmp_model = paths.best_model.with_name(".model.tmp.keras")
    model.save(tmp_model)
    tmp_model.replace(paths.best_model)
    values = {name: value for name, value in best.hyperparameters.values.items() if name not in TUNER_KEYS}
    write_json(paths.best_hyperparameters, {"trial_id": best.trial_id, "values": values, "val_auc": best.score})
    logger.info("best trial %s: val AUC %.4f with %s", best.trial_id, best.score, values)
    _prune_checkpoints(tuner, keep=best.trial_id)
    return SearchOutcome(oracle.stopped)


def _prune_checkpoints(tuner: StudyHyperband, keep: str) -> None:
    """Once the search is over no trial is continued, so only the best trial's weights are kept (a rerun
    of the stage reloads them): 90 checkpoints of MobileNetV2 are about a gigabyte of a user's Drive."""
    freed = 0
    for trial_id in tuner.oracle.trials:
        checkpoint = Path(tuner._get_checkpoint_fname(trial_id))
        if trial_id != keep and checkpoint.exists():
            freed += checkpoint.stat().st_size
            checkpoint.unlink()
    logger.info("search: %.0f MB of other trials' checkpoints removed (the best is kept)", freed / 2**20)


@contextmanager
def _quiet_optimizer_restore() -> Iterator[None]:
    """Checkpoints are loaded into freshly compiled models (continuations, the best model): Adam's moments
    restart by keras-tuner's design, and Keras warns about it every time, which tells the user nothing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer", category=UserWarning)
        yield


def _search(tuner: StudyHyperband, paths: ResultsPaths) -> None:
    """tuner.search, with keras-tuner's stop after consecutive failed trials logged, not raised: the
    study goes on with the best completed trial, and trials.csv says what failed."""
    with _quiet_optimizer_restore():
        try:
            tuner.search(verbose=0, callbacks=tensorboard_callbacks(paths))
        except RuntimeError as error:
            logger.error("search stopped: %s; the errors are in %s", error, paths.trials_csv)

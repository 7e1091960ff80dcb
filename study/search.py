"""Hyperband wiring: the plan up front, one progress line per trial, trials exported as they finish.

keras-tuner has no export API and mixes its bookkeeping (`tuner/epochs`, `tuner/trial_id`, ...) into the
hyperparameters; the export reads its trials and splits those keys out into bracket/round/parent/epochs
columns so no report ever shows them as hyperparameters.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any

import keras
import keras_tuner

from study.config import StudyConfig
from study.data.split import SplitArrays
from study.errors import UserInputError
from study.hypermodel import ChestXrayHyperModel
from study.results import (
    HISTORY_COLUMNS,
    HP_PREFIX,
    TRIAL_METRIC_COLUMNS,
    ResultsPaths,
    read_csv,
    trial_columns,
    write_csv,
    write_json,
)

logger = logging.getLogger(__name__)

OBJECTIVE = "val_auc"


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


class StudyHyperband(keras_tuner.Hyperband):
    """Hyperband that reports progress per trial and exports trials.csv and histories as each trial ends."""

    def __init__(self, paths: ResultsPaths, planned_trials: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.paths = paths
        self.planned_trials = planned_trials
        self._search_started = time.monotonic()
        self._trial_started: dict[str, float] = {}
        self.trial_seconds = {row["trial_id"]: row["seconds"] for row in _existing_rows(paths)}
        self._epoch_started = 0.0

    def on_trial_begin(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_begin(trial)
        self._trial_started[trial.trial_id] = time.monotonic()
        values = trial.hyperparameters.values
        best = self.oracle.get_best_trials(1)
        best_text = f"{best[0].score:.3f}" if best and best[0].score is not None else "-"
        logger.info(
            "trial %d/%d (bracket %s, round %s) %d epochs @ %s px | best val AUC %s | elapsed %s",
            len(self.oracle.trials), self.planned_trials, values.get("tuner/bracket"), values.get("tuner/round"),
            values.get("tuner/epochs", 0) - values.get("tuner/initial_epoch", 0), values.get("resolution"),
            best_text, _duration(time.monotonic() - self._search_started),
        )  # fmt: skip

    def on_epoch_begin(
        self, trial: keras_tuner.engine.trial.Trial, model: keras.Model, epoch: int, logs: Any = None
    ) -> None:
        self._epoch_started = time.monotonic()

    def on_epoch_end(
        self, trial: keras_tuner.engine.trial.Trial, model: keras.Model, epoch: int, logs: Any = None
    ) -> None:
        """Log the epoch and append it to the trial's history: keras-tuner itself keeps only the best epoch."""
        metrics = {name: float(value) for name, value in (logs or {}).items() if name in HISTORY_COLUMNS}
        shown = " ".join(f"{name} {metrics[name]:.4f}" for name in HISTORY_COLUMNS[1:] if name in metrics)
        total = trial.hyperparameters.values.get("tuner/epochs", epoch + 1)
        logger.info("  epoch %d/%d  %s  (%.1f s)", epoch + 1, total, shown, time.monotonic() - self._epoch_started)
        history_path = self.paths.history_csv(trial.trial_id)
        rows = read_csv(history_path) if epoch > trial.hyperparameters.values.get("tuner/initial_epoch", 0) else []
        write_csv(history_path, HISTORY_COLUMNS, [*rows, {"epoch": epoch + 1, **metrics}])

    def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_end(trial)
        started = self._trial_started.pop(trial.trial_id, None)
        if started is not None:
            self.trial_seconds[trial.trial_id] = f"{time.monotonic() - started:.1f}"
        export_trials(self.oracle, self.paths, self.trial_seconds)


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{int(seconds % 60):02d}s"


def _existing_rows(paths: ResultsPaths) -> list[dict[str, str]]:
    return read_csv(paths.trials_csv) if paths.trials_csv.exists() else []


def _best_epoch(paths: ResultsPaths, trial_id: str) -> dict[str, str] | None:
    """The history row with the highest val AUC: the epoch whose weights keras-tuner checkpointed."""
    path = paths.history_csv(trial_id)
    rows = [row for row in read_csv(path) if row.get(OBJECTIVE)] if path.exists() else []
    return max(rows, key=lambda row: float(row[OBJECTIVE])) if rows else None


def trial_row(trial: keras_tuner.engine.trial.Trial, paths: ResultsPaths) -> dict[str, Any]:
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
        "error": (trial.message or "").strip().splitlines()[-1] if trial.message else None,
    }
    row.update({HP_PREFIX + name: value for name, value in values.items() if name not in TUNER_KEYS})
    best = _best_epoch(paths, trial.trial_id) if trial.status == "COMPLETED" else None
    if best is not None:
        row["best_epoch"] = best["epoch"]
        row.update({metric: best.get(metric) for metric in TRIAL_METRIC_COLUMNS})
    return row


def export_trials(oracle: keras_tuner.Oracle, paths: ResultsPaths, seconds: dict[str, str]) -> None:
    """Rewrite trials.csv (atomically) from the oracle's trials and the per-epoch histories on disk."""
    trials = sorted(oracle.trials.values(), key=lambda trial: trial.trial_id)
    rows = [{**trial_row(trial, paths), "seconds": seconds.get(trial.trial_id)} for trial in trials]
    hp_names = {key[len(HP_PREFIX) :] for row in rows for key in row if key.startswith(HP_PREFIX)}
    write_csv(paths.trials_csv, trial_columns(hp_names), rows)


def run_search(cfg: StudyConfig, arrays: dict[int, SplitArrays], paths: ResultsPaths) -> None:
    """Run (or resume) the Hyperband search; save the best model, selected on validation AUC only."""
    plan = hyperband_plan(cfg.search.max_epochs, cfg.search.factor, cfg.search.hyperband_iterations)
    write_json(paths.plan, plan)
    logger.info("Hyperband plan: %d trials, %d epochs (search/plan.json)", plan["total_trials"], plan["total_epochs"])
    keras.utils.set_random_seed(cfg.search.seed)
    tuner = StudyHyperband(
        paths=paths,
        planned_trials=plan["total_trials"],
        hypermodel=ChestXrayHyperModel(cfg.space, cfg.model, cfg.search, arrays),
        objective=keras_tuner.Objective(OBJECTIVE, direction="max"),
        max_epochs=cfg.search.max_epochs,
        factor=cfg.search.factor,
        hyperband_iterations=cfg.search.hyperband_iterations,
        seed=cfg.search.seed,
        max_consecutive_failed_trials=cfg.search.max_consecutive_failed_trials,
        directory=str(paths.search_dir),
        project_name=paths.tuner_dir.name,
        overwrite=False,
    )
    with warnings.catch_warnings():
        # Checkpoints are loaded into freshly compiled models (continuations, the best model): Adam's moments
        # restart by keras-tuner's design, and Keras warns about it every time, which tells the user nothing.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer", category=UserWarning)
        try:
            tuner.search(verbose=0)
        except RuntimeError as error:  # keras-tuner's "consecutive failed trials" stop
            logger.error("search stopped: %s; the errors are in %s", error, paths.trials_csv)
        finally:
            export_trials(tuner.oracle, paths, tuner.trial_seconds)
        best_trials = tuner.oracle.get_best_trials(1)
        if not best_trials:
            raise SearchFailedError(f"the search ended without a completed trial; the errors are in {paths.trials_csv}")
        best = best_trials[0]
        model = tuner.load_model(best)
    paths.best_dir.mkdir(parents=True, exist_ok=True)
    tmp_model = paths.best_model.with_name(".model.tmp.keras")
    model.save(tmp_model)
    tmp_model.replace(paths.best_model)
    values = {name: value for name, value in best.hyperparameters.values.items() if name not in TUNER_KEYS}
    write_json(paths.best_hyperparameters, {"trial_id": best.trial_id, "values": values, "val_auc": best.score})
    logger.info("best trial %s: val AUC %.4f with %s", best.trial_id, best.score, values)

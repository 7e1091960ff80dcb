"""The search's books, kept where the oracle is: the budget gate, one progress line per trial, trial times
and memory, and trials.csv rewritten as each trial ends.

keras-tuner has no export API and mixes its bookkeeping (`tuner/epochs`, `tuner/trial_id`, ...) into the
hyperparameters; the export splits those keys out into bracket/round/parent/epochs columns so no report
ever shows them as hyperparameters.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import keras_tuner
import psutil

from study.budget import Deadline, TrialClock, format_duration
from study.config import StudyConfig
from study.results import (
    HP_PREFIX,
    TRIAL_METRIC_COLUMNS,
    Calibration,
    ResultsPaths,
    SearchPlan,
    read_csv,
    trial_columns,
    write_csv,
)
from study.search.keras_tuner_api import Trial
from study.search.oracle import ENDED_STATUSES, DurableHyperbandOracle, Refusal

logger = logging.getLogger(__name__)

OBJECTIVE = "val_auc"
TUNER_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")


class SearchLedger:
    """The books of the process holding the oracle (the only one, or the chief): the budget gate, one
    progress line per trial handed out, trial timings and memory, and trials.csv rewritten as trials end."""

    def __init__(
        self, paths: ResultsPaths, plan: SearchPlan, clock: TrialClock, deadline: Deadline,
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
        epochs, resolution = trial_epochs(trial), int(values["resolution"])
        ended = [t for t in oracle.trials.values() if t.status in ENDED_STATUSES]
        needed, left = self.clock.estimate(resolution, epochs), self.deadline.left()
        if self.clock.knows_time and needed > left:
            completed = sum(t.status == "COMPLETED" for t in ended)
            cost = f"needs about {format_duration(needed)}, {format_duration(left)} was left"
            return Refusal(
                f"not started: needs about {format_duration(needed)}, {format_duration(left)} left",
                f"stopped by the time budget after {completed} of {self.plan.total_trials} planned trials "
                f"(the next {cost})"
                if completed
                else f"stopped by the time budget before any trial: no trial fitted (the first {cost})",
            )
        epochs_done = sum(trial_epochs(t) for t in ended)
        remaining = self.clock.remaining(
            self.plan.total_trials - len(ended), self.plan.total_epochs - epochs_done, self.resolutions
        )
        best = oracle.get_best_trials(1)
        logger.info(
            "trial %d/%d [%s]%s (bracket %s, round %s) %d epochs @ %d px | best val AUC %s | elapsed %s | ETA %s",
            oracle.start_order.index(trial.trial_id) + 1, self.plan.total_trials, trial.trial_id,
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
                self.clock.record(int(trial.hyperparameters.get("resolution")), trial_epochs(trial), seconds)
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
        clock = TrialClock(Calibration.read(paths.calibration))
    else:
        clock = TrialClock(Calibration.pixel_units(cfg.space.resolutions), in_seconds=False)
    record_trial_times(clock, _existing_rows(paths))
    return clock


def _last_line(message: str | None) -> str:
    """keras-tuner keeps the whole traceback; its last line is the error a person needs."""
    lines = (message or "").strip().splitlines()
    return lines[-1] if lines else ""


def trial_epochs(trial: Trial) -> int:
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

"""Run (or resume) the Hyperband search, then save the best model, selected on validation AUC only."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import keras

from study.budget import Deadline, TrialClock, format_duration
from study.config import StudyConfig
from study.data.split import SplitArrays
from study.device import device_line
from study.errors import SearchFailedError
from study.results import BestTrial, Calibration, DataSummary, ResultsPaths
from study.results.mirror import Mirror
from study.search.calibration import calibrate
from study.search.distributed import Role
from study.search.hypermodel import ChestXrayHyperModel, resolve_precision, xla_caveat
from study.search.keras_tuner_api import Trial
from study.search.ledger import TUNER_KEYS, SearchLedger
from study.search.plan import hyperband_plan, trials_that_fit
from study.search.saving import save_model_atomically
from study.search.tuner import (
    StudyHyperband,
    quiet_optimizer_restore,
    several_gpus_strategy,
    tensorboard_callbacks,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchOutcome:
    """How the search ended: None when every planned trial ran, else why it stopped short."""

    stopped: str | None


def trial_clock(
    cfg: StudyConfig, arrays: dict[int, SplitArrays], paths: ResultsPaths, role: Role, budgeted: bool
) -> TrialClock:
    """Calibrate once per study (a resumed study reuses search/calibration.json) when a time budget must gate
    the first trial; without one, or on a chief (which trains nothing), the clock learns the seconds from the
    first finished trials instead of paying for a timing run."""
    if paths.calibration.exists():
        return TrialClock(Calibration.read(paths.calibration))
    if role.is_chief or not budgeted:
        return TrialClock(Calibration.pixel_units(cfg.space.resolutions), in_seconds=False)
    calibration = calibrate(cfg, arrays)
    calibration.write(paths.calibration)
    return TrialClock(calibration)


def run_search(
    cfg: StudyConfig,
    arrays: dict[int, SplitArrays],
    paths: ResultsPaths,
    deadline: Deadline,
    role: Role,
    mirror: Mirror | None = None,
) -> SearchOutcome:
    """Run (or resume) the Hyperband search and save the best model, selected on validation AUC only.

    On a single machine this process trains every trial. A chief serves trials to the workers until the
    plan (or the budget) is spent, then saves the best model from their checkpoints. A worker trains what
    the chief hands it and returns when the chief says stop."""
    plan = hyperband_plan(cfg.search.max_epochs, cfg.search.factor, cfg.search.hyperband_iterations)
    logger.info("search on %s; precision %s", device_line(), resolve_precision(cfg.model.precision))
    if caveat := xla_caveat(cfg.model, cfg.space.augmentation):
        logger.warning(caveat)
    tuner = StudyHyperband(
        paths=paths,
        cfg=cfg,
        hypermodel=ChestXrayHyperModel(
            cfg.space, cfg.model, cfg.search, arrays, DataSummary.read(paths.data_summary).channels
        ),
        directory=str(paths.search_dir),
        project_name=paths.tuner_dir.name,
        overwrite=False,
        distribution_strategy=several_gpus_strategy(),
    )
    tuner.mirror = mirror
    if role.is_worker:
        logger.info("worker %s: training the trials the chief at %s:%s hands out", role.tuner_id, role.host, role.port)
        _search(tuner, paths)
        return SearchOutcome(None)
    plan.write(paths.plan)
    clock = trial_clock(cfg, arrays, paths, role, budgeted=deadline.ends_at is not None)
    if clock.knows_time:
        estimate = clock.remaining(plan.total_trials, plan.total_epochs, cfg.space.resolutions)
        duration = f"about {format_duration(estimate)} on this machine"
    else:
        duration = (
            "time estimated from the workers' first trials" if role.is_chief else "time estimated from the first trials"
        )
    budget = "" if deadline.ends_at is None else f"; {format_duration(deadline.left())} of the time budget left for it"
    logger.info(
        "Hyperband plan: %d trials, %d epochs, %s (search/plan.json)%s",
        plan.total_trials, plan.total_epochs, duration, budget,
    )  # fmt: skip
    if clock.knows_time and deadline.ends_at is not None and estimate > deadline.left():
        fit = trials_that_fit(plan, clock, cfg.space.resolutions, deadline.left())
        logger.warning(
            "the plan needs about %s, more than the search's share of the time budget (%s): about %d of its %d "
            "trials fit; the search will stop by the budget and the report will say so",
            format_duration(estimate), format_duration(deadline.left()), fit, plan.total_trials,
        )  # fmt: skip
    if role.is_chief:
        logger.info("chief: serving trials on %s:%s to the workers", role.host, role.port)
    oracle = tuner.oracle
    oracle.ledger = SearchLedger(paths, plan, clock, deadline, cfg.space.resolutions, distributed=role.is_chief)
    _search(tuner, paths)
    if oracle.stopped:
        logger.warning("search %s", oracle.stopped)
    # keras-tuner pads the best trials with unfinished ones when none completed: keep the completed only.
    best_trials = [trial for trial in oracle.get_best_trials(1) if trial.status == "COMPLETED"]
    if not best_trials and oracle.stopped:
        return SearchOutcome(oracle.stopped)  # the budget fitted no trial: nothing to evaluate, nothing failed
    if not best_trials:
        raise SearchFailedError(
            f"the search ended without a completed trial ({oracle.stopped or 'every trial failed'}); "
            f"see {paths.trials_csv}"
        )
    best = best_trials[0]
    model = _best_model(tuner, best)
    save_model_atomically(model, paths.best_model)
    values = {name: value for name, value in best.hyperparameters.values.items() if name not in TUNER_KEYS}
    BestTrial(best.trial_id, values, best.score).write(paths.best_hyperparameters)
    logger.info("best trial %s: val AUC %.4f with %s", best.trial_id, best.score, values)
    _prune_checkpoints(tuner, keep=best.trial_id)
    return SearchOutcome(oracle.stopped)


def _best_model(tuner: StudyHyperband, best: Trial) -> keras.Model:
    """The best trial's model from its checkpoint; if that was lost (a runtime died before the mirror had it),
    the selection stands and the model is trained again from the trial's values, seeded as before, up to the
    epoch that was its best."""
    if tuner.checkpoint_readable(best.trial_id):
        with quiet_optimizer_restore():
            return tuner.load_trial_model(best)
    epochs = int(best.best_step) + 1
    logger.warning(
        "best trial %s: its checkpoint is missing or unreadable; training its model again for %d epochs",
        best.trial_id, epochs,
    )  # fmt: skip
    return tuner.fit_from_scratch(best.hyperparameters, epochs)


def _prune_checkpoints(tuner: StudyHyperband, keep: str) -> None:
    """Once the search is over no trial is continued, so only the best trial's weights are kept (a rerun
    of the stage reloads them): 90 checkpoints of MobileNetV2 are about a gigabyte of a user's Drive."""
    freed = 0
    for trial_id in tuner.oracle.trials:
        checkpoint = tuner.checkpoint_file(trial_id)
        if trial_id != keep and checkpoint.exists():
            freed += checkpoint.stat().st_size
            checkpoint.unlink()
    logger.info("search: %.0f MB of other trials' checkpoints removed (the best is kept)", freed / 2**20)


def _search(tuner: StudyHyperband, paths: ResultsPaths) -> None:
    """tuner.search, with keras-tuner's stop after consecutive failed trials logged, not raised: the
    study goes on with the best completed trial, and trials.csv says what failed."""
    with quiet_optimizer_restore():
        try:
            tuner.search(verbose=0, callbacks=tensorboard_callbacks(paths))
        except RuntimeError as error:
            logger.error("search stopped: %s; the errors are in %s", error, paths.trials_csv)

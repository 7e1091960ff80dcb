"""The ablation reruns: each planned run trained from scratch with its own seed, thresholded on its own
validation predictions, scored once on the test set, and written the moment it ends.

A kill loses at most the run in progress: runs.csv and the run's predictions are written atomically when
a run ends, and a rerun skips every run already in runs.csv. Between variants (a variant's seeds share one
traced model) the process restarts itself when TensorFlow's memory has grown too far, as the search does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np

from study.ablation.plan import Run, RunPlan, Variant, plan_runs, run_seeds, variants
from study.ablation.tables import write_tables
from study.budget import Deadline, MemoryWatch, TrialClock, format_duration
from study.config import StudyConfig
from study.data.readers import dataset_arrays, label_codes, load_split_rows, study_classes, training_arrays
from study.data.split import SplitArrays
from study.evaluate.metrics import choose_threshold, point_metrics
from study.results import (
    ABLATION_RUN_COLUMNS,
    HP_PREFIX,
    PREDICTION_COLUMNS,
    BestTrial,
    ResultsPaths,
    read_csv,
    write_csv,
)
from study.results.mirror import Mirror
from study.results.vocab import ABLATION_TEST_METRICS, HP_NAMES
from study.search.batches import fit_data, predict_probabilities
from study.search.hypermodel import build_from_values, build_optimizer, class_weights
from study.search.ledger import search_clock
from study.search.saving import save_model_atomically
from study.search.tuner import FailOnNaN

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldOutFilms:
    """Paths of the validation films (in the order of the training arrays) and the test films with their
    labels and pixels per resolution: the test films are touched once per run, after its threshold is set."""

    val_paths: list[str]
    test_paths: list[str]
    test_labels: np.ndarray
    test_films: dict[int, np.ndarray]


def best_epoch_budget(paths: ResultsPaths, trial_id: str) -> int:
    """The best trial's full epoch budget (a Hyperband continuation counts its parent's epochs too)."""
    row = next(row for row in read_csv(paths.trials_csv) if row["trial_id"] == trial_id)
    return int(row["epochs"])


def _finished(paths: ResultsPaths) -> dict[str, dict[str, str]]:
    return {row["run_id"]: row for row in read_csv(paths.ablation_runs)} if paths.ablation_runs.exists() else {}


class TracedModels:
    """One compiled model per variant, reused by its seeds: building and tracing MobileNetV2's training step
    costs about 20 s on two CPU cores, more than a short run's epochs. Each run still starts from scratch:
    a model built anew with the run's seed hands over its initial variables (weights, BatchNorm statistics,
    the random layers' seed states) and a zeroed optimizer, so the run trains exactly as a new model would."""

    def __init__(self) -> None:
        self.variant: str | None = None
        self.model: keras.Model | None = None

    def start(self, run: Run, cfg: StudyConfig, channels: int) -> tuple[keras.Model, bool]:
        """The run's model at its seed's initial state, and whether it had to be traced anew."""
        keras.backend.clear_session()
        keras.utils.set_random_seed(run.seed)
        fresh = build_from_values(run.variant.values, cfg.model, channels)
        if self.model is None or self.variant != run.variant.name:
            self.variant, self.model = run.variant.name, fresh
            return fresh, True
        for target, source in zip(self.model.variables, fresh.variables, strict=True):
            target.assign(source)
        fresh.optimizer.build(fresh.trainable_variables)  # Adam's moments at zero, its step count at 0
        for target, source in zip(self.model.optimizer.variables, fresh.optimizer.variables, strict=True):
            target.assign(source)
        return self.model, False


def _train_run(
    run: Run, epochs: int, arrays: SplitArrays, held_out: HeldOutFilms, model: keras.Model, cfg: StudyConfig
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One run: fit from the model's initial state, keep the epoch with the best val AUC (as the search's
    checkpoint does), threshold on this run's validation predictions, then the test films once."""
    values = run.variant.values
    build_optimizer(model)
    keep_best = keras.callbacks.EarlyStopping(
        monitor="val_auc", mode="max", patience=epochs + 1, restore_best_weights=True
    )  # never stops early; restores the best epoch's weights at the end
    batch = cfg.search.batch_size
    model.fit(
        **fit_data(arrays, class_weights(arrays.y_train, str(values["class_weighting"])), batch),
        epochs=epochs,
        shuffle=True,
        verbose=0,
        callbacks=[keep_best, FailOnNaN()],
    )
    val_probs = predict_probabilities(model, arrays.x_val, batch).astype(float)
    threshold = choose_threshold(arrays.y_val, val_probs, cfg.evaluate.threshold_rule)
    test_films = held_out.test_films[int(values["resolution"])]
    test_probs = predict_probabilities(model, test_films, batch).astype(float)
    val_metrics = point_metrics(arrays.y_val, val_probs, threshold)
    test_metrics = point_metrics(held_out.test_labels, test_probs, threshold)
    row = {
        "status": "ok",
        "best_epoch": keep_best.best_epoch + 1,
        "threshold": threshold,
        "val_auc": val_metrics["auc"],
        **{f"test_{name}": test_metrics[name] for name in ABLATION_TEST_METRICS},
    }
    predictions = [
        {"split": split, "path": path, "label": int(label), "prob": float(prob)}
        for split, split_paths, labels, probs in (
            ("val", held_out.val_paths, arrays.y_val, val_probs),
            ("test", held_out.test_paths, held_out.test_labels, test_probs),
        )
        for path, label, prob in zip(split_paths, labels, probs, strict=True)
    ]
    return row, predictions


def _run_row(run: Run, epochs: int) -> dict[str, Any]:
    values = run.variant.values
    return {
        "run_id": run.run_id,
        "variant": run.variant.name,
        "factor": run.variant.factor or "",
        "level": "" if run.variant.factor is None else run.variant.level,
        "seed": run.seed,
        "epochs": epochs,
        **{HP_PREFIX + name: values[name] for name in HP_NAMES},
    }


def _load_arrays(
    cfg: StudyConfig, paths: ResultsPaths, cache_dir: Path, resolutions: list[int]
) -> tuple[dict[int, SplitArrays], HeldOutFilms]:
    decoded = dataset_arrays(paths, resolutions, cfg.data.aspect, cache_dir)
    training = training_arrays(paths, decoded, resolutions)
    val_paths = [row["path"] for row in load_split_rows(paths, "val")]
    test_rows = load_split_rows(paths, "test")
    test_paths = [row["path"] for row in test_rows]
    return training, HeldOutFilms(
        val_paths,
        test_paths,
        label_codes(test_rows, study_classes(paths)).astype(np.int64),
        {size: decoded.take(size, test_paths) for size in resolutions},
    )


def _log_plan(plan: RunPlan, epochs: int, variant_count: int) -> None:
    if not plan.runs:
        logger.warning("ablation: %s", "; ".join(plan.skipped) or "no variant to run")
        return
    logger.info(
        "Ablation plan: %d variants x %d seeds = %d runs of %d epochs, about %s (ablation/plan.json)",
        variant_count, plan.seeds, len(plan.runs), epochs, format_duration(plan.estimate_seconds),
    )  # fmt: skip
    for note in plan.skipped:
        logger.info("ablation: %s", note)


def run_ablation(
    cfg: StudyConfig, paths: ResultsPaths, cache_dir: Path, deadline: Deadline, mirror: Mirror | None = None
) -> str | None:
    """Plan (inside the budget), run what is not in runs.csv yet, then write summary.csv and the tables.
    Every finished run is copied to the mirror, if any. Returns why the ablation stopped short of its plan,
    or None."""
    best = BestTrial.read(paths.best_hyperparameters)
    epochs = best_epoch_budget(paths, best.trial_id)
    clock: TrialClock = search_clock(cfg, paths)

    def estimate(variant: Variant) -> float:
        return clock.estimate(int(variant.values["resolution"]), epochs) if clock.knows_time else 0.0

    finished = _finished(paths)
    plan = plan_runs(variants(best.values, cfg), cfg, set(finished), estimate, deadline.left())
    _log_plan(plan, epochs, len({run.variant.name for run in plan.runs}))
    plan.record(epochs).write(paths.ablation_plan)  # the report can show it while the runs go on
    stopped = plan.refused
    pending = [run for run in plan.runs if run.run_id not in finished]
    if pending:
        training, held_out = _load_arrays(
            cfg, paths, cache_dir, sorted({int(run.variant.values["resolution"]) for run in pending})
        )
        memory = MemoryWatch(cfg.budget.memory_growth)
        models = TracedModels()
        for index, run in enumerate(pending):
            needed, left = estimate(run.variant), deadline.left()
            if needed > left:
                stopped = (
                    f"ablation stopped by the time budget before {len(pending) - index} of {len(plan.runs)} runs "
                    f"(the next needs about {format_duration(needed)}, {format_duration(left)} left)"
                )
                break
            if index and run.variant.name != pending[index - 1].variant.name:
                memory.between_steps()  # between variants: a restart would cost the traced model
            model, traced = models.start(run, cfg, next(iter(training.values())).x_train.shape[-1])
            row = _execute(run, epochs, training, held_out, model, cfg, paths, plan, len(finished) + 1)
            finished[run.run_id] = row
            # every finished run, also one an earlier (longer) plan made: none is ever dropped
            write_csv(paths.ablation_runs, ABLATION_RUN_COLUMNS, list(finished.values()))
            if mirror is not None:
                mirror.sync(f"ablation run {run.run_id} {row['status']}")
            if row["status"] == "ok" and traced:  # the clock estimates runs that build and trace their model
                clock.record(int(run.variant.values["resolution"]), epochs, float(row["seconds"]))
    if stopped:
        plan = replace(plan, skipped=(*plan.skipped, stopped))
    plan.record(epochs).write(paths.ablation_plan)
    if finished:
        write_tables(paths, cfg)
    return stopped


def _execute(
    run: Run, epochs: int, training: dict[int, SplitArrays], held_out: HeldOutFilms, model: keras.Model,
    cfg: StudyConfig, paths: ResultsPaths, plan: RunPlan, number: int,
) -> dict[str, Any]:  # fmt: skip
    """Train one run, write its predictions, and return its runs.csv row (a failed run says why)."""
    resolution = int(run.variant.values["resolution"])
    logger.info("ablation run %d/%d [%s] %d epochs @ %d px", number, len(plan.runs), run.run_id, epochs, resolution)
    started = time.monotonic()
    try:
        outcome, predictions = _train_run(run, epochs, training[resolution], held_out, model, cfg)
    except keras_tuner.errors.FailedTrialError as error:
        outcome, predictions = {"status": "failed", "error": str(error)}, []
    seconds = time.monotonic() - started
    if predictions and run.seed == run_seeds(cfg.search.seed, 1)[0]:
        save_model_atomically(model, paths.ablation_model(run.variant.name))
    if predictions:
        write_csv(paths.ablation_predictions(run.run_id), PREDICTION_COLUMNS, predictions)
    row = {**_run_row(run, epochs), **outcome, "seconds": round(seconds, 1)}
    logger.info(
        "ablation run [%s] %s in %s%s", run.run_id, row["status"], format_duration(seconds),
        f": val AUC {row['val_auc']:.4f}, test AUC {row['test_auc']:.4f}" if row["status"] == "ok" else
        f": {row.get('error')}",
    )  # fmt: skip
    return {key: str(value) if not isinstance(value, str) else value for key, value in row.items()}

"""The evaluate stage: the best model's threshold chosen on validation, then the test set scored exactly once."""

from __future__ import annotations

from pathlib import Path

import keras

from study.config import StudyConfig
from study.data.readers import dataset_arrays, load_split_rows, study_classes
from study.evaluate.metrics import make_predictions, write_evaluation
from study.evaluate.subgroups import subgroup_sensitivities
from study.results import BestTrial, ResultsPaths
from study.search.batches import predict_probabilities
from study.search.saving import load_model


def load_best_model(paths: ResultsPaths) -> tuple[keras.Model, int]:
    """The search's best model and the resolution it takes."""
    model = load_model(paths.best_model)
    return model, BestTrial.read(paths.best_hyperparameters).resolution


def evaluate_best_model(cfg: StudyConfig, paths: ResultsPaths, cache_dir: Path) -> None:
    """Threshold on validation predictions, then the test set exactly once."""
    model, resolution = load_best_model(paths)
    decoded = dataset_arrays(paths, [resolution], cfg.data.aspect, cache_dir)
    scored = {}
    classes = study_classes(paths)
    for split in ("val", "test"):
        rows = load_split_rows(paths, split)
        split_paths = [row["path"] for row in rows]
        probs = predict_probabilities(model, decoded.take(resolution, split_paths), cfg.search.batch_size)
        scored[split] = make_predictions(rows, split_paths, probs, classes)
    report = write_evaluation(paths, scored["val"], scored["test"], cfg.evaluate, classes.words.groups)
    subgroup_sensitivities(scored["test"], report.threshold, cfg.evaluate).write(paths.subgroups)

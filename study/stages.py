"""Glue for the stages that need the saved best model: load it, feed it cached arrays, hand off the numbers.

evaluate.py and gradcam.py stay free of file layout decisions; this module knows where things live.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from study.config import StudyConfig
from study.data.prepare import dataset_arrays, load_split_rows
from study.evaluate import make_predictions, write_evaluation
from study.gradcam import choose_gallery, write_gallery
from study.results import ResultsPaths, read_csv, read_json

logger = logging.getLogger(__name__)


def _best_model(paths: ResultsPaths) -> tuple[keras.Model, int]:
    model = keras.saving.load_model(paths.best_model, compile=False)
    resolution = int(read_json(paths.best_hyperparameters)["values"]["resolution"])
    return model, resolution


def _predict(model: keras.Model, films: np.ndarray, batch_size: int) -> np.ndarray:
    return model.predict(films, batch_size=batch_size, verbose=0).ravel()


def evaluate_best_model(cfg: StudyConfig, paths: ResultsPaths, cache_dir: Path) -> None:
    """Threshold on validation predictions, then the test set exactly once."""
    model, resolution = _best_model(paths)
    decoded = dataset_arrays(paths, [resolution], cfg.data.aspect, cache_dir)
    scored = {}
    for split in ("val", "test"):
        rows = load_split_rows(paths, split)
        split_paths = [row["path"] for row in rows]
        probs = _predict(model, decoded.take(resolution, split_paths), cfg.search.batch_size)
        scored[split] = make_predictions(rows, split_paths, probs)
    write_evaluation(paths, scored["val"], scored["test"], cfg.evaluate)


def gradcam_gallery(cfg: StudyConfig, paths: ResultsPaths, cache_dir: Path) -> None:
    """The most confident TP/FP/FN/TN test films with their Grad-CAM overlays."""
    model, resolution = _best_model(paths)
    threshold = float(read_json(paths.threshold)["threshold"])
    patients = {row["path"]: row["patient_id"] for row in load_split_rows(paths, "test")}
    predictions = [row for row in read_csv(paths.predictions_csv) if row["split"] == "test"]
    items = choose_gallery(predictions, patients, threshold, cfg.gradcam.per_category)
    films = dataset_arrays(paths, [resolution], cfg.data.aspect, cache_dir).take(
        resolution, [item.path for item in items]
    )
    write_gallery(model, items, films, cfg.gradcam.layer, cfg.data.aspect, paths)

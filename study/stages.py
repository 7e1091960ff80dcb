"""Glue for the stages that need the saved best model: load it, feed it cached arrays, hand off the numbers.

evaluate.py and gradcam.py stay free of file layout decisions; this module knows where things live.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from study.config import StudyConfig
from study.data.cache import DecodedArrays, decoded_arrays
from study.data.prepare import load_split_rows, load_training_arrays
from study.evaluate import make_predictions, write_evaluation
from study.gradcam import choose_gallery, write_gallery
from study.results import ResultsPaths, read_csv, read_json

logger = logging.getLogger(__name__)


def _best_model(paths: ResultsPaths) -> tuple[keras.Model, int]:
    model = keras.saving.load_model(paths.best_model, compile=False)
    resolution = int(read_json(paths.best_hyperparameters)["values"]["resolution"])
    return model, resolution


def _test_arrays(
    paths: ResultsPaths, resolution: int, aspect: str, cache_dir: Path
) -> tuple[list[dict], DecodedArrays]:
    """Decode the official test folder: this is the first place its pixels are read."""
    rows = load_split_rows(paths, "test")
    decoded = decoded_arrays(
        [row["path"] for row in rows], [row["sha1"] for row in rows], [resolution], aspect, cache_dir, "test"
    )
    for path, reason in decoded.failures:
        logger.warning("test film left out: %s (%s)", path, reason)
    return rows, decoded


def _predict(model: keras.Model, films: np.ndarray, batch_size: int) -> np.ndarray:
    return model.predict(films, batch_size=batch_size, verbose=0).ravel()


def evaluate_best_model(cfg: StudyConfig, paths: ResultsPaths, cache_dir: Path) -> None:
    """Threshold on validation predictions, then the test set exactly once."""
    model, resolution = _best_model(paths)
    arrays = load_training_arrays(paths, [resolution], cfg.data.aspect, cache_dir)[resolution]
    val_rows = load_split_rows(paths, "val")
    val = make_predictions(
        val_rows, [row["path"] for row in val_rows], _predict(model, arrays.x_val, cfg.search.batch_size)
    )
    test_rows, decoded = _test_arrays(paths, resolution, cfg.data.aspect, cache_dir)
    test_probs = _predict(model, decoded.by_resolution[resolution], cfg.search.batch_size)
    write_evaluation(paths, val, make_predictions(test_rows, decoded.paths, test_probs), cfg.evaluate)


def gradcam_gallery(cfg: StudyConfig, paths: ResultsPaths, cache_dir: Path) -> None:
    """The most confident TP/FP/FN/TN test films with their Grad-CAM overlays."""
    model, resolution = _best_model(paths)
    threshold = float(read_json(paths.threshold)["threshold"])
    test_rows, decoded = _test_arrays(paths, resolution, cfg.data.aspect, cache_dir)
    patients = {row["path"]: row["patient_id"] for row in test_rows}
    predictions = [row for row in read_csv(paths.predictions_csv) if row["split"] == "test"]
    items = choose_gallery(predictions, patients, threshold, cfg.gradcam.per_category)
    position = {path: index for index, path in enumerate(decoded.paths)}
    films = decoded.by_resolution[resolution][[position[item.path] for item in items]]
    write_gallery(model, items, films, cfg.gradcam.layer, cfg.data.aspect, paths)

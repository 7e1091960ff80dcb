"""Predict new films with a finished study's best model, exactly as the study scored its test films.

The film is decoded by the data stage's own reader (same grayscale or RGB conversion, same JPEG draft scale, same
aspect mode and size) and labelled at the threshold chosen on validation, so a film of the test set gets the
probability that best/predictions.csv holds for it: no train/serve skew to explain away. An exported TFLite
file (`--model tflite-*`) runs through LiteRT's interpreter: neither Keras nor TensorFlow is imported then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from study.config import config_from_json
from study.data.cache import open_and_fit
from study.data.discover import IGNORED_FOLDERS
from study.errors import UserInputError
from study.results import BestTrial, DataSummary, ResultsPaths, Threshold
from study.results.classes import Classes, classes_or_default
from study.results.vocab import EXPORT_VARIANTS

logger = logging.getLogger(__name__)

BATCH = 32
KERAS = "keras"
TFLITE_PREFIX = "tflite-"
MODEL_CHOICES: tuple[str, ...] = (KERAS, *(TFLITE_PREFIX + variant for variant in EXPORT_VARIANTS))


@dataclass(frozen=True)
class Servable:
    """The chosen model and what the study decided around it."""

    model_name: str
    predict: Callable[[np.ndarray], np.ndarray]  # uint8 films (N x H x W x C) -> P(positive)
    keras_model: Any | None  # the Keras model, for Grad-CAM; None for a TFLite file
    resolution: int
    decoded_sizes: tuple[int, ...]  # every searched size: the data stage's JPEG draft scale depends on the largest
    aspect: str
    threshold: float
    gradcam_layer: str
    gradcam_method: str  # the study's first saliency method (gradcam.methods), drawn by --gradcam
    classes: Classes
    channels: int  # 1 (gray) or 3 (RGB), as the study decoded its films


@dataclass(frozen=True)
class Prediction:
    path: str
    prob: float
    label: str
    model: str


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def load_servable(results_dir: Path, model_name: str = KERAS) -> Servable:
    """The study's best model (as trained, or one of its exported files), size, decoding and threshold; a folder
    that has not finished evaluate, or a variant that was not exported, is refused."""
    paths = ResultsPaths(results_dir)
    if not paths.manifest.is_file() or not paths.config.is_file():
        raise UserInputError(f"--results {results_dir}: not a study's results folder (no manifest.json or config.json)")
    if not paths.threshold.is_file() or not paths.best_model.is_file():
        raise UserInputError(
            f"--results {results_dir}: the study has not finished its evaluate stage (no {paths.threshold}); "
            f"resume it with: python run_study.py --results {results_dir}"
        )
    cfg = config_from_json(paths.config.read_text(encoding="utf-8"), paths.config)
    # a folder copied without data/: the chest X-ray study it would have been before classes were named
    summary = DataSummary.read(paths.data_summary) if paths.data_summary.is_file() else None
    keras_model, predict = _load_model(paths, model_name)
    return Servable(
        model_name=model_name,
        predict=predict,
        keras_model=keras_model,
        resolution=BestTrial.read(paths.best_hyperparameters).resolution,
        decoded_sizes=tuple(cfg.space.resolutions),
        aspect=cfg.data.aspect,
        threshold=Threshold.read(paths.threshold).threshold,
        gradcam_layer=cfg.gradcam.layer,
        gradcam_method=cfg.gradcam.methods[0],
        classes=classes_or_default(None if summary is None else summary.classes),
        channels=1 if summary is None else summary.channels,
    )


def _load_model(paths: ResultsPaths, model_name: str) -> tuple[Any | None, Callable[[np.ndarray], np.ndarray]]:
    if model_name == KERAS:
        from study.evaluate.stage import load_best_model
        from study.search.batches import predict_probabilities

        model, _ = load_best_model(paths)
        return model, lambda films: predict_probabilities(model, films, BATCH)
    variant = model_name.removeprefix(TFLITE_PREFIX)
    if variant not in EXPORT_VARIANTS:
        raise UserInputError(f"--model {model_name}: expected one of {', '.join(MODEL_CHOICES)}")
    exported = paths.export_model(variant)
    if not exported.is_file():
        raise UserInputError(
            f"--model {model_name}: {exported} was not exported (the export stage has not run, or this variant "
            f"failed: see {paths.export_summary}); resume the study with: python run_study.py --results {paths.root}"
        )
    from study.export.runtime import TfliteModel

    return None, TfliteModel(exported).predict


def list_inputs(targets: Sequence[Path]) -> list[Path]:
    """Files as given, and every file under a folder (recursively, sorted), leaving out hidden entries and
    __MACOSX as the data stage does. A target that does not exist is refused."""
    files: list[Path] = []
    for target in targets:
        if not target.exists():
            raise UserInputError(f"{target}: no such file or folder")
        if not target.is_dir():
            files.append(target)
            continue
        for path in sorted(target.rglob("*")):
            parts = path.relative_to(target).parts
            if any(part.startswith(".") or part in IGNORED_FOLDERS for part in parts) or path.is_dir():
                continue
            files.append(path)
    return files


def _decoded(files: Sequence[Path], servable: Servable) -> Iterator[tuple[Path, np.ndarray | str]]:
    """Each file as the model's uint8 square, decoded as the data stage decodes, or the reason it cannot be read."""
    size_index = servable.decoded_sizes.index(servable.resolution)
    for path in files:
        result = open_and_fit(str(path), servable.decoded_sizes, servable.aspect, servable.channels)
        yield path, result if isinstance(result, str) else result[1][size_index]


def predict_files(
    servable: Servable, files: Sequence[Path], gradcam_dir: Path | None = None
) -> tuple[list[Prediction], list[Skipped]]:
    """Predict every readable film; list the others with their reason. With `gradcam_dir`, one Grad-CAM
    overlay per film, explaining the label it was given."""
    kept: list[Path] = []
    squares: list[np.ndarray] = []
    skipped: list[Skipped] = []
    for path, result in _decoded(files, servable):
        if isinstance(result, str):
            skipped.append(Skipped(str(path), result))
            logger.warning("%s: skipped (%s)", path, result)
        else:
            kept.append(path)
            squares.append(result)
    if not kept:
        return [], skipped
    films = np.stack([square.reshape(servable.resolution, servable.resolution, -1) for square in squares])
    probs = servable.predict(films).astype(float)
    positive = probs >= servable.threshold
    predictions = [
        Prediction(str(path), float(prob), servable.classes.name(int(flag)), servable.model_name)
        for path, prob, flag in zip(kept, probs, positive, strict=True)
    ]
    if gradcam_dir is not None:
        _write_overlays(servable, kept, films, predictions, gradcam_dir)
    return predictions, skipped


def _write_overlays(
    servable: Servable, kept: Sequence[Path], films: np.ndarray, predictions: Sequence[Prediction], out_dir: Path
) -> None:
    from study.explain.gallery import overlay
    from study.explain.gradcam import GradCam

    if servable.keras_model is None:
        raise UserInputError(f"--gradcam: needs the Keras model's gradients; --model {servable.model_name} has none")
    cam = GradCam(servable.keras_model, servable.gradcam_layer)
    explain = np.array([prediction.label == servable.classes.positive for prediction in predictions])
    maps = cam.maps_in_batches(films, explain, servable.gradcam_method, BATCH)
    out_dir.mkdir(parents=True, exist_ok=True)
    for number, (path, prediction, cam_map) in enumerate(zip(kept, predictions, maps, strict=True)):
        caption = (
            f"{prediction.label} at threshold {servable.threshold:.3f}\n"
            f"p({servable.classes.positive}) = {prediction.prob:.3f}\n"
            f"{servable.gradcam_method} on {servable.gradcam_layer}"
        )
        image = overlay(path, cam_map, servable.aspect, caption, servable.channels == 3)
        image.save(out_dir / f"{number:04d}_{path.stem}.png")
    logger.info("%s: %d overlays in %s", servable.gradcam_method, len(kept), out_dir)

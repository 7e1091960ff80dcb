"""The comparison grid: the same test films under each model the ablation saved, one seed for all.

One column per model, one row per film, every cell explaining the film's true class with the first
configured method. The reference column is the best configuration retrained by the ablation with the same
seed as the variants, not the search's checkpoint (which differs in seed, epochs and Hyperband history as
well), so only the ablated factor changes along a row. The films are drawn at random, so no model chose them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from study.ablation.plan import BEST, run_seeds
from study.ablation.tables import variant_label
from study.explain.gallery import overlay
from study.explain.gradcam import GradCam, upsample
from study.explain.scores import border_energy_share
from study.results import COMPARISON_COLUMNS, DataSummary, ResultsPaths, read_csv, write_csv
from study.search.batches import predict_probabilities
from study.search.saving import load_model

logger = logging.getLogger(__name__)

FILMS_PER_CLASS = 2
HEADER_HEIGHT = 36
CELL_GAP = 4
PREDICT_BATCH = 32  # Keras's default batch for predict


@dataclass(frozen=True)
class GridModel:
    variant: str
    label: str
    path: Path


@dataclass(frozen=True)
class GridFilm:
    path: str
    label: int
    patient_id: str


def grid_models(paths: ResultsPaths, search_seed: int) -> list[GridModel]:
    """The ablation's retrained best configuration, then each variant, all of the ablation's first seed, in
    the table's order; empty when the reference model is missing."""
    if not paths.ablation_runs.exists() or not paths.ablation_model(BEST).is_file():
        return []
    seed = run_seeds(search_seed, 1)[0]
    models = [GridModel(BEST, f"Best configuration (retrained, seed {seed})", paths.ablation_model(BEST))]
    seen = set()
    for row in read_csv(paths.ablation_runs):
        variant = row["variant"]
        if variant != BEST and variant not in seen and paths.ablation_model(variant).is_file():
            seen.add(variant)
            models.append(GridModel(variant, variant_label(row), paths.ablation_model(variant)))
    return models


def grid_films(predictions: Sequence[dict[str, str]], patients: dict[str, str], seed: int) -> list[GridFilm]:
    """FILMS_PER_CLASS test films of each class, drawn at random (a fixed seed) from distinct patients: chosen
    by no model, so the grid favours no column."""
    rng = np.random.default_rng(seed)
    chosen: list[GridFilm] = []
    for label in (1, 0):
        seen: set[str] = set()
        for index in rng.permutation(len(predictions)):
            row = predictions[index]
            patient = patients[row["path"]]
            if int(row["label"]) == label and patient not in seen and len(seen) < FILMS_PER_CLASS:
                seen.add(patient)
                chosen.append(GridFilm(row["path"], label, patient))
    return chosen


def write_comparison_grid(
    paths: ResultsPaths,
    films: Sequence[GridFilm],
    search_seed: int,
    films_at: Callable[[int, list[str]], np.ndarray],
    layer: str,
    method: str,
    aspect: str,
    border_band: float,
) -> bool:
    """gradcam/comparison.png and comparison.csv; False (nothing written) without ablation models."""
    models = grid_models(paths, search_seed)
    if len(models) < 2 or not films:
        return False
    explain = np.array([film.label == 1 for film in films])
    summary = DataSummary.read(paths.data_summary)
    positive, colour = summary.class_pair.positive, summary.channels == 3
    columns: list[list[Image.Image]] = []
    rows = []
    for grid_model in models:
        model = load_model(grid_model.path)
        resolution = int(model.input_shape[1])
        pixels = films_at(resolution, [film.path for film in films])
        probs = predict_probabilities(model, pixels, PREDICT_BATCH)
        maps = GradCam(model, layer).maps(pixels, explain, method)
        shares = border_energy_share(upsample(maps, resolution), border_band)
        cells = []
        for film, cam, prob, share in zip(films, maps, probs, shares, strict=True):
            caption = f"p({positive}) = {prob:.3f}\nborder {100 * share:.0f}%"
            cells.append(overlay(Path(film.path), cam, aspect, caption, colour))
            rows.append({"source": film.path, "patient_id": film.patient_id, "label": film.label,
                         "variant": grid_model.variant, "variant_label": grid_model.label, "prob": float(prob),
                         "method": method, "layer": layer, "border_share": float(share),
                         "selection": "random"})  # fmt: skip
        columns.append(cells)
        keras.backend.clear_session()
    _assemble([m.label for m in models], columns).save(paths.gradcam_comparison)
    write_csv(paths.gradcam_comparison_csv, COMPARISON_COLUMNS, rows)
    logger.info("Grad-CAM comparison grid: %d films x %d models in %s", len(films), len(models),
                paths.gradcam_comparison)  # fmt: skip
    return True


def _assemble(headers: Sequence[str], columns: Sequence[Sequence[Image.Image]]) -> Image.Image:
    """Cells in a grid under a header row naming each column's model."""
    width = max(cell.width for column in columns for cell in column)
    heights = [max(column[row].height for column in columns) for row in range(len(columns[0]))]
    grid = Image.new("RGB", (len(columns) * (width + CELL_GAP), HEADER_HEIGHT + sum(h + CELL_GAP for h in heights)),
                     "white")  # fmt: skip
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=13)
    for index, (header, column) in enumerate(zip(headers, columns, strict=True)):
        left = index * (width + CELL_GAP)
        draw.text((left + 4, 10), header, fill="black", font=font)
        top = HEADER_HEIGHT
        for cell, height in zip(column, heights, strict=True):
            grid.paste(cell, (left, top))
            top += height + CELL_GAP
    return grid

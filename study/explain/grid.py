"""The comparison grid: the same test films under the best model and each ablation variant's model.

One column per model, one row per film, every cell explaining the film's true class with the first
configured method, so the only thing that changes along a row is the factor the variant changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from study.ablation.plan import BEST
from study.ablation.tables import variant_label
from study.explain.gallery import GalleryItem, overlay
from study.explain.gradcam import GradCam, upsample
from study.explain.scores import border_energy_share
from study.results import COMPARISON_COLUMNS, ResultsPaths, read_csv, write_csv

logger = logging.getLogger(__name__)

FILMS_PER_CLASS = 2
HEADER_HEIGHT = 36
CELL_GAP = 4


@dataclass(frozen=True)
class GridModel:
    variant: str
    label: str
    path: Path


def grid_models(paths: ResultsPaths) -> list[GridModel]:
    """The best model, then each ablation variant with a saved model, in the table's order."""
    if not paths.ablation_runs.exists():
        return []
    models = [GridModel(BEST, "Best configuration (search)", paths.best_model)]
    seen = set()
    for row in read_csv(paths.ablation_runs):
        variant = row["variant"]
        if variant != BEST and variant not in seen and paths.ablation_model(variant).is_file():
            seen.add(variant)
            models.append(GridModel(variant, variant_label(row), paths.ablation_model(variant)))
    return models


def grid_films(items: Sequence[GalleryItem]) -> list[GalleryItem]:
    """The best model's most confident true positives and true negatives: films every model should get."""
    chosen = []
    for category in ("TP", "TN"):
        chosen += [i for i in items if i.category == category and i.selection == "confident"][:FILMS_PER_CLASS]
    return chosen


def write_comparison_grid(
    paths: ResultsPaths,
    items: Sequence[GalleryItem],
    films_at: Callable[[int, list[str]], np.ndarray],
    layer: str,
    method: str,
    aspect: str,
    border_band: float,
) -> bool:
    """gradcam/comparison.png and comparison.csv; False (nothing written) without ablation models."""
    models, films = grid_models(paths), grid_films(items)
    if len(models) < 2 or not films:
        return False
    explain = np.array([film.label == 1 for film in films])
    columns: list[list[Image.Image]] = []
    rows = []
    for grid_model in models:
        model = keras.saving.load_model(grid_model.path, compile=False)
        resolution = int(model.input_shape[1])
        pixels = films_at(resolution, [film.path for film in films])
        probs = model.predict(pixels, verbose=0).ravel()
        maps = GradCam(model, layer).maps(pixels, explain, method)
        shares = border_energy_share(upsample(maps, resolution), border_band)
        cells = []
        for film, cam, prob, share in zip(films, maps, probs, shares, strict=True):
            caption = f"p(PNEUMONIA) = {prob:.3f}\nborder {100 * share:.0f}%"
            cells.append(overlay(Path(film.path), cam, aspect, caption))
            rows.append({"source": film.path, "patient_id": film.patient_id, "label": film.label,
                         "variant": grid_model.variant, "variant_label": grid_model.label, "prob": float(prob),
                         "method": method, "layer": layer, "border_share": float(share)})  # fmt: skip
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

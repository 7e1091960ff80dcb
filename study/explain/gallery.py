"""The gallery: which test films to show (most confident and borderline of TP, FP, FN, TN), and their
overlays drawn on the original film with a caption, listed with their scores in gradcam/index.csv."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from study.data.cache import square_to_original
from study.data.validate import open_film, open_rgb_film
from study.explain.gradcam import upsample
from study.results import GRADCAM_COLUMNS, DataSummary, ResultsPaths, write_csv
from study.results.classes import CHEST_XRAY, Classes
from study.results.vocab import CATEGORIES, POSITIVE_CATEGORIES

logger = logging.getLogger(__name__)

OVERLAY_SIDE = 320
OVERLAY_ALPHA = 0.45
CAPTION_FONT_SIZE = 12
CAPTION_LINE_HEIGHT = 15


@dataclass(frozen=True)
class GalleryItem:
    """A test film chosen for the gallery, with what the model said about it."""

    path: str
    category: str
    label: int
    prob: float
    patient_id: str
    selection: str  # confident (furthest from the threshold) or borderline (nearest to it)


def choose_gallery(
    rows: Sequence[dict[str, str]], patients: dict[str, str], threshold: float, per_category: int
) -> list[GalleryItem]:
    """For each of TP, FP, FN, TN: the `per_category` most confident test films, where the model is surest,
    then the `per_category` borderline ones nearest the threshold, where a reader learns what tips it."""
    chosen: list[GalleryItem] = []
    for category in CATEGORIES:
        predicts_positive = category in POSITIVE_CATEGORIES
        wanted_label = int(predicts_positive == category.startswith("T"))  # a true call agrees with the label
        members = [
            row
            for row in rows
            if int(row["label"]) == wanted_label and (float(row["prob"]) >= threshold) == predicts_positive
        ]
        members.sort(key=lambda row: abs(float(row["prob"]) - threshold), reverse=True)
        confident, rest = members[:per_category], members[per_category:]
        borderline = rest[::-1][:per_category]
        for selection, picked in (("confident", confident), ("borderline", borderline)):
            for row in picked:
                label, prob, patient = int(row["label"]), float(row["prob"]), patients.get(row["path"], "")
                chosen.append(GalleryItem(row["path"], category, label, prob, patient, selection))
    return chosen


def overlay(film_path: Path, cam: np.ndarray, aspect: str, caption: str = "", colour: bool = False) -> Image.Image:
    """The original film with the map in a perceptual colour scale on top, and the caption in a band below
    (not over the film), so a PNG shared on its own still says what it shows. With `colour` (a study of colour
    images, data.color) the image keeps its colours under the map, as the model saw them."""
    film = (open_rgb_film if colour else open_film)(film_path).image
    film.thumbnail((OVERLAY_SIDE, OVERLAY_SIDE), Image.Resampling.LANCZOS)
    heat = square_to_original(upsample(cam[None], OVERLAY_SIDE)[0], film.width, film.height, aspect)
    colours = colormaps["inferno"](np.clip(heat, 0.0, 1.0))[..., :3]
    pixels = np.asarray(film, dtype=np.float32) / 255.0
    underneath = pixels if pixels.ndim == 3 else pixels[..., None]
    blended = (1.0 - OVERLAY_ALPHA) * underneath + OVERLAY_ALPHA * colours
    image = Image.fromarray((blended * 255).astype(np.uint8), mode="RGB")
    if not caption:
        return image
    font = ImageFont.load_default(size=CAPTION_FONT_SIZE)
    lines = caption.splitlines()
    width = max(image.width, *(int(font.getlength(line)) + 8 for line in lines))
    captioned = Image.new("RGB", (width, image.height + CAPTION_LINE_HEIGHT * len(lines) + 4), "black")
    captioned.paste(image, ((width - image.width) // 2, 0))
    draw = ImageDraw.Draw(captioned)
    for number, line in enumerate(lines):
        draw.text((4, image.height + 2 + CAPTION_LINE_HEIGHT * number), line, fill="white", font=font)
    return captioned


def caption_for(item: GalleryItem, method: str, layer_name: str, classes: Classes = CHEST_XRAY) -> str:
    return (
        f"{item.category} ({item.selection}): {classes.name(item.label)}\np({classes.positive}) = {item.prob:.3f}\n"
        f"{classes.words.group} {item.patient_id or '?'}\n{method} on {layer_name}"
    )


def write_gallery(
    items: Sequence[GalleryItem],
    maps_by_method: dict[str, np.ndarray],
    scores_by_method: dict[str, dict[str, np.ndarray]],
    layer_name: str,
    aspect: str,
    paths: ResultsPaths,
) -> int:
    """Draw every item's overlay for every method and write gradcam/index.csv with its scores."""
    paths.gradcam_dir.mkdir(parents=True, exist_ok=True)
    summary = DataSummary.read(paths.data_summary)
    classes, colour = summary.class_pair, summary.channels == 3
    rows = []
    for method, cams in maps_by_method.items():
        tag = method.replace("+", "p")
        for index, (item, cam) in enumerate(zip(items, cams, strict=True)):
            file_name = f"{item.category}_{index:02d}_{tag}_{Path(item.path).stem}.png"
            caption = caption_for(item, method, layer_name, classes)
            overlay(Path(item.path), cam, aspect, caption, colour).save(paths.gradcam_dir / file_name)
            scores = {name: _finite(values[index]) for name, values in scores_by_method[method].items()}
            rows.append(
                {"file": file_name, "source": item.path, "category": item.category, "selection": item.selection,
                 "label": item.label, "prob": item.prob, "patient_id": item.patient_id, "method": method,
                 "layer": layer_name, **scores}
            )  # fmt: skip
    write_csv(paths.gradcam_index, GRADCAM_COLUMNS, rows)
    logger.info("Grad-CAM gallery: %d overlays in %s", len(rows), paths.gradcam_dir)
    return len(rows)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None

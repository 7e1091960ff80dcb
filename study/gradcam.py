"""Batched Grad-CAM on the final model, with MobileNetV2 nested inside it, and the first gallery.

Gradients are taken of the logit (not the sigmoid, which saturates) and of the negated logit when the
explained class is NORMAL. The model is never changed: a feature model is cut from the nested backbone
and the head layers are reused as they are. Overlays are drawn on the original film, not on the model's
preprocessed input.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from study.data.cache import square_to_original
from study.data.validate import open_film
from study.errors import UserInputError
from study.hypermodel import LOGIT_LAYER
from study.results import GRADCAM_COLUMNS, ResultsPaths, write_csv

logger = logging.getLogger(__name__)

CATEGORIES = ("TP", "FP", "FN", "TN")
METHODS = ("gradcam", "gradcam++")
OVERLAY_SIDE = 320
OVERLAY_ALPHA = 0.45
CAPTION_FONT_SIZE = 12
CAPTION_LINE_HEIGHT = 15
EPSILON = 1e-8
FLOAT16_GRADIENT_SCALE = 1024.0


@dataclass(frozen=True)
class GalleryItem:
    """A test film chosen for the gallery, with what the model said about it."""

    path: str
    category: str
    label: int
    prob: float
    patient_id: str
    selection: str  # confident (furthest from the threshold) or borderline (nearest to it)


class GradCam:
    """Grad-CAM maps for a batch of uint8 films (N x R x R x 1), computed in one forward/backward pass."""

    def __init__(self, model: keras.Model, layer_name: str) -> None:
        self.backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
        names = [layer.name for layer in self.backbone.layers]
        if layer_name not in names:
            raise UserInputError(
                f"gradcam.layer {layer_name!r}: no such backbone layer; valid names: {', '.join(names)}"
            )
        self.preprocess = [model.get_layer(name) for name in ("to_float", "mobilenet_scale", "gray_to_rgb")]
        self.features = keras.Model(
            self.backbone.inputs, [self.backbone.get_layer(layer_name).output, self.backbone.output]
        )
        self.head = [model.get_layer(name) for name in ("pool", LOGIT_LAYER)]
        self._compiled = tf.function(self._activations_and_gradients, reduce_retracing=True)

    def _rgb(self, films: np.ndarray) -> tf.Tensor:
        to_float, scale, to_rgb = self.preprocess
        scaled = scale(to_float(films))
        return to_rgb([scaled, scaled, scaled])

    def _activations_and_gradients(self, films: tf.Tensor, sign: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The layer's activations and the gradient of the signed logit w.r.t. them, for the whole batch.

        Compiled once per GradCam with tf.function: a graph-mode backward pass over batches is what makes
        this an order of magnitude faster than the usual eager per-image loop."""
        rgb = self._rgb(films)
        with tf.GradientTape() as tape:
            activations, final = self.features(rgb, training=False)
            pool, logit_layer = self.head
            target = tf.cast(logit_layer(pool(final))[:, 0], tf.float32) * sign
            # A mixed_float16 model back-propagates in float16, where small gradients flush to zero: scale
            # the target up like a loss scale, and undo it in float32.
            scale = FLOAT16_GRADIENT_SCALE if activations.dtype == tf.float16 else 1.0
            scaled_target = target * scale
        gradients = tf.cast(tape.gradient(scaled_target, activations), tf.float32) / scale
        return tf.cast(activations, tf.float32), gradients

    def maps(self, films: np.ndarray, explain_pneumonia: np.ndarray, method: str = "gradcam") -> np.ndarray:
        """N x h x w maps in [0, 1] at the layer's resolution; a constant film gives a finite (zero) map.

        gradcam weighs each channel by its mean gradient; gradcam++ by positive gradients with the
        second-order weights of Chattopadhay et al. (2018), which separates several lesions better.
        """
        sign = tf.constant(np.where(explain_pneumonia, 1.0, -1.0), dtype=tf.float32)
        activations, gradients = self._compiled(tf.constant(films), sign)
        if method == "gradcam":
            weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        elif method == "gradcam++":
            squared = tf.square(gradients)
            summed = tf.reduce_sum(activations, axis=(1, 2), keepdims=True)
            alpha = squared / (2.0 * squared + summed * squared * gradients + EPSILON)
            alpha = tf.where(gradients != 0.0, alpha, tf.zeros_like(alpha))
            weights = tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=(1, 2), keepdims=True)
        else:
            raise UserInputError(f"gradcam.method {method!r}: expected one of {METHODS}")
        cams = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1)).numpy()
        peaks = cams.reshape(len(cams), -1).max(axis=1).reshape(-1, 1, 1)
        return cams / (peaks + EPSILON)


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """Maps from the layer's grid to the model's size x size input grid (bilinear), where scores are taken."""
    return np.stack(
        [
            np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BILINEAR))
            for m in maps
        ]
    )


def choose_gallery(
    rows: Sequence[dict[str, str]], patients: dict[str, str], threshold: float, per_category: int
) -> list[GalleryItem]:
    """For each of TP, FP, FN, TN: the `per_category` most confident test films, where the model is surest,
    then the `per_category` borderline ones nearest the threshold, where a reader learns what tips it."""
    chosen: list[GalleryItem] = []
    for category in CATEGORIES:
        wanted_label = 1 if category in ("TP", "FN") else 0
        predicts_positive = category in ("TP", "FP")
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


def overlay(film_path: Path, cam: np.ndarray, aspect: str, caption: str = "") -> Image.Image:
    """The original film with the map in a perceptual colour scale on top, and the caption in a band below
    (not over the film), so a PNG shared on its own still says what it shows."""
    film = open_film(film_path).image
    film.thumbnail((OVERLAY_SIDE, OVERLAY_SIDE), Image.Resampling.LANCZOS)
    heat = square_to_original(upsample(cam[None], OVERLAY_SIDE)[0], film.width, film.height, aspect)
    colours = colormaps["inferno"](np.clip(heat, 0.0, 1.0))[..., :3]
    grey = np.asarray(film, dtype=np.float32)[..., None] / 255.0
    blended = (1.0 - OVERLAY_ALPHA) * grey + OVERLAY_ALPHA * colours
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


def caption_for(item: GalleryItem, method: str, layer_name: str) -> str:
    truth = "PNEUMONIA" if item.label == 1 else "NORMAL"
    return (
        f"{item.category} ({item.selection}): {truth}\np(PNEUMONIA) = {item.prob:.3f}\n"
        f"patient {item.patient_id or '?'}\n{method} on {layer_name}"
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
    rows = []
    for method, cams in maps_by_method.items():
        tag = method.replace("+", "p")
        for index, (item, cam) in enumerate(zip(items, cams, strict=True)):
            file_name = f"{item.category}_{index:02d}_{tag}_{Path(item.path).stem}.png"
            overlay(Path(item.path), cam, aspect, caption_for(item, method, layer_name)).save(
                paths.gradcam_dir / file_name
            )
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

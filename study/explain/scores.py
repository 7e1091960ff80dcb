"""How far a saliency map can be trusted: faithfulness, localisation and border-shortcut scores.

Each score works on maps already upsampled to the model's input grid (N x R x R, in [0, 1]) and plain
numpy films, so it can be tested without a network. A map that explains something must beat a random
map of the same size on faithfulness; that baseline is always reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from study.evaluate.metrics import patient_resamples, percentile_interval

DELETION_STEPS = 10

Predict = Callable[[np.ndarray], np.ndarray]


def deletion_auc(
    films: np.ndarray, maps: np.ndarray, explain_positive: np.ndarray, predict: Predict, seed: int
) -> np.ndarray:
    """Area under the explained class's probability as the most salient pixels are greyed out, 10% a step.

    Lower is more faithful: removing what the map points at should make the model change its mind fast.
    Deleted pixels take the film's mean (per channel for colour), so no new edges are drawn. One forward pass
    per step for the whole batch. Pixels the map ties (ReLU's zeros, a flat map) go in random order, as the
    random baseline's do: in pixel order they would delete the top of the film first, which a model may care
    more or less about.
    """
    count, height, width = maps.shape
    tie_break = np.random.default_rng(seed).random((count, height * width))
    order = np.lexsort((tie_break, -maps.reshape(count, -1)), axis=1)
    pixels = films.reshape(count, height * width, -1)
    fill = pixels.mean(axis=1)  # count x channels; exact for uint8, whatever the summation order
    flat = pixels.astype(np.float32)
    curve = []
    for step in range(DELETION_STEPS + 1):
        erased = flat.copy()
        cut = round(step / DELETION_STEPS * height * width)
        rows = np.repeat(np.arange(count), cut)
        erased[rows, order[:, :cut].ravel()] = np.repeat(fill, cut, axis=0)
        probs = predict(erased.reshape(films.shape).round().astype(films.dtype))
        curve.append(np.where(explain_positive, probs, 1.0 - probs))
    return np.trapezoid(np.stack(curve, axis=1), dx=1.0 / DELETION_STEPS, axis=1)


def random_maps(shape: tuple[int, ...], grid: int, seed: int) -> np.ndarray:
    """Blocky random maps on the explained layer's grid (grid x grid cells), the baseline a real map must beat:
    a finer or coarser random grid than the layer's would be a different opponent."""
    rng = np.random.default_rng(seed)
    count, height, width = shape
    coarse = rng.random((count, grid, grid))
    rows = (np.arange(height) * grid // height)[:, None]
    cols = (np.arange(width) * grid // width)[None, :]
    return coarse[:, rows, cols]


def paired_difference(
    values: np.ndarray, baseline: np.ndarray, patients: Sequence[str], resamples: int, confidence: float, seed: int
) -> tuple[float, tuple[float, float]]:
    """Mean per-film difference (values - baseline) and its patient-cluster bootstrap interval: a map "beats"
    the random baseline only when the whole interval lies below zero."""
    difference = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    means = [float(difference[chosen].mean()) for chosen in patient_resamples(patients, resamples, seed)]
    return float(difference.mean()), percentile_interval(means, confidence)


def energy_in_mask_ratio(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of map energy inside the mask divided by the mask's share of the image ("x times chance").

    NaN for an empty mask. 1.0 is what a map that ignores the lesion scores on average.
    """
    energy = maps.reshape(len(maps), -1).sum(axis=1)
    inside = (maps * masks).reshape(len(maps), -1).sum(axis=1)
    share = masks.reshape(len(masks), -1).mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(share > 0, inside / np.maximum(energy, 1e-12) / share, np.nan)


def border_energy_share(maps: np.ndarray, band: float) -> np.ndarray:
    """Share of map energy in the outer band of the image, where real films carry side markers and text."""
    count, height, width = maps.shape
    rim_y, rim_x = max(1, round(band * height)), max(1, round(band * width))
    inner = np.zeros((height, width), bool)
    inner[rim_y : height - rim_y, rim_x : width - rim_x] = True
    energy = maps.reshape(count, -1).sum(axis=1)
    outside = maps[:, ~inner].sum(axis=1)
    return outside / np.maximum(energy, 1e-12)

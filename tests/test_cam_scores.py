"""Saliency scores on maps and a model whose answers are known."""

from __future__ import annotations

import numpy as np

from study.explain.scores import border_energy_share, deletion_auc, energy_in_mask_ratio, random_maps


def _films_with_a_bright_patch(count: int) -> np.ndarray:
    films = np.full((count, 20, 20, 1), 50, np.uint8)
    films[:, 5:10, 5:10, 0] = 250
    return films


def _patch_detector(films: np.ndarray) -> np.ndarray:
    """P(positive) rises with the patch's brightness and ignores everything else."""
    return films[:, 5:10, 5:10, 0].mean(axis=(1, 2)) / 255.0


def test_deleting_what_the_model_uses_drops_its_confidence_faster() -> None:
    films = _films_with_a_bright_patch(3)
    on_patch = np.zeros((3, 20, 20))
    on_patch[:, 5:10, 5:10] = 1.0
    elsewhere = np.zeros((3, 20, 20))
    elsewhere[:, 12:20, 12:20] = 1.0
    explain = np.ones(3, bool)
    faithful = deletion_auc(films, on_patch, explain, _patch_detector)
    unfaithful = deletion_auc(films, elsewhere, explain, _patch_detector)
    baseline = deletion_auc(films, random_maps((3, 20, 20), seed=0), explain, _patch_detector)
    assert np.all(faithful < unfaithful)
    assert faithful.mean() < baseline.mean()


def test_energy_in_mask_is_relative_to_chance() -> None:
    masks = np.zeros((3, 10, 10), bool)
    masks[:2, :5, :] = True  # half the image; the third film has no lesion
    inside_only = masks.astype(float)
    uniform = np.ones((3, 10, 10))
    assert np.allclose(energy_in_mask_ratio(inside_only, masks)[:2], 2.0)
    assert np.allclose(energy_in_mask_ratio(uniform, masks)[:2], 1.0)
    assert np.isnan(energy_in_mask_ratio(uniform, masks)[2])


def test_border_share_flags_maps_on_the_rim() -> None:
    rim = np.zeros((2, 20, 20))
    rim[0, 0, :] = 1.0  # the top row: all energy on the border
    rim[1, 8:12, 8:12] = 1.0  # the centre: none
    shares = border_energy_share(rim, band=0.1)
    assert shares[0] == 1.0 and shares[1] == 0.0

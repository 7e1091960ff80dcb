"""Saliency scores on maps and a model whose answers are known."""

from __future__ import annotations

import numpy as np

from study.explain.scores import (
    border_energy_share,
    deletion_auc,
    energy_in_mask_ratio,
    paired_difference,
    random_maps,
)


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
    faithful = deletion_auc(films, on_patch, explain, _patch_detector, seed=0)
    unfaithful = deletion_auc(films, elsewhere, explain, _patch_detector, seed=0)
    baseline = deletion_auc(films, random_maps((3, 20, 20), grid=7, seed=0), explain, _patch_detector, seed=0)
    assert np.all(faithful < unfaithful)
    assert faithful.mean() < baseline.mean()


def test_tied_pixels_are_deleted_in_random_order_not_from_the_top() -> None:
    films = np.full((4, 20, 20, 1), 50, np.uint8)
    films[:, :5, :, 0] = 250  # what the model reads sits in the top quarter

    def top_band(batch: np.ndarray) -> np.ndarray:
        return batch[:, :5, :, 0].mean(axis=(1, 2)) / 255.0

    explain = np.ones(4, bool)
    flat = deletion_auc(films, np.zeros((4, 20, 20)), explain, top_band, seed=0)
    top_first = deletion_auc(films, np.tile(np.linspace(1.0, 0.0, 20)[:, None], (4, 1, 20)), explain, top_band, seed=0)
    assert np.all(top_first < 0.5), top_first  # the band is gone after 25% of the pixels
    assert np.all(np.abs(flat - 0.685) < 0.05), flat  # a flat map deletes like a random order: about linear


def test_random_maps_live_on_the_explained_layers_grid() -> None:
    maps = random_maps((2, 20, 20), grid=5, seed=0)
    assert maps.shape == (2, 20, 20)
    for single in maps:
        blocks = single.reshape(5, 4, 5, 4)
        assert np.all(blocks == blocks[:, :1, :, :1]), "constant within each of the 5x5 cells"
        assert len(np.unique(single)) == 25


def test_the_paired_difference_resamples_patients_not_films() -> None:
    values = np.array([0.3] * 10 + [0.9])  # ten films of one child beat the baseline, one film of another loses
    baseline = np.array([0.5] * 10 + [0.4])
    patients = ["a"] * 10 + ["b"]
    mean, (low, high) = paired_difference(values, baseline, patients, resamples=2000, confidence=0.95, seed=0)
    assert np.isclose(mean, (10 * -0.2 + 0.5) / 11)
    assert np.isclose(low, -0.2) and np.isclose(high, 0.5), "two children: the interval spans both, and 0"


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

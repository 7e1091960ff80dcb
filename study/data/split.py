"""Patient-grouped, class-stratified validation split of train + the official val folder.

The 16-film val folder cannot select anything (accuracy moves in 6.25-point steps), so it joins the pool;
the official test folder never enters the pool and keeps split "test". Data without a test folder (one folder
of class folders) get their test set drawn first, the same way, with its own share.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from study.data.discover import FilmRecord
from study.errors import DataLayoutError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitRecord:
    """A film with the split the study uses it in (train | val | test) and its content hash."""

    film: FilmRecord
    split: str
    sha1: str


@dataclass(frozen=True)
class SplitArrays:
    """Training and validation images at one resolution (uint8, N x H x W x C, C = 1 or 3) and 0/1 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def _held_out(films: Sequence[FilmRecord], pool: list[int], fraction: float, seed: int, what: str) -> set[int]:
    """A patient-grouped, class-stratified share of `pool` (indices into films); deterministic per seed."""
    labels = np.array([films[index].label for index in pool])  # the splitter codes class names in sorted order
    groups = np.array([films[index].patient_id for index in pool])
    if len(set(labels.tolist())) < 2:
        raise DataLayoutError(f"{what}: one class only, so no class-stratified split")
    groups_per_class = min(len(set(groups[labels == label])) for label in set(labels.tolist()))
    folds = min(max(2, round(1.0 / fraction)), groups_per_class)
    if folds < 2:
        raise DataLayoutError(f"{what}: fewer than 2 patients in a class, so no patient-grouped split")
    if folds < round(1.0 / fraction):
        logger.warning("only %d patients in the smaller class: %s takes 1/%d of the pool", groups_per_class, what,
                       folds)  # fmt: skip
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    _, held_positions = next(splitter.split(np.zeros(len(pool)), labels, groups))
    return {pool[position] for position in held_positions}


def assign_splits(
    films: Sequence[FilmRecord],
    sha1s: Sequence[str],
    val_fraction: float,
    seed: int,
    test_fraction: float | None = None,
) -> list[SplitRecord]:
    """Split the train+val pool by patient so that no child has films on both sides; deterministic per seed.
    With `test_fraction` (data without a test folder), the test set is drawn from the pool first."""
    pool = [index for index, film in enumerate(films) if film.source_split != "test"]
    test_indices = set() if test_fraction is None else _held_out(films, pool, test_fraction, seed, "test")
    pool = [index for index in pool if index not in test_indices]
    val_indices = _held_out(films, pool, val_fraction, seed, "train+val")

    def split_of(index: int, film: FilmRecord) -> str:
        if film.source_split == "test" or index in test_indices:
            return "test"
        return "val" if index in val_indices else "train"

    return [SplitRecord(film=film, split=split_of(index, film), sha1=sha1s[index]) for index, film in enumerate(films)]

"""What every stage after the data stage reads of the data: the split's rows and the decoded films.

The data stage writes split.csv and fills the decode cache; search, evaluate, ablation and Grad-CAM read
them back only through here, so none of them opens a JPEG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from study.data.cache import DecodedArrays, decoded_arrays
from study.data.discover import list_films
from study.data.split import SplitArrays
from study.errors import DataLayoutError
from study.results import DataSummary, ResultsPaths, read_csv
from study.results.classes import Classes


def load_split_rows(paths: ResultsPaths, split: str) -> list[dict[str, str]]:
    return [row for row in read_csv(paths.split_csv) if row["split"] == split]


def study_classes(paths: ResultsPaths) -> Classes:
    """The negative and positive class the data stage found (NORMAL and PNEUMONIA for older studies)."""
    return DataSummary.read(paths.data_summary).class_pair


def label_codes(rows: Sequence[dict[str, str]], classes: Classes) -> np.ndarray:
    """0/1 labels of split.csv rows: 1 for the positive class."""
    return np.array([classes.code(row["label"]) for row in rows], dtype=np.float32)


def dataset_arrays(paths: ResultsPaths, resolutions: Sequence[int], aspect: str, cache_dir: Path) -> DecodedArrays:
    """The decode cache the data stage filled (rebuilt, once, if the cache folder was cleared)."""
    summary = DataSummary.read(paths.data_summary)
    listing = list_films(Path(summary.data_root))
    film_paths = [str(film.path) for film in listing.films]
    decoded = decoded_arrays(film_paths, resolutions, aspect, cache_dir, "films", summary.channels)
    known = {entry.path for entry in decoded.entries}
    missing = [row["path"] for row in read_csv(paths.split_csv) if row["path"] not in known]
    if missing:
        raise DataLayoutError(
            f"{missing[0]}: listed in {paths.split_csv} but no longer a usable film; the data changed since the data "
            "stage, so start a new --results folder"
        )
    return decoded


def load_training_arrays(
    paths: ResultsPaths, resolutions: Sequence[int], aspect: str, cache_dir: Path
) -> dict[int, SplitArrays]:
    """Train and val arrays per resolution, copied into memory from the decode cache."""
    return training_arrays(paths, dataset_arrays(paths, resolutions, aspect, cache_dir), resolutions)


def training_arrays(paths: ResultsPaths, decoded: DecodedArrays, resolutions: Sequence[int]) -> dict[int, SplitArrays]:
    """Train and val arrays per resolution from an open decode cache (a stage that needs the test films too
    opens the cache once and passes it here)."""
    train, val = load_split_rows(paths, "train"), load_split_rows(paths, "val")
    classes = study_classes(paths)
    return {
        size: SplitArrays(
            decoded.take(size, [row["path"] for row in train]),
            label_codes(train, classes),
            decoded.take(size, [row["path"] for row in val]),
            label_codes(val, classes),
        )
        for size in resolutions
    }

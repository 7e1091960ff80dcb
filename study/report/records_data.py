"""The report's records for the data section: counts per split and class, what was skipped, how files were
grouped. Plain data, as in records.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CountRow:
    """One split of the data table: images per class (in DataInfo.classes order) and patients."""

    split: str
    counts: tuple[int, ...]
    total: int
    patients: int | None


@dataclass(frozen=True)
class SkippedRow:
    path: str
    reason: str


@dataclass(frozen=True)
class DataInfo:
    """data/summary.json plus the first rows of data/skipped.csv."""

    classes: tuple[str, ...]
    rows: tuple[CountRow, ...]
    class_totals: tuple[int, ...]
    total: int
    skipped: int
    skipped_rows: tuple[SkippedRow, ...]
    duplicates_removed: int | None
    files_without_patient_id: int | None
    val_fraction: float | None
    seed: int | None
    test_leakage: int | None = None  # train/val copies of test films, kept out of training
    data_hash: str | None = None  # one hash of every film's bytes and split: the data the study saw
    group_pattern: str = "chest_xray"  # data.group_pattern: how file names named their patients
    test_drawn: bool = False  # no test folder: the tool drew the test set
    test_share: float | None = None  # the drawn test set's share of the films
    layout: str = "kaggle"
    test_patient_ids: str = "separate"  # data.test_patient_ids: what an id in test/ and train+val meant
    shared_test_ids: int | None = None  # such ids found (None: the study predates the count)
    shared_test_id_examples: tuple[str, ...] = ()
    shared_id_pool_films: int | None = None
    channels: int = 1  # the model's input: 1 (gray) or 3 (RGB)
    colour_files: int | None = None
    files_with_group_id: int | None = None

    @property
    def groups_found_none(self) -> bool:
        """The group pattern named no group in any file name: each file was its own group, as with `none`."""
        return self.group_pattern != "none" and self.files_with_group_id == 0

    @property
    def kaggle_names(self) -> bool:
        """Kaggle's naming read (nearly) every file: fewer than 5% of the films named no patient."""
        return self.group_pattern == "chest_xray" and (self.files_without_patient_id or 0) <= 0.05 * self.total

"""Find the Kaggle layout under a --data path and list its films with labels and patient ids.

Patient ids come from the file names (DATASET.md) and are keyed by the source folder, because person
numbers restart in the test folder: `person1_bacteria_1.jpeg` in train and in test are different children.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from study.errors import DataLayoutError
from study.labels import CLASS_NAMES

SOURCE_SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
EXPECTED_LAYOUT = "chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg, or the train/ val/ test/ folders themselves"

_PNEUMONIA_PATTERN = re.compile(r"^(person\d+)_(?:bacteria|virus)_\d+$", re.IGNORECASE)
_NORMAL_PATTERN = re.compile(r"^((?:NORMAL2-)?IM-\d+)-\d+$", re.IGNORECASE)


@dataclass(frozen=True)
class FilmRecord:
    """One film as found on disk: where it is, its class, its source folder and its patient."""

    path: Path
    label: str
    source_split: str
    patient_id: str


def patient_id_from_name(file_name: str, source_split: str) -> str | None:
    """`person12_virus_3.jpeg` -> `train/person12`; None when the name carries no patient."""
    stem = Path(file_name).stem
    match = _PNEUMONIA_PATTERN.match(stem) or _NORMAL_PATTERN.match(stem)
    return f"{source_split}/{match.group(1)}" if match else None


def find_split_root(data_path: Path) -> Path:
    """The folder holding train/ val/ test/: `data_path/chest_xray`, or `data_path` itself."""
    if not data_path.is_dir():
        raise DataLayoutError(f"--data {data_path}: no such folder (expected {EXPECTED_LAYOUT})")
    for candidate in (data_path / "chest_xray", data_path):
        if all((candidate / split).is_dir() for split in SOURCE_SPLITS):
            return candidate
    raise DataLayoutError(f"--data {data_path}: no train/ val/ test/ folders found (expected {EXPECTED_LAYOUT})")


def list_films(split_root: Path) -> tuple[list[FilmRecord], int]:
    """Every film under train/ val/ test/ x NORMAL/ PNEUMONIA, sorted; and how many names carry no patient.

    Dotfiles and macOS `._*` resource forks are not films. A film without a patient id in its name is
    its own patient, so it can never leak across the validation split.
    """
    records: list[FilmRecord] = []
    without_patient = 0
    for source_split in SOURCE_SPLITS:
        for label in CLASS_NAMES:
            folder = split_root / source_split / label
            if not folder.is_dir():
                raise DataLayoutError(f"--data {split_root}: missing folder {folder} (expected {EXPECTED_LAYOUT})")
            for path in sorted(folder.iterdir()):
                if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                patient = patient_id_from_name(path.name, source_split)
                if patient is None:
                    without_patient += 1
                    patient = f"{source_split}/{path.name}"
                records.append(FilmRecord(path, label, source_split, patient))
    if not any(record.source_split != "test" for record in records):
        raise DataLayoutError(f"--data {split_root}: no training films found (expected {EXPECTED_LAYOUT})")
    return records, without_patient

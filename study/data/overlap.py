"""Patient ids that test/ shares with train+val, and what `data.test_patient_ids` makes of them.

Kaggle's names do not say whether test/ numbers its children afresh: `person1_virus_6` in test/ beside
`person1_bacteria_1` in train/ may be one child or two, and test/ holds numbers as high as `person1685`. The
count is shown whichever way the config reads them; under "shared" the train/val films of those children
leave the pool, as copies of test films do, so that no child is both trained on and tested on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from study.data.discover import FilmRecord, patient_key_from_name

EXAMPLES = 5


@dataclass(frozen=True)
class TestPatientOverlap:
    """The patient keys found in test/ and in train+val, and how many train/val films carry them."""

    shared_keys: tuple[str, ...]
    pool_films: int

    @property
    def examples(self) -> tuple[str, ...]:
        return self.shared_keys[:EXAMPLES]


def _is_test(film: FilmRecord) -> bool:
    return film.source_split == "test"


def find_overlap(films: Sequence[FilmRecord], group_pattern: str) -> TestPatientOverlap:
    """Keys parsed from the file names alone (a name without a patient never matches another)."""
    keys = {film.path: patient_key_from_name(film.path.name, group_pattern) for film in films}
    test_keys = {keys[film.path] for film in films if _is_test(film)} - {None}
    pool_keys = {keys[film.path] for film in films if not _is_test(film)} - {None}
    shared = test_keys & pool_keys
    pool_films = sum(1 for film in films if not _is_test(film) and keys[film.path] in shared)
    return TestPatientOverlap(tuple(sorted(shared, key=_natural_order)), pool_films)


def keep_out_shared_patients(
    films: Sequence[FilmRecord], overlap: TestPatientOverlap, group_pattern: str
) -> tuple[list[FilmRecord], list[dict[str, str]]]:
    """The films without the train/val films of shared patients, and a skipped.csv row for each one removed."""
    shared = set(overlap.shared_keys)
    kept: list[FilmRecord] = []
    removed: list[dict[str, str]] = []
    for film in films:
        key = patient_key_from_name(film.path.name, group_pattern)
        if not _is_test(film) and key in shared:
            reason = f"shared patient: {key} also has films in test/, kept out of training (data.test_patient_ids)"
            removed.append({"path": str(film.path), "reason": reason})
        else:
            kept.append(film)
    return kept, removed


def _natural_order(key: str) -> tuple[str, int]:
    """person2 before person10."""
    match = re.fullmatch(r"(.*?)(\d+)", key)
    return (match.group(1), int(match.group(2))) if match else (key, -1)

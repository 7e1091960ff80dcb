"""The data stage: discover -> hash -> decode the train/val pool once -> patient split -> data/ files.

Test films are listed and hashed (for counts and leakage checks) but never decoded here: the test
folder's pixels are read by the evaluate stage and nowhere before.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from study.config import StudyConfig
from study.data.cache import decoded_arrays
from study.data.discover import FilmRecord, find_split_root, list_films
from study.data.split import SplitArrays, SplitRecord, assign_splits
from study.labels import CLASS_NAMES, label_code
from study.results import SKIPPED_COLUMNS, SPLIT_COLUMNS, ResultsPaths, read_csv, write_csv, write_json

logger = logging.getLogger(__name__)


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _drop_duplicates(
    films: Sequence[FilmRecord], sha1s: Sequence[str]
) -> tuple[list[FilmRecord], list[str], list[dict[str, str]], int]:
    """Keep the first copy of identical files; a pool file identical to a test file is leakage and leaves the pool."""
    test_hashes = {sha1 for film, sha1 in zip(films, sha1s, strict=True) if film.source_split == "test"}
    seen: set[str] = set()
    kept_films: list[FilmRecord] = []
    kept_sha1s: list[str] = []
    skipped: list[dict[str, str]] = []
    leaked = 0
    for film, sha1 in zip(films, sha1s, strict=True):
        if film.source_split != "test" and sha1 in test_hashes:
            skipped.append(
                {"path": str(film.path), "reason": "duplicate of a test film (leakage): kept out of training"}
            )
            leaked += 1
        elif sha1 in seen:
            skipped.append({"path": str(film.path), "reason": "exact duplicate of an earlier file"})
        else:
            seen.add(sha1)
            kept_films.append(film)
            kept_sha1s.append(sha1)
    return kept_films, kept_sha1s, skipped, leaked


def _summary(records: Sequence[SplitRecord], extra: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    source_counts: dict[str, dict[str, int]] = {}
    for field, table in (("split", counts), ("source_split", source_counts)):
        tally = Counter(
            (record.split if field == "split" else record.film.source_split, record.film.label) for record in records
        )
        for split in ("train", "val", "test"):
            table[split] = {label: tally[(split, label)] for label in CLASS_NAMES}
    patients = {
        split: len({record.film.patient_id for record in records if record.split == split})
        for split in ("train", "val", "test")
    }
    data_hash = hashlib.sha1("".join(sorted(record.sha1 for record in records)).encode()).hexdigest()
    return {"counts": counts, "patients": patients, "source_counts": source_counts, "data_hash": data_hash, **extra}


def prepare_data(data_path: Path, cfg: StudyConfig, cache_dir: Path, paths: ResultsPaths) -> dict[str, Any]:
    """Write data/split.csv, skipped.csv and summary.json, and fill the decode cache for the pool."""
    split_root = find_split_root(data_path)
    films, without_patient = list_films(split_root)
    logger.info("found %d films under %s; hashing them", len(films), split_root)
    sha1s = [_sha1(film.path) for film in films]
    films, sha1s, skipped, leaked = _drop_duplicates(films, sha1s)
    pool = [index for index, film in enumerate(films) if film.source_split != "test"]
    decoded = decoded_arrays(
        [str(films[i].path) for i in pool], [sha1s[i] for i in pool], cfg.space.resolutions, cfg.data.aspect,
        cache_dir, "train+val pool",
    )  # fmt: skip
    failed = {path for path, _ in decoded.failures}
    skipped += [{"path": path, "reason": reason} for path, reason in decoded.failures]
    keep = [index for index, film in enumerate(films) if str(film.path) not in failed]
    records = assign_splits(
        [films[i] for i in keep], [sha1s[i] for i in keep], cfg.data.val_fraction, cfg.data.split_seed
    )
    write_csv(paths.skipped_csv, SKIPPED_COLUMNS, skipped)
    write_csv(
        paths.split_csv,
        SPLIT_COLUMNS,
        (
            {"path": str(r.film.path), "label": r.film.label, "patient_id": r.film.patient_id,
             "source_split": r.film.source_split, "split": r.split, "sha1": r.sha1}
            for r in records
        ),
    )  # fmt: skip
    summary = _summary(
        records,
        {
            "skipped": len(skipped),
            "duplicates_removed": sum(1 for row in skipped if "duplicate" in row["reason"]),
            "test_leakage_duplicates": leaked,
            "files_without_patient_id": without_patient,
            "val_fraction": cfg.data.val_fraction,
            "seed": cfg.data.split_seed,
            "data_root": str(split_root),
        },
    )
    write_json(paths.data_summary, summary)
    for split in ("train", "val", "test"):
        counts = summary["counts"][split]
        logger.info(
            "%-5s %5d NORMAL %5d PNEUMONIA  %4d patients", split, counts["NORMAL"], counts["PNEUMONIA"],
            summary["patients"][split],
        )  # fmt: skip
    logger.info("skipped %d files (data/skipped.csv)", len(skipped))
    return summary


def load_split_rows(paths: ResultsPaths, split: str) -> list[dict[str, str]]:
    return [row for row in read_csv(paths.split_csv) if row["split"] == split]


def load_training_arrays(
    paths: ResultsPaths, resolutions: Sequence[int], aspect: str, cache_dir: Path
) -> dict[int, SplitArrays]:
    """Train and val arrays per resolution, straight from the decode cache the data stage filled."""
    pool = [row for row in read_csv(paths.split_csv) if row["split"] != "test"]
    decoded = decoded_arrays(
        [row["path"] for row in pool], [row["sha1"] for row in pool], resolutions, aspect, cache_dir, "train+val pool"
    )
    is_val = np.array([row["split"] == "val" for row in pool])
    labels = np.array([label_code(row["label"]) for row in pool], dtype=np.float32)
    return {
        size: SplitArrays(array[~is_val], labels[~is_val], array[is_val], labels[is_val])
        for size, array in decoded.by_resolution.items()
    }

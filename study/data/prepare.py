"""The data stage: discover -> open every film once (validate, hash, decode into the cache; colour data a second
time, as RGB) -> drop duplicates -> patient-grouped split -> data/split.csv, skipped.csv, summary.json.

Test films are validated here too, so a bad file fails in the first minute rather than after the night;
nothing about them (labels, pixels, predictions) is used until the evaluate stage.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from study.config import StudyConfig
from study.data.cache import FilmEntry, decoded_arrays
from study.data.discover import FilmRecord, find_split_root, list_films, resolve_classes
from study.data.overlap import find_overlap, keep_out_shared_patients
from study.data.split import SplitRecord, assign_splits
from study.errors import DataLayoutError
from study.results import SKIPPED_COLUMNS, SPLIT_COLUMNS, DataSummary, ResultsPaths, write_csv
from study.results.classes import Classes
from study.results.vocab import SPLITS

logger = logging.getLogger(__name__)

REQUIRED_SPLITS = ("train", "test")  # each needs films of every class (a drawn test set: train's alone)


def _drop_duplicates(
    films: Sequence[FilmRecord], entries: dict[str, FilmEntry]
) -> tuple[list[FilmRecord], list[dict[str, str]], int]:
    """Keep the first copy of identical pixels; a train/val copy of a test film is leakage and leaves the pool."""
    test_pixels = {entries[str(film.path)].pixel_sha1 for film in films if film.source_split == "test"}
    seen: dict[str, str] = {}
    kept: list[FilmRecord] = []
    skipped: list[dict[str, str]] = []
    leaked = 0
    for film in sorted(films, key=lambda film: film.source_split != "test"):  # test copies win
        pixels = entries[str(film.path)].pixel_sha1
        if film.source_split != "test" and pixels in test_pixels:
            skipped.append(
                {"path": str(film.path), "reason": "leakage: same pixels as a test film, kept out of training"}
            )
            leaked += 1
        elif pixels in seen:
            skipped.append({"path": str(film.path), "reason": f"duplicate: same pixels as {seen[pixels]}"})
        else:
            seen[pixels] = str(film.path)
            kept.append(film)
    order = {film.path: index for index, film in enumerate(films)}
    return sorted(kept, key=lambda film: order[film.path]), skipped, leaked


def _require_classes(
    films: Sequence[FilmRecord], classes: Classes, split_root: Path, skipped_csv: Path, test_drawn: bool
) -> None:
    present = Counter((film.source_split, film.label) for film in films)
    for split in REQUIRED_SPLITS[:1] if test_drawn else REQUIRED_SPLITS:
        for label in classes.names:
            if not present[(split, label)]:
                folder = split_root / label if test_drawn else split_root / split / label
                items, expected = classes.words.items, ".jpeg films" if classes.chest_xray else "images"
                raise DataLayoutError(
                    f"--data {folder}: no usable {items} (expected {expected} of class {label}; "
                    f"any skipped files and their reasons are in {skipped_csv})"
                )


def _summary(
    records: Sequence[SplitRecord], skipped: Sequence[dict[str, str]], classes: Classes, **extra: Any
) -> DataSummary:
    by_split = Counter((record.split, record.film.label) for record in records)
    by_source = Counter((record.film.source_split, record.film.label) for record in records)
    data_hash = hashlib.sha1("".join(sorted(record.sha1 for record in records)).encode()).hexdigest()
    reasons = Counter(row["reason"].split(":")[0] for row in skipped)
    return DataSummary(
        counts={split: {label: by_split[(split, label)] for label in classes.names} for split in SPLITS},
        patients={split: len({r.film.patient_id for r in records if r.split == split}) for split in SPLITS},
        source_counts={split: {label: by_source[(split, label)] for label in classes.names} for split in SPLITS},
        classes=classes.names,
        data_hash=data_hash,
        skipped=len(skipped),
        skipped_by_reason=dict(sorted(reasons.items())),
        **extra,
    )


def prepare_data(data_path: Path, cfg: StudyConfig, cache_dir: Path, paths: ResultsPaths) -> DataSummary:
    """Write data/split.csv, skipped.csv and summary.json; every film is opened once, into the decode cache."""
    split_root = find_split_root(data_path)
    listing = list_films(split_root, cfg.data.group_pattern)
    classes = resolve_classes(listing.class_names, cfg.data.positive_class, split_root)
    logger.info("found %d films under %s; validating and decoding each once", len(listing.films), split_root)
    film_paths = [str(film.path) for film in listing.films]
    decoded = decoded_arrays(film_paths, cfg.space.resolutions, cfg.data.aspect, cache_dir, "films")
    colour_files = sum(entry.colour for entry in decoded.entries)
    mostly_colour = colour_files > len(decoded.entries) / 2
    channels = 3 if cfg.data.color == "rgb" or (cfg.data.color == "auto" and mostly_colour) else 1
    if channels == 3:
        logger.info("%d of %d files hold colour: decoding them as RGB (data.color = %s)", colour_files,
                    len(decoded.entries), cfg.data.color)  # fmt: skip
        decoded = decoded_arrays(film_paths, cfg.space.resolutions, cfg.data.aspect, cache_dir, "films", channels)
    entries = {entry.path: entry for entry in decoded.entries}
    skipped = [{"path": path, "reason": reason} for path, reason in (*listing.unreadable, *decoded.failures)]
    films, duplicates, leaked = _drop_duplicates([f for f in listing.films if str(f.path) in entries], entries)
    skipped += duplicates
    overlap = find_overlap(films, cfg.data.group_pattern)
    if cfg.data.test_patient_ids == "shared":
        films, shared_patient_films = keep_out_shared_patients(films, overlap, cfg.data.group_pattern)
        skipped += shared_patient_films
    write_csv(paths.skipped_csv, SKIPPED_COLUMNS, skipped)
    _require_classes(films, classes, split_root, paths.skipped_csv, listing.test_drawn)
    sha1s = [entries[str(film.path)].sha1 for film in films]
    test_fraction = cfg.data.test_fraction if listing.test_drawn else None
    records = assign_splits(films, sha1s, cfg.data.val_fraction, cfg.data.split_seed, test_fraction)
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
        skipped,
        classes,
        duplicates_removed=len(duplicates),
        test_leakage_duplicates=leaked,
        files_without_patient_id=listing.without_patient,
        files_with_group_id=len(listing.films) - listing.without_patient,
        group_pattern=cfg.data.group_pattern,
        test_drawn=listing.test_drawn,
        test_share=sum(r.split == "test" for r in records) / max(len(records), 1) if listing.test_drawn else None,
        layout=listing.layout,
        test_patient_ids=cfg.data.test_patient_ids,
        shared_test_ids=len(overlap.shared_keys),
        shared_test_id_examples=overlap.examples,
        shared_id_pool_films=overlap.pool_films,
        val_fraction=cfg.data.val_fraction,
        val_share=sum(r.split == "val" for r in records) / max(sum(r.split != "test" for r in records), 1),
        seed=cfg.data.split_seed,
        data_root=str(split_root),
        channels=channels,
        colour_files=colour_files,
    )
    summary.write(paths.data_summary)
    _log_summary(summary, paths)
    return summary


def _log_summary(summary: DataSummary, paths: ResultsPaths) -> None:
    negative, positive = summary.classes
    for split in SPLITS:
        counts = summary.counts[split]
        logger.info(
            "%-5s %5d %s %5d %s  %4d %s", split, counts[negative], negative, counts[positive], positive,
            summary.patients[split], summary.class_pair.words.groups,
        )  # fmt: skip
    logger.info(
        "skipped %d files %s, of which %d duplicates and %d train/test leaks (%s)",
        summary.skipped, summary.skipped_by_reason or "", summary.duplicates_removed,
        summary.test_leakage_duplicates, paths.skipped_csv,
    )  # fmt: skip
    if summary.shared_test_ids:
        shared = summary.test_patient_ids == "shared"
        fate = "kept out of training" if shared else "kept (test/ assumed to number afresh)"
        logger.warning(
            "%d test patient ids also occur in train+val (e.g. %s); their %s train/val films are %s "
            "(data.test_patient_ids)",
            summary.shared_test_ids, ", ".join(summary.shared_test_id_examples), summary.shared_id_pool_films, fate,
        )  # fmt: skip
    if summary.files_without_patient_id:
        logger.info("%d file names carry no patient id: each is its own patient", summary.files_without_patient_id)

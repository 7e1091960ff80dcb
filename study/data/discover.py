"""Find the Kaggle layout under a --data path and list its films with labels and patient ids.

Patient ids come from the file names and are keyed by the source folder: train/ and val/ share one
namespace (val was carved out of train), test/ has its own. Whether test's numbers name other children than
train's is not settled by the names, so the data stage counts the ids both use (`data.test_patient_ids`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from study.errors import ConfigError, DataLayoutError
from study.results.classes import CHEST_XRAY_NAMES, Classes

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
EXPECTED_LAYOUT = (
    "chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg (val/ optional; any two class folders), or one "
    "folder holding just the two class folders (the tool then draws the test set)"
)
# The layouts the data stage accepts: Kaggle's three folders, train/ and test/ alone (validation is drawn from
# train/ either way), or one folder of the class folders, from which the test set is drawn too.
LAYOUT_SPLITS: dict[str, tuple[str, ...]] = {"kaggle": ("train", "val", "test"), "train_test": ("train", "test")}
SINGLE = "single"

_PNEUMONIA_PATTERN = re.compile(r"^(person\d+)_(?:bacteria|virus)_\d+$", re.IGNORECASE)
_NORMAL_PATTERN = re.compile(r"^((?:NORMAL2-)?IM-\d+)(?:-\d+)+$", re.IGNORECASE)


@dataclass(frozen=True)
class FilmRecord:
    """One film as found on disk: where it is, its class, its source folder and its patient."""

    path: Path
    label: str
    source_split: str
    patient_id: str


def patient_key_from_name(file_name: str, group_pattern: str = "chest_xray") -> str | None:
    """The group (patient) a file name names, under `data.group_pattern`; None when it names none.

    `chest_xray` reads Kaggle's names (`person12_virus_3.jpeg` -> `person12`, `IM-0115-0001.jpeg` -> `IM-0115`);
    `none` groups nothing (each file is its own group); anything else is a regular expression searched in the
    name without its suffix, whose one capture group is the group."""
    stem = Path(file_name).stem
    if group_pattern == "none":
        return None
    if group_pattern == "chest_xray":
        match = _PNEUMONIA_PATTERN.match(stem) or _NORMAL_PATTERN.match(stem)
    else:
        match = re.search(group_pattern, stem)
    return match.group(1) if match and match.group(1) else None


def patient_id_from_name(file_name: str, source_split: str, group_pattern: str = "chest_xray") -> str | None:
    """`person12_virus_3.jpeg` -> `train/person12`; None when the name carries no patient.

    Kaggle's val/ folder was carved out of the training set, so val and train share one namespace;
    test/ keeps its own, and the data stage decides what an id both namespaces use means."""
    key = patient_key_from_name(file_name, group_pattern)
    namespace = "test" if source_split == "test" else "train"
    return f"{namespace}/{key}" if key is not None else None


SEARCH_DEPTH = 3
IGNORED_FOLDERS = ("__MACOSX",)
SPLITS_ON_DISK = ("train", "val", "test")


@dataclass(frozen=True)
class Listing:
    """The films under a split root, the entries that look like films but cannot be read, and id-less names."""

    films: tuple[FilmRecord, ...]
    unreadable: tuple[tuple[str, str], ...]
    without_patient: int
    layout: str = "kaggle"  # kaggle | train_test | single (no test folder: the data stage draws the test set)
    class_names: tuple[str, ...] = CHEST_XRAY_NAMES  # the two class folders, spelled as in the first split, sorted

    @property
    def test_drawn(self) -> bool:
        return self.layout == SINGLE


def _subfolders(folder: Path) -> list[Path]:
    """The folders in `folder` that could be classes or splits: no dot folders, no __MACOSX."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [e for e in entries if e.is_dir() and not e.name.startswith(".") and e.name not in IGNORED_FOLDERS]


def layout_of(folder: Path) -> str | None:
    """Which accepted layout `folder` holds, or None.

    A folder of classes holds two or more folders, none of them a split and none holding folders of its own:
    so a folder that merely holds a dataset beside other things is not read as one. NORMAL/ and PNEUMONIA/ side
    by side are one whatever they hold, as they always were."""
    if all((folder / split).is_dir() for split in ("train", "test")):
        return "kaggle" if (folder / "val").is_dir() else "train_test"
    classes = _subfolders(folder)
    if {c.name.upper() for c in classes} >= set(CHEST_XRAY_NAMES):
        return SINGLE
    if len(classes) >= 2 and not any(c.name in SPLITS_ON_DISK or _subfolders(c) for c in classes):
        return SINGLE
    return None


def _has_splits(folder: Path) -> bool:
    return layout_of(folder) is not None


def _candidate_roots(data_path: Path) -> list[Path]:
    """Folders holding train/ val/ test/ within a few levels, skipping __MACOSX, dot folders and symlinks
    (no loops), and dropping a copy nested inside another candidate (Kaggle's chest_xray/chest_xray)."""
    found: list[Path] = []
    for folder, subfolders, _ in os.walk(data_path, followlinks=False):
        depth = len(Path(folder).relative_to(data_path).parts)
        subfolders[:] = sorted(
            name
            for name in subfolders
            if name not in IGNORED_FOLDERS and not name.startswith(".") and depth < SEARCH_DEPTH
        )
        if _has_splits(Path(folder)):
            found.append(Path(folder))
    return [root for root in found if not any(other in root.parents for other in found)]


def _refuse_one_split_of_a_layout(folder: Path) -> None:
    """`--data chest_xray/train` holds the two class folders too, but taking it as one folder of classes would
    draw a test set from Kaggle's training films and ignore the real test/ beside it."""
    one_split = layout_of(folder) == SINGLE and folder.name.lower() in ("train", "val", "test")
    if one_split and layout_of(folder.parent) in LAYOUT_SPLITS:
        raise DataLayoutError(
            f"--data {folder}: is the {folder.name}/ folder of the dataset at {folder.parent}; pass that folder"
        )


def find_split_root(data_path: Path) -> Path:
    """The folder holding train/ val/ test/: `data_path/chest_xray`, `data_path`, or the one such folder below."""
    if not data_path.exists():
        raise DataLayoutError(f"--data {data_path}: no such folder (expected {EXPECTED_LAYOUT})")
    if not data_path.is_dir():
        raise DataLayoutError(f"--data {data_path}: is a file, not a folder (expected {EXPECTED_LAYOUT})")
    for candidate in (data_path / "chest_xray", data_path):
        if _has_splits(candidate):
            _refuse_one_split_of_a_layout(candidate)
            return candidate
    candidates = _candidate_roots(data_path)
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        listed = ", ".join(str(candidate) for candidate in candidates)
        raise DataLayoutError(
            f"--data {data_path}: ambiguous, {len(candidates)} dataset copies found ({listed}); pass one"
        )
    entries = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in data_path.iterdir())[:12]
    found = ", ".join(entries) if entries else "nothing"
    folders = _subfolders(data_path)
    if len(folders) == 1 and _holds_images(folders[0]):
        raise DataLayoutError(
            f"--data {data_path}: one class folder found ({folders[0].name}/); a study compares two classes "
            f"(expected {EXPECTED_LAYOUT})"
        )
    raise DataLayoutError(
        f"--data {data_path}: no train/ and test/ folders and no class folders found, found {found} "
        f"(expected {EXPECTED_LAYOUT})"
    )


def _holds_images(folder: Path) -> bool:
    try:
        return any(entry.suffix.lower() in IMAGE_SUFFIXES for entry in folder.iterdir())
    except OSError:
        return False


def _two_class_folders(folder: Path) -> list[str]:
    """The class folders of a split (or of a folder of classes): exactly two, or refused naming what is there."""
    found = [entry.name for entry in _subfolders(folder)]
    if len(found) > 2:
        chest = [name for name in found if name.upper() in CHEST_XRAY_NAMES]
        others = [name for name in found if name not in chest] if len(chest) == 2 else ["all but two"]
        raise DataLayoutError(
            f"--data {folder}: class folders {', '.join(found)}; expected exactly two (a study compares two "
            f"classes: move {', '.join(others)} out)"
        )
    return found


def _match_classes(split_folder: Path, class_names: tuple[str, ...], first_split: str) -> dict[str, str]:
    """Each class of the first split -> its folder's name in `split_folder`, matched ignoring case."""
    found = {name.casefold(): name for name in _two_class_folders(split_folder)}
    expected = {name.casefold() for name in class_names}
    if set(found) - expected:
        raise DataLayoutError(
            f"--data {split_folder}: class folders {', '.join(sorted(found.values()))} differ from "
            f"{first_split}/'s {', '.join(class_names)}; expected the same two names in every split (case ignored)"
        )
    missing = [name for name in class_names if name.casefold() not in found]
    if missing:
        raise DataLayoutError(
            f"--data {split_folder}: missing folder {split_folder / missing[0]} (expected {EXPECTED_LAYOUT})"
        )
    return {name: found[name.casefold()] for name in class_names}


def resolve_classes(class_names: tuple[str, ...], positive_class: str, split_root: Path) -> Classes:
    """Which folder is the positive class: `data.positive_class` (case ignored), or PNEUMONIA for Kaggle's pair."""
    by_case = {name.casefold(): name for name in class_names}
    if positive_class == "auto":
        if not Classes(*class_names).chest_xray:
            raise ConfigError(
                f"--data {split_root}: classes {' and '.join(class_names)}; name the positive one (the class whose "
                f"probability the model gives), e.g. --set data.positive_class={class_names[-1]}"
            )
        positive_class = CHEST_XRAY_NAMES[1]
    positive = by_case.get(positive_class.casefold())
    if positive is None:
        raise ConfigError(
            f"config key data.positive_class: {positive_class!r} is not a class folder of {split_root}; "
            f"expected {' or '.join(class_names)}"
        )
    negative = next(name for name in class_names if name != positive)
    return Classes(negative, positive)


def list_films(split_root: Path, group_pattern: str = "chest_xray") -> Listing:
    """Every film under train/ val/ test/ x the two class folders, sorted.

    Dotfiles and macOS `._*` resource forks are not films. An entry with an image suffix that is not a
    readable regular file (broken link, link loop, folder) is listed as unreadable. A film without a
    patient id in its name is its own patient, so it can never leak across the validation split. Labels are
    spelled as the first split spells its folders.
    """
    layout = layout_of(split_root) or "kaggle"
    folders = {"train": split_root} if layout == SINGLE else {s: split_root / s for s in LAYOUT_SPLITS[layout]}
    films: list[FilmRecord] = []
    unreadable: list[tuple[str, str]] = []
    without_patient = 0
    first_split = next(iter(folders))
    if not folders[first_split].is_dir():
        raise DataLayoutError(
            f"--data {split_root}: missing folder {folders[first_split]} (expected {EXPECTED_LAYOUT})"
        )
    class_names = tuple(sorted(_two_class_folders(folders[first_split]), key=str.casefold))
    if len(class_names) < 2:
        found = ", ".join(f"{name}/" for name in class_names) or "no folders"
        raise DataLayoutError(
            f"--data {folders[first_split]}: one class folder found ({found}); a study compares two classes "
            f"(expected {EXPECTED_LAYOUT})"
        )
    for source_split, split_folder in folders.items():
        if not split_folder.is_dir():
            raise DataLayoutError(f"--data {split_root}: missing folder {split_folder} (expected {EXPECTED_LAYOUT})")
        for label, folder_name in _match_classes(split_folder, class_names, first_split).items():
            folder = split_folder / folder_name
            for path in sorted(folder.iterdir()):
                if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                if not path.is_file():
                    unreadable.append((str(path), "unreadable: not a regular file (folder, broken link or link loop)"))
                    continue
                patient = patient_id_from_name(path.name, source_split, group_pattern)
                if patient is None:
                    without_patient += 1
                    patient = f"{source_split}/{path.name}"
                films.append(FilmRecord(path, label, source_split, patient))
    return Listing(tuple(films), tuple(unreadable), without_patient, layout, class_names)

"""Discovery, patient ids, the grouped split and the decode-once cache."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from study.config import builtin_config_path, config_from_json, load_config
from study.data import cache as cache_module
from study.data.cache import decoded_arrays, fit_square, square_to_original
from study.data.discover import FilmRecord, find_split_root, list_films, patient_id_from_name, patient_key_from_name
from study.data.prepare import prepare_data
from study.data.readers import dataset_arrays, load_training_arrays
from study.data.relocate import follow_moved_data
from study.data.split import assign_splits
from study.data.synthetic import write_demo_dataset
from study.errors import DataLayoutError, UserInputError
from study.report.info import load_report_data
from study.report.render import render_html
from study.results import ResultsPaths, read_csv


def _write_layout(root: Path, names: dict[tuple[str, str], list[str]]) -> None:
    rng = np.random.default_rng(0)
    for (split, label), files in names.items():
        folder = root / "chest_xray" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for name in files:
            Image.fromarray(rng.integers(0, 255, (80, 100), dtype=np.uint8), mode="L").save(folder / name)


@pytest.mark.parametrize(
    ("name", "split", "expected"),
    [
        ("person12_virus_3.jpeg", "train", "train/person12"),
        ("person1_bacteria_1.jpeg", "test", "test/person1"),
        ("IM-0115-0001.jpeg", "train", "train/IM-0115"),
        ("NORMAL2-IM-0027-0001.jpeg", "val", "train/NORMAL2-IM-0027"),
        ("IM-0545-0001-0002.jpeg", "train", "train/IM-0545"),
        ("NORMAL2-IM-1345-0001-0002.jpeg", "train", "train/NORMAL2-IM-1345"),
        ("IM-0011-0001-0002.jpeg", "test", "test/IM-0011"),
        ("person1_virus_8.jpeg", "val", "train/person1"),
        ("scan.jpeg", "train", None),
    ],
)
def test_patient_ids_are_keyed_by_source_folder(name: str, split: str, expected: str | None) -> None:
    assert patient_id_from_name(name, split) == expected


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("^(.+)_\\d+$", "cat07_3.png", "cat07"),
        ("^(.+)_\\d+$", "no-number.png", None),
        ("none", "person12_virus_3.jpeg", None),
        ("chest_xray", "person12_virus_3.jpeg", "person12"),
    ],
)
def test_the_group_comes_from_the_configured_pattern(pattern: str, name: str, expected: str | None) -> None:
    assert patient_key_from_name(name, pattern) == expected


@pytest.mark.parametrize("pattern", ["^(g\\d+)_\\d+$", "none"])
def test_a_custom_group_pattern_keeps_groups_whole_and_none_groups_nothing(tmp_path: Path, pattern: str) -> None:
    """Films named <group>_<n> split by group under a pattern; with "none" each file is its own group, and the
    report says near-duplicates may then leak across the split."""
    starts = {("train", "NORMAL"): 0, ("train", "PNEUMONIA"): 10, ("val", "NORMAL"): 20, ("val", "PNEUMONIA"): 30,
              ("test", "NORMAL"): 40, ("test", "PNEUMONIA"): 50}  # fmt: skip
    names = {
        folder: [f"g{group}_{shot}.jpeg" for group in range(start, start + 6) for shot in range(2)]
        for folder, start in starts.items()
    }
    names[("train", "NORMAL")].append("scan.jpeg")
    _write_layout(tmp_path, names)
    cfg = load_config(builtin_config_path("smoke"), [f"data.group_pattern={pattern}"])
    paths = ResultsPaths(tmp_path / "results")
    summary = prepare_data(tmp_path, cfg, tmp_path / "cache", paths)
    rows = [row for row in read_csv(paths.split_csv) if row["split"] != "test"]
    sides: dict[str, set[str]] = {}
    for row in rows:
        sides.setdefault(Path(row["path"]).name.split("_")[0], set()).add(row["split"])
    html = render_html(load_report_data(paths.root), {})
    grouping = html[html.index('id="grouping"') :].split("</p>")[0]
    if pattern == "none":
        assert summary.files_without_patient_id == sum(len(files) for files in names.values())
        assert "cannot be excluded" in grouping
    else:
        assert summary.files_without_patient_id == 1, "scan.jpeg names no group: its own"
        assert all(len(splits) == 1 for splits in sides.values()), "a group never straddles train and val"
        assert {row["patient_id"] for row in rows if "g1_" in row["path"]} == {"train/g1"}
        assert pattern in grouping


def test_discovery_accepts_both_roots_and_skips_dotfiles(tmp_path: Path) -> None:
    _write_layout(
        tmp_path,
        {
            ("train", "NORMAL"): ["IM-0001-0001.jpeg"], ("train", "PNEUMONIA"): ["person1_virus_1.jpeg"],
            ("val", "NORMAL"): ["IM-0002-0001.jpeg"], ("val", "PNEUMONIA"): ["person2_virus_1.jpeg"],
            ("test", "NORMAL"): ["IM-0001-0001.jpeg"], ("test", "PNEUMONIA"): ["person1_virus_1.jpeg"],
        },
    )  # fmt: skip
    (tmp_path / "chest_xray" / "train" / "NORMAL" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "chest_xray" / "train" / "NORMAL" / "._IM-0001-0001.jpeg").write_bytes(b"junk")
    assert find_split_root(tmp_path) == find_split_root(tmp_path / "chest_xray") == tmp_path / "chest_xray"
    listing = list_films(tmp_path / "chest_xray")
    assert len(listing.films) == 6 and listing.without_patient == 0 and not listing.unreadable
    assert {film.patient_id for film in listing.films if film.source_split == "test"} == {
        "test/IM-0001",
        "test/person1",
    }


_SHARED_LAYOUT = {
    ("train", "NORMAL"): ["IM-0001-0001.jpeg", "IM-0001-0002.jpeg", "IM-0003-0001.jpeg", "IM-0004-0001.jpeg",
                          "NORMAL2-IM-0005-0001.jpeg"],
    ("train", "PNEUMONIA"): ["person1_bacteria_1.jpeg", "person1_bacteria_2.jpeg", "person2_virus_3.jpeg",
                             "person5_virus_9.jpeg", "person6_bacteria_1.jpeg", "scan.jpeg"],
    ("val", "NORMAL"): ["IM-0007-0001.jpeg"], ("val", "PNEUMONIA"): ["person10_virus_1.jpeg"],
    ("test", "NORMAL"): ["IM-0001-0003.jpeg", "NORMAL2-IM-0005-0002.jpeg", "IM-0100-0001.jpeg"],
    ("test", "PNEUMONIA"): ["person1_virus_6.jpeg", "person10_bacteria_2.jpeg", "person100_bacteria_1.jpeg",
                            "scan.jpeg"],
}  # fmt: skip


@pytest.mark.parametrize("reading", ["shared", "separate"])
def test_patient_ids_that_test_shares_with_train_are_counted_and_kept_out_when_shared(
    tmp_path: Path, reading: str
) -> None:
    """Whether test/ numbers its children afresh is not settled by Kaggle's names: the count is shown either
    way, and under "shared" no child is both trained on and tested on."""
    _write_layout(tmp_path, _SHARED_LAYOUT)
    key_pattern = re.compile(r"^(person\d+)_|^((?:NORMAL2-)?IM-\d+)-")

    def key(name: str) -> str | None:
        match = key_pattern.match(name)
        return (match.group(1) or match.group(2)) if match else None

    test_keys = {key(name) for (split, _), names in _SHARED_LAYOUT.items() if split == "test" for name in names}
    pool_names = [(split, label, name) for (split, label), names in _SHARED_LAYOUT.items() if split != "test"
                  for name in names]  # fmt: skip
    shared = (test_keys - {None}) & {key(name) for _, _, name in pool_names}
    shared_pool_paths = {
        str(tmp_path / "chest_xray" / split / label / name) for split, label, name in pool_names if key(name) in shared
    }
    assert shared == {"IM-0001", "NORMAL2-IM-0005", "person1", "person10"}  # the fixture holds what it should

    cfg = load_config(builtin_config_path("smoke"), [f"data.test_patient_ids={reading}"])
    paths = ResultsPaths(tmp_path / "results")
    summary = prepare_data(tmp_path, cfg, tmp_path / "cache", paths)
    assert summary.test_patient_ids == reading
    assert summary.shared_test_ids == len(shared) and set(summary.shared_test_id_examples) <= shared
    assert summary.shared_id_pool_films == len(shared_pool_paths)
    in_split = {row["path"] for row in read_csv(paths.split_csv)}
    skipped = {row["path"]: row["reason"] for row in read_csv(paths.skipped_csv)}
    if reading == "shared":
        assert not shared_pool_paths & in_split
        assert all(skipped[path].startswith("shared patient") for path in shared_pool_paths)
    else:
        assert shared_pool_paths <= in_split and not shared_pool_paths & set(skipped)
    html = render_html(load_report_data(paths.root), {})
    sentence = html[html.index('id="test-patients"') :].split("</p>")[0]
    assert f'id="shared-test-ids">{len(shared)}<' in sentence and reading in sentence


def test_a_config_saved_before_test_patient_ids_reads_as_the_study_it_was(tmp_path: Path) -> None:
    """Such a study read test ids as other children; it resumes as that study, not silently as another."""
    cfg = load_config(builtin_config_path("smoke"))
    saved = cfg.to_dict()
    del saved["data"]["test_patient_ids"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(saved))
    assert config_from_json(path.read_text(), path).data.test_patient_ids == "separate"


def test_wrong_layout_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(DataLayoutError, match=str(tmp_path)):
        find_split_root(tmp_path)


def _pool(n_patients: int, seed: int) -> list[FilmRecord]:
    rng = np.random.default_rng(seed)
    films = []
    for patient in range(n_patients):
        label = "PNEUMONIA" if rng.random() < 0.74 else "NORMAL"
        for index in range(int(rng.integers(1, 5))):
            films.append(FilmRecord(Path(f"p{patient}_{index}.jpeg"), label, "train", f"train/p{patient}"))
    films += [FilmRecord(Path(f"t{i}.jpeg"), "NORMAL", "test", f"test/p{i}") for i in range(10)]
    return films


def test_split_is_grouped_stratified_and_seeded() -> None:
    films = _pool(400, seed=0)
    hashes = [str(i) for i in range(len(films))]
    records = assign_splits(films, hashes, val_fraction=0.2, seed=1)
    by_patient: dict[str, set[str]] = {}
    for record in records:
        by_patient.setdefault(record.film.patient_id, set()).add(record.split)
    assert all(len(splits) == 1 for splits in by_patient.values())
    assert all(record.split == "test" for record in records if record.film.source_split == "test")
    pool_share = np.mean([r.film.label == "PNEUMONIA" for r in records if r.split != "test"])
    for split in ("train", "val"):
        share = np.mean([r.film.label == "PNEUMONIA" for r in records if r.split == split])
        assert abs(share - pool_share) <= 0.02
    val_share = np.mean([r.split == "val" for r in records if r.split != "test"])
    assert 0.15 <= val_share <= 0.25
    again = assign_splits(films, hashes, val_fraction=0.2, seed=1)
    other = assign_splits(films, hashes, val_fraction=0.2, seed=2)
    assert [r.split for r in again] == [r.split for r in records]
    assert [r.split for r in other] != [r.split for r in records]


def test_cache_decodes_each_film_once_and_records_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for index in range(5):
        path = tmp_path / f"f{index}.jpeg"
        Image.fromarray(rng.integers(0, 255, (120, 90), dtype=np.uint8), mode="L").save(path)
        paths.append(str(path))
    (tmp_path / "broken.jpeg").write_bytes(b"\xff\xd8 not a jpeg")
    paths.insert(2, str(tmp_path / "broken.jpeg"))
    opened: list[str] = []
    real_open = cache_module.open_film
    monkeypatch.setattr(
        cache_module, "open_film", lambda path, side=None: opened.append(str(path)) or real_open(path, side)
    )
    first = decoded_arrays(paths, [32, 48], "squash", tmp_path / "cache", "test films")
    assert len(opened) == 6, "one open per file for both resolutions"
    assert first.by_resolution[32].shape == (6, 32, 32, 1) and first.by_resolution[48].dtype == np.uint8
    assert [path for path, _ in first.failures] == [str(tmp_path / "broken.jpeg")]
    assert [entry.path for entry in first.entries] == [path for path in paths if "broken" not in path]
    again = decoded_arrays(paths, [48], "squash", tmp_path / "cache", "test films")
    assert len(opened) == 6, "a second call reads the cache and opens nothing"
    kept = [entry.path for entry in first.entries]
    assert np.array_equal(again.take(48, kept[::-1]), first.take(48, kept)[::-1])
    film = np.asarray(Image.open(paths[0]).resize((32, 32), Image.Resampling.LANCZOS))
    assert np.array_equal(first.take(32, [paths[0]])[0, ..., 0], film)
    Path(paths[0]).write_bytes(Path(paths[1]).read_bytes() + b"\x00")  # size changes: a new key, decoded anew
    decoded_arrays(paths, [32], "squash", tmp_path / "cache", "test films")
    assert len(opened) == 12


@pytest.mark.parametrize("aspect", ["squash", "pad", "crop"])
def test_square_maps_return_to_the_films_grid(aspect: str) -> None:
    """A map that marks the film's left half comes back on the left half of the original film."""
    film = Image.fromarray(np.tile(np.r_[np.full(100, 255), np.zeros(100)].astype(np.uint8), (120, 1)), mode="L")
    square = np.asarray(fit_square(film, 64, aspect), dtype=np.float32) / 255.0
    back = square_to_original(square, film.width, film.height, aspect)
    assert back.shape == (120, 200)
    assert back[:, 50:90].mean() > 0.8 and back[:, 110:150].mean() < 0.2  # inside what crop keeps, too


def test_each_film_is_opened_once_per_study_whatever_the_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_demo_dataset(tmp_path / "demo", {"train": 60, "val": 16, "test": 20}, normal_share=0.4, seed=0)
    cfg = load_config(builtin_config_path("smoke"), ["space.resolutions=[48, 64]"])
    opened: list[str] = []
    real_open = cache_module.open_film
    monkeypatch.setattr(
        cache_module, "open_film", lambda path, side=None: opened.append(str(path)) or real_open(path, side)
    )
    paths = ResultsPaths(tmp_path / "results")
    prepare_data(tmp_path / "demo", cfg, tmp_path / "cache", paths)
    for _ in range(3):  # the search, a resume, the ablation: each loads the arrays again
        arrays = load_training_arrays(paths, [48, 64], "squash", tmp_path / "cache")
    test_paths = [row["path"] for row in read_csv(paths.split_csv) if row["split"] == "test"]
    dataset_arrays(paths, [64], "squash", tmp_path / "cache").take(64, test_paths)  # evaluate and Grad-CAM
    assert len(opened) == len(set(opened)) == 96
    assert arrays[64].x_train.shape[1:] == (64, 64, 1) and len(arrays[48].y_val) == len(arrays[64].x_val)


def test_a_new_size_is_added_to_the_cache_by_decoding_only_the_good_films(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    paths = []
    for index in range(4):
        path = tmp_path / f"f{index}.jpeg"
        Image.fromarray(rng.integers(0, 255, (100, 140), dtype=np.uint8), mode="L").save(path)
        paths.append(str(path))
    (tmp_path / "empty.jpeg").write_bytes(b"")
    paths.insert(1, str(tmp_path / "empty.jpeg"))
    first = decoded_arrays(paths, [32], "pad", tmp_path / "cache", "films")
    grown = decoded_arrays(paths, [32, 40], "pad", tmp_path / "cache", "films")
    fresh = decoded_arrays(paths, [40], "pad", tmp_path / "fresh", "films")
    kept = [entry.path for entry in first.entries]
    assert len(kept) == 4 and grown.failures == first.failures
    assert np.array_equal(grown.take(40, kept), fresh.take(40, kept))
    assert np.array_equal(grown.take(32, kept), first.take(32, kept))


def test_the_same_films_at_another_path_continue_the_study_and_other_films_are_refused(tmp_path: Path) -> None:
    """On Colab the dataset's folder may differ from one session to the next: a study is its films' content."""
    write_demo_dataset(tmp_path / "first", {"train": 40, "val": 16, "test": 16}, normal_share=0.4, seed=0)
    cfg = load_config(builtin_config_path("smoke"))
    paths = ResultsPaths(tmp_path / "results")
    prepare_data(tmp_path / "first", cfg, tmp_path / "cache", paths)
    before = read_csv(paths.split_csv)
    assert not follow_moved_data(tmp_path / "first", cfg, tmp_path / "cache", paths)

    shutil.copytree(tmp_path / "first", tmp_path / "second")
    assert follow_moved_data(tmp_path / "second", cfg, tmp_path / "cache", paths)
    after = read_csv(paths.split_csv)
    assert [(row["sha1"], row["split"]) for row in after] == [(row["sha1"], row["split"]) for row in before]
    assert all(row["path"].startswith(str(tmp_path / "second")) for row in after)
    load_training_arrays(paths, [64], "squash", tmp_path / "cache")  # the new paths are the ones read

    write_demo_dataset(tmp_path / "other", {"train": 40, "val": 16, "test": 16}, normal_share=0.4, seed=1)
    with pytest.raises(UserInputError, match=r"--data .*other: holds other films than the study"):
        follow_moved_data(tmp_path / "other", cfg, tmp_path / "cache", paths)
    assert read_csv(paths.split_csv) == after, "a refused folder changes nothing"


def test_one_folder_of_class_folders_gets_its_test_set_drawn_by_patient(tmp_path: Path) -> None:
    """Without a test folder, the tool draws the test set once, grouped and stratified like validation, and the
    report says so; train/ and test/ alone need no val/."""
    names = {
        label: [f"{prefix}{patient}_{shot}.jpeg" for patient in range(30) for shot in range(2)]
        for label, prefix in (("NORMAL", "n"), ("PNEUMONIA", "p"))
    }
    for offset, (label, files) in enumerate(names.items()):
        folder = tmp_path / "single" / label
        folder.mkdir(parents=True)
        for index, name in enumerate(files):
            pixels = np.random.default_rng(1000 * offset + index).integers(0, 255, (80, 100), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / name)
    cfg = load_config(builtin_config_path("smoke"), [r"data.group_pattern=^(.+)_\d+$", "data.test_fraction=0.25"])
    paths = ResultsPaths(tmp_path / "results")
    summary = prepare_data(tmp_path / "single", cfg, tmp_path / "cache", paths)
    assert summary.test_drawn
    rows = read_csv(paths.split_csv)
    splits_of: dict[str, set[str]] = {}
    for row in rows:
        splits_of.setdefault(row["patient_id"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in splits_of.values()), "a patient never straddles two splits"
    test_patients = [patient for patient, splits in splits_of.items() if splits == {"test"}]
    assert 0.2 <= len(test_patients) / len(splits_of) <= 0.3
    assert all(summary.counts["test"][label] > 0 for label in ("NORMAL", "PNEUMONIA"))
    again = prepare_data(tmp_path / "single", cfg, tmp_path / "cache", ResultsPaths(tmp_path / "again"))
    assert again.counts == summary.counts, "the draw is fixed by the seed"
    html = render_html(load_report_data(paths.root), {})
    assert 'id="test-drawn"' in html


def test_train_and_test_folders_alone_are_a_layout(tmp_path: Path) -> None:
    _write_layout(
        tmp_path,
        {(split, label): [f"person{index}_virus_1.jpeg" if label == "PNEUMONIA" else f"IM-{index:04d}-0001.jpeg"
                          for index in range(start, start + 6)]
         for split, start in (("train", 0), ("test", 100)) for label in ("NORMAL", "PNEUMONIA")},
    )  # fmt: skip
    cfg = load_config(builtin_config_path("smoke"))
    summary = prepare_data(tmp_path, cfg, tmp_path / "cache", ResultsPaths(tmp_path / "results"))
    assert not summary.test_drawn and summary.counts["test"] == {"NORMAL": 6, "PNEUMONIA": 6}
    assert summary.counts["val"]["NORMAL"] > 0 and summary.counts["val"]["PNEUMONIA"] > 0


@pytest.mark.parametrize("where", ["single", "train"])
def test_a_third_class_folder_is_refused_by_name(tmp_path: Path, where: str) -> None:
    """A folder of another class would be left out without a word: refused, naming the folders found."""
    if where == "single":
        for label in ("NORMAL", "PNEUMONIA", "COVID"):
            (tmp_path / "data" / label).mkdir(parents=True)
        data = tmp_path / "data"
    else:
        folders = [(split, label) for split in ("train", "test") for label in ("NORMAL", "PNEUMONIA")]
        _write_layout(tmp_path, {folder: [] for folder in folders})
        (tmp_path / "chest_xray" / "train" / "COVID").mkdir()
        data = tmp_path
    with pytest.raises(DataLayoutError, match="class folders COVID, NORMAL, PNEUMONIA") as refused:
        list_films(find_split_root(data))
    assert "COVID out" in str(refused.value)


def test_one_split_of_a_dataset_is_refused_for_its_parent(tmp_path: Path) -> None:
    """--data chest_xray/train holds the class folders too; read as one folder, it would draw a test set from the
    training films and leave the real test/ folder out."""
    _write_layout(tmp_path, {(split, label): [] for split in ("train", "test") for label in ("NORMAL", "PNEUMONIA")})
    with pytest.raises(DataLayoutError, match="pass that folder") as refused:
        find_split_root(tmp_path / "chest_xray" / "train")
    assert str(tmp_path / "chest_xray") in str(refused.value)

"""Every kind of bad input ends in a clear exit-2 message naming the path, or in the file skipped and listed."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from study.config import builtin_config_path, load_config
from study.data.prepare import prepare_data
from study.data.readers import dataset_arrays
from study.errors import DataLayoutError
from study.results import DataSummary, ResultsPaths, read_csv
from tests.cli_in_process import MainResult, run_main

ROOT = Path(__file__).resolve().parent.parent
CFG = load_config(builtin_config_path("smoke"))


def film(seed: int, size: tuple[int, int] = (90, 80)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, size[::-1], dtype=np.uint8), mode="L")


def write_dataset(root: Path) -> Path:
    """A small valid Kaggle layout: 3 films per class in train and test, 1 in val."""
    seed = 0
    for split, count in (("train", 3), ("val", 1), ("test", 3)):
        for label in ("NORMAL", "PNEUMONIA"):
            folder = root / "chest_xray" / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                seed += 1
                name = f"IM-{seed:04d}-0001.jpeg" if label == "NORMAL" else f"person{seed}_virus_{index + 1}.jpeg"
                film(seed).save(folder / name)
    return root / "chest_xray"


def prepare(data: Path, tmp_path: Path) -> tuple[ResultsPaths, DataSummary]:
    paths = ResultsPaths(tmp_path / "results")
    summary = prepare_data(data, CFG, tmp_path / "cache", paths)
    return paths, summary


def skipped(paths: ResultsPaths) -> dict[str, str]:
    return {Path(row["path"]).name: row["reason"] for row in read_csv(paths.skipped_csv)}


def test_a_file_instead_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "data.zip").write_bytes(b"PK")
    with pytest.raises(DataLayoutError, match=r"data\.zip: is a file, not a folder"):
        prepare(tmp_path / "data.zip", tmp_path)


def test_no_split_folders_lists_what_was_found(tmp_path: Path) -> None:
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "notes.txt").write_text("x")
    found = r"no train/ and test/ folders and no class folders found, found images/, notes\.txt"
    with pytest.raises(DataLayoutError, match=found):
        prepare(tmp_path / "data", tmp_path)


def test_a_split_missing_a_class(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    for path in (root / "val" / "NORMAL").iterdir():
        path.unlink()
    (root / "val" / "NORMAL").rmdir()
    with pytest.raises(DataLayoutError, match=r"missing folder .*val/NORMAL"):
        prepare(root, tmp_path)


def test_an_empty_class(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    for path in (root / "test" / "PNEUMONIA").iterdir():
        path.unlink()
    with pytest.raises(DataLayoutError, match=r"test/PNEUMONIA: no usable films"):
        prepare(root, tmp_path)


def test_a_class_of_only_corrupt_files_fails_after_listing_them(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    for path in (root / "train" / "NORMAL").iterdir():
        path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataLayoutError, match=r"train/NORMAL: no usable films"):
        prepare(root, tmp_path)
    reasons = skipped(ResultsPaths(tmp_path / "results"))
    assert len(reasons) == 3 and all(reason.startswith("corrupt or truncated") for reason in reasons.values())


def test_bad_files_among_good_ones_are_skipped_and_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_dataset(tmp_path / "data")
    folder = root / "train" / "PNEUMONIA"
    good = sorted(folder.iterdir())[0]
    (folder / "person90_virus_1.jpeg").write_bytes(good.read_bytes()[:300])
    (folder / "person91_virus_1.jpeg").write_bytes(b"")
    (folder / "person92_virus_1.jpeg").write_text("<html>not an image</html>")
    film(5, (40, 300)).save(folder / "person93_virus_1.jpeg")
    (folder / "person94_virus_1.jpeg").symlink_to(folder / "person94_virus_1.jpeg")
    (folder / "person95_virus_1.jpeg").write_bytes(good.read_bytes())
    bomb = io.BytesIO()
    film(6, (64, 64)).save(bomb, format="JPEG")
    header = bomb.getvalue()
    sof = header.index(b"\xff\xc0") + 5
    (folder / "person96_virus_1.jpeg").write_bytes(header[:sof] + (20000).to_bytes(2, "big") * 2 + header[sof + 4 :])
    (folder / "person97_virus_1.jpeg").write_bytes(b"secret")
    real_read = pathlib.Path.read_bytes

    def read_bytes(path: pathlib.Path) -> bytes:
        if path.name == "person97_virus_1.jpeg":
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(pathlib.Path, "read_bytes", read_bytes)
    paths, summary = prepare(root, tmp_path)
    reasons = skipped(paths)
    assert reasons["person90_virus_1.jpeg"].startswith("corrupt or truncated")
    assert reasons["person91_virus_1.jpeg"] == "zero bytes"
    assert reasons["person92_virus_1.jpeg"] == "not an image"
    assert reasons["person93_virus_1.jpeg"].startswith("too small: 40x300")
    assert reasons["person94_virus_1.jpeg"].startswith("unreadable: not a regular file")
    assert reasons["person95_virus_1.jpeg"].startswith("duplicate: same pixels as")
    assert reasons["person96_virus_1.jpeg"].startswith("decompression bomb guard")
    assert reasons["person97_virus_1.jpeg"] == "unreadable: Permission denied"
    assert summary.skipped == 8 and summary.duplicates_removed == 1
    assert summary.source_counts["train"]["PNEUMONIA"] == 3


def test_leakage_into_test_is_reported_and_kept_out_of_training(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    test_film = next((root / "test" / "NORMAL").iterdir())
    (root / "train" / "NORMAL" / "IM-0777-0001.jpeg").write_bytes(test_film.read_bytes())
    paths, summary = prepare(root, tmp_path)
    assert summary.test_leakage_duplicates == 1
    assert skipped(paths)["IM-0777-0001.jpeg"].startswith("leakage")
    assert "IM-0777-0001.jpeg" not in {Path(row["path"]).name for row in read_csv(paths.split_csv)}


def test_odd_formats_become_8_bit_grayscale(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    folder = root / "train" / "NORMAL"
    Image.merge("RGB", [film(40), film(41), film(42)]).convert("CMYK").save(folder / "IM-0100-0001.jpeg")
    ramp = np.tile(np.linspace(0, 65535, 96), (96, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(folder / "IM-0101-0001.jpeg", format="PNG")  # a 16-bit PNG under a .jpeg name
    film(43).convert("P").save(folder / "IM-0102-0001.jpeg", format="BMP")
    Image.merge("RGB", [film(44), film(45), film(46)]).save(folder / "IM-0103-0001.jpeg")
    paths, summary = prepare(root, tmp_path)
    assert summary.skipped == 0 and summary.source_counts["train"]["NORMAL"] == 7
    decoded = dataset_arrays(paths, [64], "squash", tmp_path / "cache")
    ramp_cached = decoded.take(64, [str(folder / "IM-0101-0001.jpeg")])[0, ..., 0]
    assert ramp_cached[:, 0].mean() < 10 and ramp_cached[:, -1].mean() > 245, "16-bit scaled, not clipped"


def test_names_with_spaces_unicode_and_markup_survive(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    odd = "person7 <b>&'\"é_virus_1.jpeg"
    film(70).save(root / "train" / "PNEUMONIA" / odd)
    paths, _ = prepare(root, tmp_path)
    assert str(root / "train" / "PNEUMONIA" / odd) in {row["path"] for row in read_csv(paths.split_csv)}


def test_kaggle_archive_extras_are_ignored(tmp_path: Path) -> None:
    """The archive's nested chest_xray/chest_xray copy, __MACOSX and ._ files do not double the counts."""
    root = write_dataset(tmp_path / "data")
    write_dataset(root)  # the nested copy: chest_xray/chest_xray/...
    macosx = tmp_path / "data" / "__MACOSX" / "chest_xray" / "train" / "NORMAL"
    macosx.mkdir(parents=True)
    (macosx / "._IM-0001-0001.jpeg").write_bytes(b"\x00\x05\x16\x07")
    (root / "train" / "NORMAL" / "._IM-0001-0001.jpeg").write_bytes(b"\x00\x05\x16\x07")
    _, summary = prepare(tmp_path / "data", tmp_path)
    assert summary.source_counts["train"] == {"NORMAL": 3, "PNEUMONIA": 3}
    assert summary.skipped == 0


def test_a_dataset_below_the_given_folder_is_found_and_two_are_ambiguous(tmp_path: Path) -> None:
    write_dataset(tmp_path / "downloads" / "v2")
    (tmp_path / "downloads" / "loop").symlink_to(tmp_path / "downloads", target_is_directory=True)
    _, summary = prepare(tmp_path / "downloads", tmp_path)
    assert summary.data_root == str(tmp_path / "downloads" / "v2" / "chest_xray")
    write_dataset(tmp_path / "downloads" / "v3")
    with pytest.raises(DataLayoutError, match=r"ambiguous, 2 dataset copies found .*v2/chest_xray.*v3/chest_xray"):
        prepare(tmp_path / "downloads", tmp_path / "again")


def test_cli_exits_2_with_one_line_and_keeps_the_skipped_list(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    for path in (root / "train" / "PNEUMONIA").iterdir():
        path.write_bytes(b"")
    completed = subprocess.run(
        [sys.executable, str(ROOT / "run_study.py"), "--data", str(tmp_path / "data"), "--prepare-only",
         "--config", str(builtin_config_path("smoke")), "--results", str(tmp_path / "r"),
         "--cache", str(tmp_path / "c")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "train/PNEUMONIA: no usable films" in lines[0], completed.stderr
    assert len(read_csv(tmp_path / "r" / "data" / "skipped.csv")) == 3
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["status"] == "failed"


def test_a_started_study_refuses_another_config_and_accepts_a_new_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A changed config would mix two studies in one folder; only the budget and the ablation's extent may change."""
    write_dataset(tmp_path / "data")
    results = tmp_path / "r"

    def prepare_only(*overrides: str) -> MainResult:
        return run_main(
            ["--data", str(tmp_path / "data"), "--prepare-only", "--config", str(builtin_config_path("smoke")),
             "--results", str(results), "--cache", str(tmp_path / "c"),
             *(arg for override in overrides for arg in ("--set", override))],
            capsys,
        )  # fmt: skip

    assert prepare_only().code == 0
    kept = {path: path.read_bytes() for path in (results / "config.json", results / "data" / "split.csv")}
    refused = prepare_only("data.split_seed=7")
    assert refused.code == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and str(results / "config.json") in lines[0] and "different config" in lines[0]
    assert "data.split_seed = 0, now 7" in lines[0] and "--set data.split_seed=0" in lines[0], lines[0]
    assert {path: path.read_bytes() for path in kept} == kept  # nothing of the started study was rewritten
    assert prepare_only("budget.time=1h", "ablation.seeds=3").code == 0


def test_a_study_trained_on_one_keras_backend_is_refused_on_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trials and seeds trained on two backends would be compared in one table; the resume is refused before it
    writes anything, and says how to resume."""
    write_dataset(tmp_path / "data")
    results = tmp_path / "r"
    command = ["--data", str(tmp_path / "data"), "--config", str(builtin_config_path("smoke")),
               "--results", str(results), "--cache", str(tmp_path / "c")]  # fmt: skip
    assert run_main([*command, "--prepare-only"], capsys).code == 0
    other = "jax" if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" else "tensorflow"
    manifest = json.loads((results / "manifest.json").read_text())
    (results / "manifest.json").write_text(json.dumps({**manifest, "device": "CPU (x86_64)", "backend": other}))
    # every file but the single-writer lock, which each run takes
    kept = {path: path.read_bytes() for path in results.rglob("*") if path.is_file() and path.name != ".lock"}
    refused = run_main([*command, "--stages", "search"], capsys)
    assert refused.code == 2, refused.stderr[-2000:]
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and str(results / "manifest.json") in lines[0], refused.stderr
    assert f"trained on the Keras backend {other}" in lines[0] and f"KERAS_BACKEND={other}" in lines[0], lines[0]
    assert {path: path.read_bytes() for path in kept} == kept


def test_a_real_study_without_a_gpu_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A night on two vCPUs would look like a short study; the overnight config refuses to start it. The backend
    is made to list no GPU, so the refusal is checked on a machine that has one too."""
    write_dataset(tmp_path / "data")
    monkeypatch.setattr("study.device.gpu_names", lambda: [])
    command = ["--data", str(tmp_path / "data"), "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "c")]
    refused = run_main(command, capsys)
    assert refused.code == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    (line,) = [text for text in refused.stderr.splitlines() if text.startswith("error:")]
    assert line.startswith("error: model.require_gpu: no GPU visible") and "--cpu" in line and "TensorFlow" in line
    assert not (tmp_path / "r" / "manifest.json").exists() and not (tmp_path / "c" / "arrays").exists()
    cpu_anyway = run_main([*command, "--cpu", "--prepare-only"], capsys)
    assert cpu_anyway.code == 0, cpu_anyway.stderr[-2000:]
    assert "device: no GPU visible" in cpu_anyway.stdout


@pytest.mark.parametrize("role", [[], ["--worker", "127.0.0.1:8000"]], ids=["single", "worker"])
def test_a_batch_size_the_devices_cannot_share_is_refused_before_any_work(
    role: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On JAX every batch is split evenly across the devices: three of them cannot share the default 32. A worker
    checks its own devices, which may not be the chief's. The device count is patched, so any machine checks it."""
    write_dataset(tmp_path / "data")
    monkeypatch.setattr("study.device.replicas", lambda: 3)
    command = ["--data", str(tmp_path / "data"), "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "c")]
    refused = run_main([*command, "--cpu", *role], capsys)
    assert refused.code == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    (line,) = [text for text in refused.stderr.splitlines() if text.startswith("error:")]
    assert line.startswith("error: search.batch_size 32:") and "--set search.batch_size=30" in line, line
    assert not (tmp_path / "r" / "manifest.json").exists() and not (tmp_path / "c" / "arrays").exists()

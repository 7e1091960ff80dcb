"""Bad input: one clear line naming the path or key, exit code 2, nothing written that was not asked for."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_in_process import run_main
from tests.conftest import SmokeRun

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_study.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def skip_if_online(host: str) -> None:
    """The offline messages can only be provoked where the host is out of reach (CI, this machine)."""
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError:
        return
    pytest.skip(f"{host} is reachable: the offline message cannot be provoked")


def test_missing_data_folder_exits_2_naming_path_and_layout(tmp_path: Path) -> None:
    completed = run_cli("--data", "/no/such/dir", "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "/no/such/dir" in lines[0] and "chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}" in lines[0]
    assert not (tmp_path / "r").exists()


def test_folder_without_the_layout_exits_2(tmp_path: Path) -> None:
    (tmp_path / "data" / "train").mkdir(parents=True)
    completed = run_cli(
        "--data", str(tmp_path / "data"), "--prepare-only", "--results", str(tmp_path / "r"), cwd=tmp_path
    )
    assert completed.returncode == 2
    assert str(tmp_path / "data") in completed.stderr and "no train/ and test/ folders" in completed.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--set", "search.max_epoch=3"), "search.max_epoch"),
        (("--set", "search.max_epochs=three"), "search.max_epochs"),
        (("--time-budget", "7 hours"), "--time-budget"),
        (("--set", "budget.search_share=2"), "budget.search_share"),
        (("--stages", "search,report,polish"), "polish"),
        (("--set", "budget.ablation_share=0.5"), "budget.ablation_share"),
        (("--set", "ablation.seeds=1"), "ablation.seeds"),
        (("--set", 'ablation.factors=["dropout","colour"]'), "ablation.factors"),
        (("--stages", "ablation"), "stage ablation needs stage data"),
        (("--stages", "gradcam"), "stage gradcam needs stage data"),
        (("--weights", "/no/such/weights.h5"), "model.weights"),
        (("--stages", "search,report"), "stage search needs stage data"),
        (("--mirror", "drive", "--chief", "localhost:8000"), "--mirror: not supported with --chief"),
        (("--set", "budget.memory_share=0.5"), "budget.memory_share"),  # renamed memory_growth: named, not ignored
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    completed = run_cli(*args, "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "c"), cwd=tmp_path)
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


def test_imagenet_weights_offline_exit_2_before_any_work(tmp_path: Path) -> None:
    skip_if_online("storage.googleapis.com")
    completed = subprocess.run(
        [sys.executable, str(ROOT / "run_study.py"), "--weights", "imagenet", "--results", str(tmp_path / "r"),
         "--cache", str(tmp_path / "c")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "KERAS_HOME": str(tmp_path / "keras")},
    )  # fmt: skip
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "--weights imagenet" in completed.stderr and "--weights PATH.h5 or none" in completed.stderr
    assert not (tmp_path / "c" / "demo").exists(), "no data generated before the weights were checked"


def test_prepare_only_validates_splits_and_caches_then_stops(prepared: SmokeRun) -> None:
    """The run that built the shared smoke cache (tests/conftest.py) is the one checked here."""
    results, cache, stdout = prepared.paths.root, prepared.cache, prepared.stdout
    manifest = json.loads((results / "manifest.json").read_text())
    assert (manifest["status"], manifest["stages_done"], manifest["device"]) == ("partial", ["data"], None)
    summary = json.loads((results / "data" / "summary.json").read_text())
    assert summary["counts"]["test"] == {"NORMAL": 48, "PNEUMONIA": 72}
    assert "train   " in stdout and "skipped 0 files" in stdout
    framework = r"TensorFlow \S+, built (for CUDA \S+|without CUDA)|Keras \S+ on JAX \S+, platform (cpu|gpu)"
    assert re.search(rf"device: (.+); ({framework})$", stdout, re.MULTILINE)
    assert not (results / "search").exists() and not (results / "best").exists()
    (index,) = (cache / "arrays").glob("*/index.json")
    assert len(json.loads(index.read_text())["entries"]) == sum(sum(c.values()) for c in summary["counts"].values())


def test_a_run_in_a_format_1_folder_makes_it_format_2(
    prepared: SmokeRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A format-1 study opens (format 2 only added keys with defaults), and once this tool has written into it,
    its manifest says format 2, so an older tool refuses it by number rather than by the first unknown key."""
    results = tmp_path / "results"
    shutil.copytree(prepared.paths.root, results)
    manifest = json.loads((results / "manifest.json").read_text())
    (results / "manifest.json").write_text(json.dumps({**manifest, "format": 1}))
    completed = run_main([*prepared.command[2:4], "--results", str(results), "--cache", str(prepared.cache),
                          "--prepare-only"], capsys)  # fmt: skip
    assert completed.code == 0, completed.stderr[-3000:]
    rewritten = json.loads((results / "manifest.json").read_text())
    assert (rewritten["format"], rewritten["stages_done"]) == (2, ["data"])


def test_kaggle_download_offline_says_how_to_fix(tmp_path: Path) -> None:
    skip_if_online("api.kaggle.com")
    completed = run_cli(
        "--data",
        "kaggle",
        "--prepare-only",
        "--results",
        str(tmp_path / "r"),
        "--cache",
        str(tmp_path / "c"),
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "--data kaggle: could not download" in lines[0] and "KAGGLE_API_TOKEN" in lines[0]

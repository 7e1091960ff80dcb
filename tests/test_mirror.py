"""The Drive mirror: what it copies, and what a restore trusts after Drive lost or mangled recent writes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from study.errors import UserInputError
from study.results.mirror import Mirror, snapshot_files
from study.results.restore import newest_complete, restore_if_needed, study_commit
from tests.report_fixture import write_fixture

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = "search/tuner/trial_0001/checkpoint.weights.h5"


def _write(root: Path, relative: str, text: str) -> None:
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_text(text)


def _tree(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): path.read_text()
        for path in root.rglob("*")
        if path.is_file() and path.name != ".mirror.json"
    }


@pytest.fixture
def study(tmp_path: Path) -> Path:
    local = tmp_path / "local"
    _write(local, "manifest.json", '{"status": "running"}')
    _write(local, "search/tuner/oracle.json", '{"trials": 1}')
    _write(local, CHECKPOINT, "weights of trial 1")
    _write(local, ".lock", "PID 1 on host")
    _write(local, "search/.trials.csv.123.tmp", "half a file")
    return local


def _objects(mirror: Path) -> list[Path]:
    return [path for path in (mirror / "objects").rglob("*") if path.is_file()]


def test_a_restore_gives_back_the_synced_folder_without_lock_or_temporary_files(study: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "drive"
    Mirror(mirror, study).sync("trial 1 ended")
    restored = tmp_path / "restored"
    message = restore_if_needed(mirror, restored)
    assert message is not None and "snapshot 1 (trial 1 ended" in message
    expected = {k: v for k, v in _tree(study).items() if k not in (".lock", "search/.trials.csv.123.tmp")}
    assert _tree(restored) == expected


def test_only_changed_content_is_copied_again(study: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "drive"
    syncer = Mirror(mirror, study)
    syncer.sync("first")
    before = len(_objects(mirror))
    syncer.sync("nothing changed")
    assert len(_objects(mirror)) == before
    _write(study, "manifest.json", '{"status": "complete"}')
    syncer.sync("manifest changed")
    assert len(_objects(mirror)) == before + 1
    assert [number for number, _ in snapshot_files(mirror)] == [1, 2, 3]


def test_skipped_files_stay_off_the_mirror(study: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "drive"
    snapshot = Mirror(mirror, study).sync("trial 2 ended", skip=[study / CHECKPOINT])
    assert CHECKPOINT not in snapshot.files and "manifest.json" in snapshot.files


def _drive_lost(mirror: Path, relative: str, snapshot: int, how: str) -> None:
    """Damage the object that `snapshot` lists for `relative`, as Drive does."""
    entry = json.loads((mirror / "snapshots" / f"{snapshot:06d}.json").read_text())["files"][relative]
    obj = mirror / "objects" / entry[0][:2] / entry[0]
    if how == "renamed":
        obj.rename(obj.with_name(obj.name + " (1)"))
    elif how == "cut":
        obj.write_bytes(obj.read_bytes()[:3])
    else:
        obj.unlink()


@pytest.mark.parametrize("how", ["renamed", "cut", "missing"])
def test_a_snapshot_with_a_broken_file_gives_way_to_the_one_before(study: Path, tmp_path: Path, how: str) -> None:
    mirror = tmp_path / "drive"
    syncer = Mirror(mirror, study)
    syncer.sync("trial 1 ended")
    first = _tree(study)
    _write(study, "search/tuner/oracle.json", '{"trials": 2}')
    syncer.sync("trial 2 ended")
    _drive_lost(mirror, "search/tuner/oracle.json", 2, how)
    verified = newest_complete(mirror)
    assert verified is not None and verified.snapshot.sequence == 1
    restore_if_needed(mirror, tmp_path / "restored")
    assert _tree(tmp_path / "restored")["search/tuner/oracle.json"] == first["search/tuner/oracle.json"]


def test_a_snapshot_file_cut_short_or_renamed_is_skipped(study: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "drive"
    syncer = Mirror(mirror, study)
    for label in ("one", "two", "three"):
        syncer.sync(label)
    snapshots = mirror / "snapshots"
    (snapshots / "000003.json").write_text((snapshots / "000003.json").read_text()[:40])
    (snapshots / "000002.json").rename(snapshots / "000002 (1).json")
    verified = newest_complete(mirror)
    assert verified is not None and verified.snapshot.label == "one"


def test_a_lost_checkpoint_does_not_cost_the_snapshot(study: Path, tmp_path: Path) -> None:
    """A trial's checkpoint only continues that trial (retrained if lost); the rest of the night is kept."""
    mirror = tmp_path / "drive"
    Mirror(mirror, study).sync("trial 1 ended")
    _drive_lost(mirror, CHECKPOINT, 1, "cut")
    message = restore_if_needed(mirror, tmp_path / "restored")
    assert message is not None and CHECKPOINT in message
    restored = _tree(tmp_path / "restored")
    assert CHECKPOINT not in restored and "search/tuner/oracle.json" in restored


def test_a_local_study_older_than_the_mirror_is_refused_not_overwritten(study: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "drive"
    Mirror(mirror, study).sync("one")
    local = tmp_path / "restored"
    restore_if_needed(mirror, local)
    assert restore_if_needed(mirror, local) is None  # the same state: the local folder is used as it is
    Mirror(mirror, study).sync("two")
    with pytest.raises(UserInputError, match=r"--results .*restored: holds an older state .*\(snapshot 2"):
        restore_if_needed(mirror, local)
    with pytest.raises(UserInputError, match="--mirror"):
        restore_if_needed(study / "drive", study)


def test_old_snapshots_and_their_objects_are_pruned(study: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "drive"
    syncer = Mirror(mirror, study)
    for version in range(6):
        _write(study, "search/tuner/oracle.json", f'{{"trials": {version}}}')
        syncer.sync(f"trial {version} ended")
    old = time.time() - 3600
    for _, path in snapshot_files(mirror):
        os.utime(path, (old, old))
    syncer.sync("after an hour")
    assert [number for number, _ in snapshot_files(mirror)] == [5, 6, 7]
    assert len(_objects(mirror)) == 4  # manifest, checkpoint, and two versions of oracle.json
    restore_if_needed(mirror, tmp_path / "restored")
    assert _tree(tmp_path / "restored")["search/tuner/oracle.json"] == '{"trials": 5}'


def test_the_report_builds_from_the_mirror_alone_and_is_copied_back(tmp_path: Path) -> None:
    """The runtime died at 3 am: a new machine has only the mirror on Drive."""
    paths = write_fixture(tmp_path / "study")
    mirror = tmp_path / "drive"
    Mirror(mirror, paths.root).sync("stage gradcam done")
    restored = tmp_path / "new-runtime" / "results"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "build_report.py"), "--mirror", str(mirror), str(restored)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert Path(completed.stdout.strip()) == restored / "report.html"
    assert (mirror / "report" / "report.html").read_bytes() == (restored / "report.html").read_bytes()
    figures = {path.name for path in (restored / "report_files").iterdir()}
    assert figures and figures == {path.name for path in (mirror / "report" / "report_files").iterdir()}
    html = (restored / "report.html").read_text()
    local_links = {link for link in re.findall(r'(?:src|href)="([^"#:?]+)"', html) if (restored / link).is_file()}
    assert {"gradcam/fn_1.png", "gradcam/comparison.png", "best/model_card.md"} <= local_links
    missing = [link for link in local_links if not (mirror / "report" / link).is_file()]
    assert not missing, "every file the page links to opens from Drive too"
    empty = subprocess.run(
        [sys.executable, str(ROOT / "build_report.py"), "--mirror", str(tmp_path / "nothing"), str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert empty.returncode == 2 and "holds no complete snapshot" in empty.stderr


def test_the_mirror_names_the_commit_that_started_the_study(study: Path, tmp_path: Path) -> None:
    """The Colab notebook resumes a study on that commit; a new study (empty mirror) or one started outside a
    git checkout names none."""
    mirror = tmp_path / "mirror"
    assert study_commit(mirror) is None
    _write(study, "manifest.json", '{"status": "running", "git_sha": "0123abc"}')
    syncer = Mirror(mirror, study)
    syncer.sync("study started")
    _write(study, "manifest.json", '{"status": "running", "git_sha": "0123abc", "stages_done": ["data"]}')
    syncer.sync("stage data done")
    assert study_commit(mirror) == "0123abc"
    _write(study, "manifest.json", '{"status": "running", "git_sha": null}')
    syncer.sync("stage search done")
    assert study_commit(mirror) is None

"""What Drive kept of a mirror after the runtime died: the kill tests resume from this copy."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from study.results.mirror import is_trial_checkpoint, object_path, snapshot_files
from study.results.restore import newest_complete

# Drive uploads late: the writes of the last seconds before the kill never arrived. Drive can lose minutes; the
# restore does not depend on how many seconds, as it trusts a snapshot only when all its files arrived, so the
# tests lose a short window and wait less for it.
LOST_SECONDS = 12


def what_drive_kept(
    mirror: Path, kept: Path, killed_at: float, rename: bool = True, lost_seconds: float = LOST_SECONDS
) -> None:
    """Copy `mirror` to `kept` as Drive may have kept it: every file written in the last `lost_seconds` before the
    kill removed; with `rename`, the oldest snapshot renamed `name (1).ext` (a rename that came back as a copy: a
    mangled name must be ignored, not taken for a snapshot); and one checkpoint that the newest complete
    snapshot lists cut short (the unit tests in test_mirror.py fall back past broken snapshots)."""
    shutil.copytree(mirror, kept)  # copy2 keeps the modification times the cut-off is read from
    for path in [path for path in kept.rglob("*") if path.is_file()]:
        if path.stat().st_mtime > killed_at - lost_seconds:
            path.unlink()
    if rename:
        snapshots = snapshot_files(kept)
        assert len(snapshots) >= 2, "the test must kill late enough that two snapshots survive the lost seconds"
        oldest = snapshots[0][1]
        oldest.rename(oldest.with_name(f"{oldest.stem} (1){oldest.suffix}"))
    verified = newest_complete(kept)
    assert verified is not None
    checkpoints = [entry for path, entry in verified.snapshot.files.items() if is_trial_checkpoint(path)]
    if checkpoints:
        cut = object_path(kept, checkpoints[0].sha256)
        cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])


def first_trial_snapshot_age(mirror: Path) -> float | None:
    """Seconds since the first snapshot taken after a trial ended (it lists a checkpoint), or None."""
    for _, path in snapshot_files(mirror):
        try:
            label = json.loads(path.read_text(encoding="utf-8"))["label"]
        except (OSError, ValueError, KeyError):
            continue  # being written
        if label.startswith("trial "):
            return time.time() - path.stat().st_mtime
    return None


def snapshot_content(mirror: Path, relative: str) -> str | None:
    """The text the newest complete snapshot holds for `relative`, or None when it holds none."""
    verified = newest_complete(mirror)
    if verified is None or relative not in verified.snapshot.files:
        return None
    sha = verified.snapshot.files[relative].sha256
    return object_path(mirror, sha).read_text(encoding="utf-8")

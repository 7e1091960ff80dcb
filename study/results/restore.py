"""Restoring a results folder from its mirror (results/mirror.py): only content whose hash matches a snapshot
is trusted, and the newest snapshot whose files all arrived intact wins, lost trial checkpoints aside."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from study.errors import UserInputError
from study.results.io import atomic_write_text
from study.results.mirror import (
    FileEntry,
    Snapshot,
    is_trial_checkpoint,
    local_sequence,
    object_path,
    record_local_sequence,
    snapshot_files,
)
from study.results.paths import ResultsPaths

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verified:
    """The newest snapshot that can be restored, and the checkpoints of it that did not survive."""

    snapshot: Snapshot
    lost_checkpoints: tuple[str, ...]


def newest_complete(mirror: Path) -> Verified | None:
    """The newest snapshot whose files all arrived intact (lost trial checkpoints aside), or None. Each object
    is read and hashed once, however many snapshots name it."""
    intact: dict[str, bool] = {}
    for number, path in reversed(snapshot_files(mirror)):
        try:
            snapshot = Snapshot.parse(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("mirror: snapshot %d cannot be read (%s); trying the one before", number, error)
            continue
        for entry in snapshot.files.values():
            if entry.sha256 not in intact:
                intact[entry.sha256] = _intact(mirror, entry)
        broken = [relative for relative, entry in snapshot.files.items() if not intact[entry.sha256]]
        required = [relative for relative in broken if not is_trial_checkpoint(relative)]
        if required:
            logger.warning(
                "mirror: snapshot %d is incomplete (%s did not arrive intact); trying the one before",
                number, required[0],
            )  # fmt: skip
            continue
        return Verified(snapshot, tuple(broken))
    return None


def _intact(mirror: Path, entry: FileEntry) -> bool:
    path = object_path(mirror, entry.sha256)
    try:
        return path.stat().st_size == entry.size and hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    except OSError:
        return False


def restore_if_needed(mirror: Path, local: Path) -> str | None:
    """Restore the local folder from the mirror when it holds no study yet; say what was restored.

    A local study older than the mirror's newest complete snapshot is refused rather than overwritten."""
    if mirror.resolve() == local.resolve() or local.resolve() in mirror.resolve().parents:
        raise UserInputError(f"--mirror {mirror}: must be outside --results {local} (the study runs locally)")
    if mirror.resolve() in local.resolve().parents:
        raise UserInputError(f"--results {local}: must be outside --mirror {mirror} (the study runs locally)")
    verified = newest_complete(mirror)
    if verified is None:
        return None
    snapshot = verified.snapshot
    if ResultsPaths(local).manifest.exists():
        ours = local_sequence(local)
        if ours is not None and ours >= snapshot.sequence:
            return None
        raise UserInputError(
            f"--results {local}: holds an older state of the study than --mirror {mirror} (snapshot "
            f"{snapshot.sequence}, {snapshot.written}); move {local} away to restore from the mirror"
        )
    manifest = ResultsPaths(local).manifest.relative_to(local).as_posix()
    # The manifest last: a restore cut short leaves no manifest, so the next start restores again.
    restored = sorted(set(snapshot.files) - set(verified.lost_checkpoints), key=lambda path: path == manifest)
    for relative in restored:
        (local / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(object_path(mirror, snapshot.files[relative].sha256), local / relative)
    record_local_sequence(local, snapshot.sequence)
    message = (
        f"restored {local} from {mirror}: snapshot {snapshot.sequence} ({snapshot.label}, {snapshot.written}), "
        f"{len(restored)} files"
    )
    if verified.lost_checkpoints:
        message += f"; lost on the mirror, retrained if a trial needs them: {', '.join(verified.lost_checkpoints)}"
    return message


def study_commit(mirror: Path) -> str | None:
    """The commit of the code that started the study in the mirror's newest complete snapshot; None for an
    empty mirror or a study started outside a git checkout. A resumed study should run on it: a newer version
    may read the study's config or files differently, and refuses a config it does not know."""
    manifest_name = ResultsPaths(Path()).manifest.name
    for _, path in reversed(snapshot_files(mirror)):  # only the manifest is read and hashed, not the study
        try:
            entry = Snapshot.parse(path.read_text(encoding="utf-8")).files.get(manifest_name)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if entry is None or not _intact(mirror, entry):
            continue
        commit = json.loads(object_path(mirror, entry.sha256).read_text(encoding="utf-8")).get("git_sha")
        return commit if isinstance(commit, str) and commit else None
    return None

"""A mirror of the results folder on storage that may lose or mangle recent writes (Colab's Drive mount).

Drive caches writes locally and uploads them later; a reclaimed runtime loses the last minutes, renames
may revert or come back as `name (1).ext`, and what survives can disagree with itself. So the study never
runs on Drive: it runs in a local folder and, after every finished trial, ablation run and stage, copies
what changed here, in a layout that needs no rename and tells a complete copy from a broken one:

    objects/ab/<sha256>     the content of one file, written once and never rewritten
    snapshots/<n>.json      which content each file of the results folder had; written after its objects
    report/report.html      the latest report and its report_files/, plain copies to open from Drive

A restore trusts only content whose hash matches a snapshot. It takes the newest snapshot whose files all
verify, except trial checkpoints: a lost one costs a retrained continuation, not the snapshot, so the study
tolerates it (see search/tuner.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from study.results.io import atomic_write_text
from study.results.paths import ResultsPaths

logger = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
SNAPSHOT_NAME = re.compile(r"^(\d{6})\.json$")  # a mangled copy ("000012 (1).json") is not a snapshot
KEEP_SNAPSHOTS = 3  # at least the newest three survive pruning ...
KEEP_SECONDS = 15 * 60  # ... and every one younger than this: Drive may still be uploading the newer ones
LOCAL_STATE = ".mirror.json"  # which snapshot the local folder matches; never mirrored
NOT_MIRRORED = (".lock", LOCAL_STATE)


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Snapshot:
    """The results folder at one moment: each relative path with the hash of its content."""

    sequence: int
    label: str
    written: str
    files: dict[str, FileEntry]

    def to_json(self) -> str:
        body = self._body()
        return json.dumps({**body, "checksum": _checksum(body)}, indent=1) + "\n"

    def _body(self) -> dict[str, object]:
        return {
            "format": SNAPSHOT_FORMAT,
            "sequence": self.sequence,
            "label": self.label,
            "written": self.written,
            "files": {path: [entry.sha256, entry.size] for path, entry in sorted(self.files.items())},
        }

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        """Raises ValueError (or KeyError/TypeError) unless the whole file arrived intact."""
        payload = json.loads(text)
        checksum = payload.pop("checksum")
        if checksum != _checksum(payload) or payload["format"] != SNAPSHOT_FORMAT:
            raise ValueError("checksum or format does not match")
        files = {path: FileEntry(str(sha), int(size)) for path, (sha, size) in payload["files"].items()}
        return cls(int(payload["sequence"]), str(payload["label"]), str(payload["written"]), files)


def _checksum(body: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def is_trial_checkpoint(relative: str) -> bool:
    """A trial's weights: needed only to continue that trial, so their loss is tolerated."""
    return relative.startswith("search/tuner/trial_") and relative.endswith("/checkpoint.weights.h5")


# A relative link of the report page: src="..." or href="..." without a scheme, query or anchor.
_REPORT_LINK = re.compile(r'(?:src|href)="([^"#:?]+)"')


@dataclass
class Mirror:
    """Copies the local results folder to `root` after each step, as content objects plus a snapshot."""

    root: Path
    local: Path
    _hashes: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # path -> (size, mtime_ns, sha256)
    _stored: set[str] = field(default_factory=set)  # objects known to be in the mirror
    _report_sha: str | None = None  # the report's content last copied to the mirror's top

    def __post_init__(self) -> None:
        self._stored = {path.name for path in self._objects_dir.glob("*/*") if path.is_file()}

    @property
    def _objects_dir(self) -> Path:
        return self.root / "objects"

    @property
    def _snapshots_dir(self) -> Path:
        return self.root / "snapshots"

    def sync(self, label: str, skip: Collection[Path] = ()) -> Snapshot | None:
        """Copy every changed file (but those in `skip`) to the mirror, then record the snapshot. A mirror
        that cannot be written (Drive full or unmounted) is logged, not raised: the night goes on locally."""
        try:
            return self._sync(label, skip)
        except OSError as error:
            logger.warning("mirror: could not copy to %s (%s); the study goes on in %s", self.root, error, self.local)
            return None

    def _sync(self, label: str, skip: Collection[Path]) -> Snapshot:
        """The local folder records the snapshot's number before the snapshot is written: a kill in between
        leaves the local folder marked newer than the mirror, which is true, and never older."""
        started = time.monotonic()
        skipped = {path.resolve() for path in skip}
        files: dict[str, FileEntry] = {}
        uploaded = 0
        for path in sorted(self.local.rglob("*")):
            relative = path.relative_to(self.local).as_posix()
            if not path.is_file() or _not_mirrored(relative) or path.resolve() in skipped:
                continue
            content = self._changed_content(path, relative)
            sha = self._hashes[relative][2]
            if sha not in self._stored:
                content = content if content is not None else path.read_bytes()
                _write_direct(object_path(self.root, sha), content)
                self._stored.add(sha)
                uploaded += len(content)
            files[relative] = FileEntry(sha, self._hashes[relative][0])
        snapshot = Snapshot(self._next_sequence(), label, _now(), files)
        record_local_sequence(self.local, snapshot.sequence)
        _write_direct(self._snapshots_dir / f"{snapshot.sequence:06d}.json", snapshot.to_json().encode())
        report = ResultsPaths(self.local).report.name
        if report in files and files[report].sha256 != self._report_sha:
            self.copy_report()
            self._report_sha = files[report].sha256
        self._prune()
        logger.debug(
            "mirror: snapshot %d (%s): %d files, %.1f MB copied in %.1f s",
            snapshot.sequence, label, len(files), uploaded / 2**20, time.monotonic() - started,
        )  # fmt: skip
        return snapshot

    def copy_report(self) -> None:
        """The report and every local file it links to (its figures, the Grad-CAM overlays, the tables, the
        model card) as plain files under report/, to open from Drive in the morning."""
        paths = ResultsPaths(self.local)
        local = self.local.resolve()
        linked = {
            target
            for link in _REPORT_LINK.findall(paths.report.read_text(encoding="utf-8"))
            if (target := (local / unquote(link)).resolve()).is_file() and local in target.parents
        }
        for path in [*sorted(linked), paths.report.resolve()]:  # the page last: it never links to a missing file
            _write_direct(self.root / "report" / path.relative_to(local), path.read_bytes())

    def _changed_content(self, path: Path, relative: str) -> bytes | None:
        """Hash the file unless its size and modification time are those already hashed; returns the bytes
        read (the object is then written from the very bytes that were hashed)."""
        stat = path.stat()
        known = self._hashes.get(relative)
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
            return None
        content = path.read_bytes()
        self._hashes[relative] = (len(content), stat.st_mtime_ns, hashlib.sha256(content).hexdigest())
        return content

    def _next_sequence(self) -> int:
        numbers = [number for number, _ in snapshot_files(self.root)]
        local = local_sequence(self.local)
        return max([*numbers, local if local is not None else 0]) + 1

    def _prune(self) -> None:
        """Drop snapshots beyond the newest few that are also older than KEEP_SECONDS, then the objects no
        kept snapshot names: the mirror holds a few versions of the folder, not the whole night's."""
        snapshots = snapshot_files(self.root)
        now = time.time()
        dropped = [path for _, path in snapshots[:-KEEP_SNAPSHOTS] if now - path.stat().st_mtime > KEEP_SECONDS]
        if not dropped:
            return
        for path in dropped:
            path.unlink(missing_ok=True)
        referenced: set[str] = set()
        for _, path in snapshot_files(self.root):
            try:
                referenced.update(entry.sha256 for entry in Snapshot.parse(path.read_text()).files.values())
            except (OSError, ValueError, KeyError, TypeError):
                return  # a snapshot that cannot be read may still be arriving: keep every object
        for sha in self._stored - referenced:
            object_path(self.root, sha).unlink(missing_ok=True)
        self._stored &= referenced


def object_path(mirror: Path, sha: str) -> Path:
    """Where the mirror keeps the content whose SHA-256 is `sha`."""
    return mirror / "objects" / sha[:2] / sha


def snapshot_files(mirror: Path) -> list[tuple[int, Path]]:
    """The mirror's snapshot files by number, oldest first; mangled names are ignored."""
    folder = mirror / "snapshots"
    if not folder.is_dir():
        return []
    found = ((SNAPSHOT_NAME.match(path.name), path) for path in folder.iterdir())
    return sorted((int(match.group(1)), path) for match, path in found if match)


def _not_mirrored(relative: str) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return relative in NOT_MIRRORED or (name.startswith(".") and name.endswith(".tmp"))  # atomic writes under way


def _write_direct(path: Path, content: bytes) -> None:
    """Write in place: a rename on Drive may revert, while a torn write shows as a hash that does not match."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_local_sequence(local: Path, sequence: int) -> None:
    atomic_write_text(local / LOCAL_STATE, json.dumps({"sequence": sequence}) + "\n")


def local_sequence(local: Path) -> int | None:
    """The snapshot number the local folder was last synced or restored as, or None."""
    try:
        return int(json.loads((local / LOCAL_STATE).read_text())["sequence"])
    except (OSError, ValueError, KeyError, TypeError):
        return None

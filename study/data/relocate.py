"""The same films at another path are the same study. On Colab the dataset may come from Colab's own dataset
cache one session and from a fresh kagglehub download the next; the demo's films move with --cache. A
resumed study whose films moved is checked by content (every film's hash and its split), then goes on."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from study.config import StudyConfig
from study.data.discover import find_split_root
from study.data.prepare import prepare_data
from study.errors import UserInputError
from study.results import DataSummary, ResultsPaths, atomic_write_text, read_csv

logger = logging.getLogger(__name__)


def follow_moved_data(data_path: Path, cfg: StudyConfig, cache_dir: Path, paths: ResultsPaths) -> bool:
    """When the films now live under another folder than data/summary.json records, prepare them again in a
    scratch folder and adopt the new paths only if the films and their split are the same. Returns whether
    the data had moved; raises UserInputError when the folder holds other films."""
    summary = DataSummary.read(paths.data_summary)
    split_root = find_split_root(data_path)
    if str(split_root) == summary.data_root:
        return False
    logger.info("the films moved from %s to %s; checking that they are the same films", summary.data_root, split_root)
    with tempfile.TemporaryDirectory(prefix="chest-xray-relocate-") as scratch:
        moved_paths = ResultsPaths(Path(scratch))
        moved = prepare_data(data_path, cfg, cache_dir, moved_paths)
        if moved.data_hash != summary.data_hash or _split_by_content(moved_paths) != _split_by_content(paths):
            raise UserInputError(
                f"--data {data_path}: holds other films than the study in {paths.root} (data hash "
                f"{moved.data_hash[:12]}, the study's {summary.data_hash[:12]}); use a new --results folder"
            )
        for relative in (paths.split_csv, paths.skipped_csv, paths.data_summary):
            source = moved_paths.root / relative.relative_to(paths.root)
            atomic_write_text(relative, source.read_text(encoding="utf-8"))
    logger.info("same films (data hash %s) and the same split: the study goes on from %s", moved.data_hash, split_root)
    return True


def _split_by_content(paths: ResultsPaths) -> dict[str, str]:
    return {row["sha1"]: row["split"] for row in read_csv(paths.split_csv)}

"""Which study a results folder holds: its config, its data and the software it ran on. A started folder
continues only the same study."""

from __future__ import annotations

import platform
import subprocess
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from study.config import StudyConfig, config_from_json
from study.errors import UserInputError
from study.results import Manifest, ResultsPaths

VERSIONED_PACKAGES = ("tensorflow", "keras", "keras-tuner", "numpy", "scikit-learn", "pandas", "pillow")


def git_sha() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return completed.stdout.strip() or None


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def check_same_study(paths: ResultsPaths, cfg: StudyConfig, data_source: str, manifest: Manifest) -> None:
    """A started results folder continues only the same study: same config, same data. The time budget and
    the ablation's extent may change: a resumed run may have more or less of the night left, and may ask for
    more seeds or factors (finished runs are kept; each is one variant and seed)."""
    if paths.config.exists():
        saved = config_from_json(paths.config.read_text(encoding="utf-8"), paths.config)
        if replace(saved, budget=cfg.budget, ablation=cfg.ablation) != cfg:
            raise UserInputError(
                f"--results {paths.root}: holds a study with a different config ({paths.config}); "
                "use a new --results folder, or rerun with the same config"
            )
    if "data" in manifest.stages_done and manifest.data_source not in (None, data_source):
        raise UserInputError(
            f"--results {paths.root}: holds a study of {manifest.data_source}, not {data_source}; "
            "use a new --results folder"
        )

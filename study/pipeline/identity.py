"""Which study a results folder holds: its config, its data and the software it ran on. A started folder
continues only the same study."""

from __future__ import annotations

import json
import platform
import re
import shlex
import subprocess
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from study.config import StudyConfig, config_from_json
from study.errors import UserInputError
from study.results import Manifest, ResultsPaths

SYNTHETIC_SOURCE = "synthetic demo"
VERSIONED_PACKAGES = ("tensorflow", "keras", "keras-tuner", "numpy", "scikit-learn", "pandas", "pillow")
# From Colab's published stack (.ci/colab-stack.txt) to the pins (requirements.txt); CI runs both ends.
SUPPORTED = {"tensorflow": ((2, 20), (2, 21)), "keras": ((3, 13), (3, 15))}


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
    more seeds or factors (finished runs are kept; each is one variant and seed). Films read from another
    folder are compared by content when a stage needs them (data/relocate.py); the demo and real films never
    mix."""
    if paths.config.exists():
        saved = config_from_json(paths.config.read_text(encoding="utf-8"), paths.config)
        differing = _differing_keys(replace(saved, budget=cfg.budget, ablation=cfg.ablation), cfg)
        if differing:
            key, was, now = differing[0]
            raise UserInputError(
                f"--results {paths.root}: holds a study with a different config ({paths.config}: {key} = {was!r}, "
                f"now {now!r}; {len(differing)} key(s) differ); use a new --results folder, or rerun with the "
                f"same config (--set {shlex.quote(f'{key}={_override_text(was)}')})"
            )
    synthetic = {source == SYNTHETIC_SOURCE for source in (manifest.data_source, data_source)}
    if "data" in manifest.stages_done and manifest.data_source is not None and len(synthetic) == 2:
        raise UserInputError(
            f"--results {paths.root}: holds a study of {manifest.data_source}, not {data_source}; "
            "use a new --results folder"
        )


def check_same_backend(paths: ResultsPaths, manifest: Manifest) -> None:
    """Models of one study train on one Keras backend: the search compares trials and the ablation compares
    seeds, and another backend's kernels round differently, so a study resumed on another backend would mix
    the two in its tables. Imports Keras only for a study that has trained."""
    trained = manifest.trained_backend
    if trained is None:
        return
    import keras

    if keras.backend.backend() != trained:
        raise UserInputError(
            f"--results {paths.root}: its models trained on the Keras backend {trained} ({paths.manifest}), "
            f"this run is on {keras.backend.backend()}; resume with KERAS_BACKEND={trained}, or use a new "
            "--results folder"
        )


def _override_text(value: object) -> str:
    """A config value as `--set` reads it back: strings bare, the rest as compact JSON (TOML reads it too)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _differing_keys(saved: StudyConfig, current: StudyConfig) -> list[tuple[str, object, object]]:
    """(section.key, saved value, current value) for every key whose value differs, in config order."""
    before, after = saved.to_dict(), current.to_dict()
    differing = []
    for section, values in after.items():
        if not isinstance(values, dict):
            if values != before.get(section):
                differing.append((section, before.get(section), values))
            continue
        differing += [
            (f"{section}.{key}", before[section].get(key), value)
            for key, value in values.items()
            if value != before[section].get(key)
        ]
    return differing


def untested_versions(found: dict[str, str]) -> list[str]:
    """The framework versions outside the range CI runs on, as "tensorflow 2.22.0 (tested: 2.20-2.21)"."""
    untested = []
    for package, (low, high) in SUPPORTED.items():
        numbers = tuple(int(part) for part in re.findall(r"\d+", found.get(package, ""))[:2])
        if not low <= numbers <= high:
            tested = f"{low[0]}.{low[1]}-{high[0]}.{high[1]}"
            untested.append(f"{package} {found.get(package)} (tested: {tested})")
    return untested


def resume_changes(manifest: Manifest, device: str, precision: str, found: dict[str, str]) -> str | None:
    """What differs from the run that started the study: device, precision, framework versions; or None."""
    changes = []
    if device != manifest.device:
        changes.append(f"device {device} (was {manifest.device})")
    if manifest.precision is not None and precision != manifest.precision:
        changes.append(f"precision {precision} (was {manifest.precision})")
    for package in ("tensorflow", "keras"):
        if found.get(package) != manifest.versions.get(package):
            changes.append(f"{package} {found.get(package)} (was {manifest.versions.get(package)})")
    return "; ".join(changes) or None

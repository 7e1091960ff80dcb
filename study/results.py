"""The results folder: the one contract between run_study.py and build_report.py.

Every path and column list lives here so the writer and the reader cannot drift apart. This module
imports neither TensorFlow nor Keras: build_report.py reads through it on machines without them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1

STAGES: tuple[str, ...] = ("data", "search", "evaluate", "ablation", "gradcam", "report")

SPLIT_COLUMNS: tuple[str, ...] = ("path", "label", "patient_id", "source_split", "split", "sha1")
SKIPPED_COLUMNS: tuple[str, ...] = ("path", "reason")
TRIAL_BASE_COLUMNS: tuple[str, ...] = (
    "trial_id",
    "status",
    "bracket",
    "round",
    "parent",
    "epochs",
    "initial_epoch",
    "best_epoch",
    "seconds",
    "rss_mb",
    "error",
)
TRIAL_METRIC_COLUMNS: tuple[str, ...] = ("val_auc", "val_loss", "val_accuracy", "auc", "loss")
HISTORY_COLUMNS: tuple[str, ...] = ("epoch", "loss", "auc", "accuracy", "val_loss", "val_auc", "val_accuracy")
PREDICTION_COLUMNS: tuple[str, ...] = ("split", "path", "label", "prob")
ABLATION_HP_COLUMNS: tuple[str, ...] = (
    "hp_resolution",
    "hp_augmentation",
    "hp_dropout",
    "hp_unfrozen_layers",
    "hp_class_weighting",
    "hp_learning_rate",
)
ABLATION_METRICS: tuple[str, ...] = ("val_auc", "test_auc", "test_accuracy", "test_sensitivity", "test_specificity")
ABLATION_METRIC_LABELS: dict[str, str] = {  # column headers of the ablation tables, in the files and the report
    "val_auc": "Val AUC",
    "test_auc": "Test AUC",
    "test_accuracy": "Accuracy",
    "test_sensitivity": "Sensitivity",
    "test_specificity": "Specificity",
}
ABLATION_RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "variant",
    "factor",
    "level",
    "seed",
    "status",
    "epochs",
    "best_epoch",
    "seconds",
    "threshold",
    *ABLATION_METRICS,
    *ABLATION_HP_COLUMNS,
    "error",
)
ABLATION_SUMMARY_COLUMNS: tuple[str, ...] = (
    "variant",
    "factor",
    "level",
    "metric",
    "n",
    "mean",
    "sd",
    "ci_low",
    "ci_high",
    "delta_n",
    "delta_mean",
    "delta_ci_low",
    "delta_ci_high",
    "delta_p",
    "delong_z",
    "delong_p",
    "mark",
)
FACTOR_EFFECT_COLUMNS: tuple[str, ...] = ("factor", "level", "epochs", "n", "mean", "ci_low", "ci_high")
IMPORTANCE_COLUMNS: tuple[str, ...] = ("factor", "importance", "importance_sd", "n_trials", "method")
GRADCAM_COLUMNS: tuple[str, ...] = (
    "file",
    "source",
    "category",
    "selection",
    "label",
    "prob",
    "patient_id",
    "method",
    "layer",
    "deletion_auc",
    "border_share",
    "mask_ratio",
)
COMPARISON_COLUMNS: tuple[str, ...] = (
    "source", "patient_id", "label", "variant", "variant_label", "prob", "method", "layer", "border_share",
)  # fmt: skip
HP_PREFIX = "hp_"


class ResultsFormatError(Exception):
    """A results folder written by an incompatible version of the tool."""


@dataclass(frozen=True)
class ResultsPaths:
    """Every file of a results folder, named once."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def split_csv(self) -> Path:
        return self.data_dir / "split.csv"

    @property
    def skipped_csv(self) -> Path:
        return self.data_dir / "skipped.csv"

    @property
    def data_summary(self) -> Path:
        return self.data_dir / "summary.json"

    @property
    def search_dir(self) -> Path:
        return self.root / "search"

    @property
    def plan(self) -> Path:
        return self.search_dir / "plan.json"

    @property
    def calibration(self) -> Path:
        return self.search_dir / "calibration.json"

    @property
    def tensorboard_dir(self) -> Path:
        return self.root / "tensorboard"

    @property
    def trials_csv(self) -> Path:
        return self.search_dir / "trials.csv"

    @property
    def histories_dir(self) -> Path:
        return self.search_dir / "histories"

    def history_csv(self, trial_id: str) -> Path:
        return self.histories_dir / f"{trial_id}.csv"

    @property
    def tuner_dir(self) -> Path:
        return self.search_dir / "tuner"

    @property
    def best_dir(self) -> Path:
        return self.root / "best"

    @property
    def best_model(self) -> Path:
        return self.best_dir / "model.keras"

    @property
    def best_hyperparameters(self) -> Path:
        return self.best_dir / "hyperparameters.json"

    @property
    def threshold(self) -> Path:
        return self.best_dir / "threshold.json"

    @property
    def test_metrics(self) -> Path:
        return self.best_dir / "test_metrics.json"

    @property
    def predictions_csv(self) -> Path:
        return self.best_dir / "predictions.csv"

    @property
    def factor_effects(self) -> Path:
        return self.search_dir / "factor_effects.csv"

    @property
    def importance(self) -> Path:
        return self.search_dir / "importance.csv"

    @property
    def ablation_dir(self) -> Path:
        return self.root / "ablation"

    @property
    def ablation_plan(self) -> Path:
        return self.ablation_dir / "plan.json"

    @property
    def ablation_runs(self) -> Path:
        return self.ablation_dir / "runs.csv"

    @property
    def ablation_summary(self) -> Path:
        return self.ablation_dir / "summary.csv"

    def ablation_predictions(self, run_id: str) -> Path:
        return self.ablation_dir / "predictions" / f"{run_id}.csv"

    def ablation_model(self, variant: str) -> Path:
        """The first seed's model of each variant, kept for the Grad-CAM comparison grid."""
        return self.ablation_dir / "models" / f"{variant}.keras"

    def ablation_table(self, suffix: str) -> Path:
        return self.ablation_dir / "tables" / f"ablation.{suffix}"

    @property
    def gradcam_dir(self) -> Path:
        return self.root / "gradcam"

    @property
    def gradcam_index(self) -> Path:
        return self.gradcam_dir / "index.csv"

    @property
    def gradcam_comparison(self) -> Path:
        return self.gradcam_dir / "comparison.png"

    @property
    def gradcam_comparison_csv(self) -> Path:
        return self.gradcam_dir / "comparison.csv"

    @property
    def gradcam_scores(self) -> Path:
        return self.gradcam_dir / "scores.json"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def run_log(self) -> Path:
        return self.logs_dir / "run.log"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def report_files(self) -> Path:
        return self.root / "report_files"


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a kill never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_json(path: Path, payload: Any) -> None:
    """Atomically write JSON; floats stay unrounded (rounding is the template's job)."""
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Atomically write rows with a fixed column order; missing values become empty cells."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: _cell(row.get(column)) for column in columns})
    atomic_write_text(path, buffer.getvalue())


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def trial_columns(hp_names: Iterable[str]) -> list[str]:
    """trials.csv columns: fixed bookkeeping, one hp_ column per searched value, then the metrics."""
    return [*TRIAL_BASE_COLUMNS, *(HP_PREFIX + name for name in sorted(hp_names)), *TRIAL_METRIC_COLUMNS]


def new_manifest(command: str, versions: Mapping[str, str], device: str | None, git_sha: str | None) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "status": "running",
        "stages_done": [],
        "stage_seconds": {},
        "command": command,
        "versions": dict(versions),
        "device": device,
        "git_sha": git_sha,
        "started": None,
        "finished": None,
    }


def read_manifest(paths: ResultsPaths) -> dict[str, Any] | None:
    """The manifest, or None when the study has not started; refuses another format version."""
    if not paths.manifest.exists():
        return None
    manifest = read_json(paths.manifest)
    found = manifest.get("format")
    if found != FORMAT_VERSION:
        raise ResultsFormatError(
            f"{paths.manifest}: results format {found!r}, this tool reads format {FORMAT_VERSION}; "
            "use a new --results folder or the tool version that wrote it"
        )
    return manifest

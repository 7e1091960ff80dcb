"""Every path of a results folder, named once, so the stages that write a file and the report that reads it
cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    def subgroups(self) -> Path:
        return self.best_dir / "subgroups.json"

    @property
    def model_card(self) -> Path:
        return self.best_dir / "model_card.md"

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
    def export_dir(self) -> Path:
        return self.root / "export"

    def export_model(self, variant: str) -> Path:
        return self.export_dir / f"model_{variant}.tflite"

    @property
    def export_summary(self) -> Path:
        return self.export_dir / "summary.csv"

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
    def gradcam_baseline(self) -> Path:
        return self.gradcam_dir / "baseline.json"

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

"""The report's records for the later sections: the Grad-CAM gallery and its trust scores, the ablation
table and its forest plot, and the search's observational evidence. Plain data, as in records.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GradcamImage:
    file: str
    src: str
    exists: bool
    category: str
    label: str
    prob: float | None
    patient_id: str
    method: str
    layer: str
    border_share: float | None = None
    selection: str = ""


@dataclass(frozen=True)
class GradcamGroup:
    category: str
    title: str
    images: tuple[GradcamImage, ...]


@dataclass(frozen=True)
class CamScoreRow:
    """gradcam/scores.json, one row per method: how far its maps can be trusted."""

    method: str
    deletion_auc: float | None
    random_deletion_auc: float | None
    border_share: float | None
    border_flagged: int | None
    mask_ratio: float | None
    mask_ratio_median: float | None
    films_with_masks: int | None
    difference: float | None = None  # deletion AUC minus the random maps', per film (gradcam/baseline.json)
    difference_low: float | None = None
    difference_high: float | None = None
    other_difference: float | None = None  # the same on the films called negative, paired apart (no verdict)
    other_difference_low: float | None = None
    other_difference_high: float | None = None


@dataclass(frozen=True)
class GradcamInfo:
    groups: tuple[GradcamGroup, ...]
    total: int
    missing_files: int
    scores: tuple[CamScoreRow, ...] = ()
    layer: str = ""
    films_scored: int | None = None
    border_band: float | None = None
    border_warning: float | None = None
    random_grid: int | None = None
    difference_confidence: float | None = None
    difference_films: str | None = None  # the films `difference` pairs ("every image scored" in older studies)
    other_films: str | None = None  # the films called negative, paired apart (None in older studies)
    comparison_src: str | None = None  # gradcam/comparison.png: the same films under each ablation model
    comparison_models: tuple[str, ...] = ()
    comparison_films: int = 0
    comparison_method: str | None = None  # the saliency method the grid draws (gradcam.methods' first)
    comparison_random: bool = False  # films drawn at random; older studies showed the search model's most confident

    @property
    def border_chance(self) -> float | None:
        """The border share of a map spread evenly over the film: the band's share of the area, 1 - (1 - 2b)^2."""
        return None if self.border_band is None else 1.0 - (1.0 - 2.0 * self.border_band) ** 2


@dataclass(frozen=True)
class AblationRow:
    """One row of the citable table, cells already formatted by the ablation stage (as in ablation.csv)."""

    variant: str
    label: str
    seeds: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class ForestPoint:
    """A variant's paired difference to the best configuration in one metric (None: no interval)."""

    label: str
    delta: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class AblationInfo:
    """ablation/: the table, its caption, the plan (seeds, epochs), what the budget left out, the files."""

    headers: tuple[str, ...]
    rows: tuple[AblationRow, ...]
    caption: str | None
    seeds: int
    epochs: int | None
    runs_done: int
    runs_failed: int
    runs_planned: int
    skipped: tuple[str, ...]
    tables: tuple[tuple[str, str], ...]  # (format, path relative to the report)
    forest: tuple[ForestPoint, ...]  # test AUC deltas
    seed_values: tuple[int, ...] = ()


@dataclass(frozen=True)
class FactorEffect:
    """Mean val AUC of the search's trials at one factor level and one epoch budget."""

    factor: str
    level: str
    epochs: int
    n: int
    mean: float | None
    low: float | None
    high: float | None
    bracket: int | None = None  # None: an older study, whose means pooled every round


@dataclass(frozen=True)
class SearchEvidence:
    """search/factor_effects.csv and importance.csv: observational, from the trials alone."""

    effects: tuple[FactorEffect, ...]
    importance: tuple[tuple[str, float, float | None, float | None], ...]  # (factor, share, sd, raw loss in R²)
    importance_trials: int | None
    importance_method: str | None
    oob_r2: float | None = None  # the forest's out-of-bag R² (None: an older study, which did not measure it)
    confidence: float | None = None  # of the effects' intervals (None: an older study, which did not record it)
    min_oob_r2: float = 0.1  # below it, the forest explains nothing and no ranking is shown

    @property
    def round_zero(self) -> bool:
        """Effects from each bracket's first round only (random draws), as the search stage now writes them."""
        return bool(self.effects) and all(effect.bracket is not None for effect in self.effects)

    @property
    def forest_explains(self) -> bool:
        return self.oob_r2 is None or self.oob_r2 >= self.min_oob_r2


@dataclass(frozen=True)
class ExportRow:
    """One TFLite variant of export/summary.csv: its file, its test scores against the Keras model, its speed."""

    variant: str
    status: str
    error: str
    file: str
    size_kb: float | None
    size_share: float | None  # of the float32 file
    auc: float | None
    auc_low: float | None
    auc_high: float | None
    auc_diff: float | None  # variant minus Keras, paired on resampled patients
    auc_diff_low: float | None
    auc_diff_high: float | None
    accuracy: float | None
    sensitivity: float | None
    specificity: float | None
    agreement: float | None  # share of test decisions equal to the Keras model's
    max_abs_dp: float | None
    median_abs_dp: float | None
    latency_ms_1: float | None
    latency_ms_2: float | None
    runtime: str


@dataclass(frozen=True)
class ExportInfo:
    """export/summary.csv, with the Keras model's test AUC it is compared with."""

    rows: tuple[ExportRow, ...]
    keras_auc: float | None
    confidence: float | None
    resolution: int | None

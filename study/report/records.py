"""The report's plain data: frozen records built by info.py and read by plots.py and the templates.

Keeping them free of behaviour lets tests compare values instead of pixels or HTML, and lets the
templates stay logic-free: every number they show is already here, unrounded. The two cell parsers at
the end are shared by the info modules, which read CSV cells and JSON values of either type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from study.report.records_data import DataInfo
from study.report.records_sections import AblationInfo, ExportInfo, GradcamInfo, SearchEvidence
from study.results import ConfusionCounts, HpValue, Subgroups, Threshold
from study.results.classes import Classes, Wording, classes_or_default


@dataclass(frozen=True)
class RunInfo:
    """What manifest.json says about the run that wrote the folder."""

    status: str
    stopped: str | None
    config_name: str | None
    synthetic: bool
    stages_done: tuple[str, ...]
    stage_seconds: tuple[tuple[str, float], ...]
    command: str
    versions: tuple[tuple[str, str], ...]
    device: str
    git_sha: str | None
    started: str | None
    finished: str | None
    seconds_total: float | None = None  # the stages' time summed (a resumed study's pauses do not count)
    precision: str | None = None
    changes: tuple[str, ...] = ()  # resumes on another device, precision or version, or with moved films
    backend: str | None = None  # the Keras backend that trained


@dataclass(frozen=True)
class PlanRow:
    """One Hyperband round: how many trials train up to how many epochs."""

    iteration: int
    bracket: int
    round: int
    trials: int
    epochs: int
    initial_epoch: int


@dataclass(frozen=True)
class PlanInfo:
    max_epochs: int
    factor: int
    hyperband_iterations: int
    total_trials: int
    total_epochs: int
    rounds: tuple[PlanRow, ...]


@dataclass(frozen=True)
class TrialRow:
    """One row of search/trials.csv; hp values are in TrialsInfo.hp_names order."""

    order: int
    trial_id: str
    status: str
    bracket: str
    round: str
    epochs: int | None
    seconds: float | None
    hp: tuple[HpValue, ...]
    val_auc: float | None
    val_loss: float | None
    val_accuracy: float | None
    error: str


@dataclass(frozen=True)
class TrialsInfo:
    """search/trials.csv sorted by val_auc (best first), plus the curve of the best so far in trial order."""

    hp_names: tuple[str, ...]
    rows: tuple[TrialRow, ...]
    ran: int
    completed: int
    failed: int
    best_trial_id: str | None
    any_error: bool
    val_auc_in_order: tuple[float | None, ...]
    best_so_far: tuple[float | None, ...]


@dataclass(frozen=True)
class BestConfig:
    """best/hyperparameters.json."""

    trial_id: str
    values: tuple[tuple[str, HpValue], ...]
    val_auc: float | None  # Keras's 200-bucket AUC at the trial's best epoch, as the search ranked it
    val_auc_exact: float | None = None  # the same model's exact AUC on the validation films (best/predictions.csv)
    n_val: int | None = None
    trials_completed: int | None = None


@dataclass(frozen=True)
class Metric:
    key: str
    name: str
    value: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class TestInfo:
    """best/test_metrics.json: the one look at the test set."""

    n: int
    n_positive: int
    n_negative: int
    threshold: float | None
    confidence: float | None
    bootstrap_resamples: int | None
    metrics: tuple[Metric, ...]
    confusion: ConfusionCounts | None
    retrained_auc: Metric | None = None  # the ablation's best variant: the same configuration retrained per seed
    retrained_seeds: int | None = None
    n_patients: int | None = None
    one_class_resamples: int | None = None  # None: an older study, which did not count them


@dataclass(frozen=True)
class RocInfo:
    """ROC of the test rows of best/predictions.csv; the operating point comes from the confusion matrix."""

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    auc: float
    n: int
    n_positive: int
    operating_point: tuple[float, float] | None


@dataclass(frozen=True)
class PrInfo:
    """Precision-recall of the test rows; the operating point (recall, precision) is the confusion matrix's."""

    recall: tuple[float, ...]
    precision: tuple[float, ...]
    average_precision: float
    prevalence: float
    operating_point: tuple[float, float] | None


@dataclass(frozen=True)
class CalibrationInfo:
    """Reliability of the test probabilities: (mean predicted, observed share, films) per bin, and the ECE."""

    bins: tuple[tuple[float, float, int], ...]
    ece: float
    n: int
    bin_count: int


@dataclass(frozen=True)
class LearningCurve:
    """The best trial's epochs, with those of the trials it continued ((trial, epoch) where each took over)."""

    trial_id: str
    epochs: tuple[int, ...]
    loss: tuple[float | None, ...]
    val_loss: tuple[float | None, ...]
    auc: tuple[float | None, ...]
    val_auc: tuple[float | None, ...]
    continued_at: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Reference:
    """A published (or trivial) result to read ours against; None where the source gives no number."""

    model: str
    auc: float | None
    accuracy: float | None
    sensitivity: float | None
    specificity: float | None
    note: str
    ours: bool = False


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows; a None section comes with a sentence in `notes` under the same key."""

    root: str
    generated: str
    run: RunInfo | None
    config_text: str | None
    data: DataInfo | None
    plan: PlanInfo | None
    trials: TrialsInfo | None
    best: BestConfig | None
    threshold: Threshold | None
    test: TestInfo | None
    roc: RocInfo | None
    pr: PrInfo | None
    calibration: CalibrationInfo | None
    learning: LearningCurve | None
    gradcam: GradcamInfo | None
    evidence: SearchEvidence | None
    ablation: AblationInfo | None
    comparison: tuple[Reference, ...]
    notes: Mapping[str, str]
    export: ExportInfo | None = None
    subgroups: Subgroups | None = None  # best/subgroups.json: test sensitivity per kind of pneumonia

    @property
    def classes(self) -> Classes:
        """The (negative, positive) classes every label and caption names."""
        return classes_or_default(None if self.data is None else self.data.classes)

    @property
    def words(self) -> Wording:
        return self.classes.words


def as_float(value: Any) -> float | None:
    """A CSV cell or JSON value as a float; empty, missing or NaN becomes None (shown as a dash)."""
    if value is None or value == "":
        return None
    number = float(value)
    return None if math.isnan(number) else number


def as_int(value: Any) -> int | None:
    """A CSV cell or JSON value as an int ("12" and "12.0" both read as 12); empty becomes None."""
    number = as_float(value)
    return None if number is None else int(number)


def as_hp(value: str) -> HpValue:
    """A trials.csv hyperparameter cell as the number it was searched as, so it can be rounded for display."""
    for parse in (int, float):
        try:
            return parse(value)
        except ValueError:
            continue
    return value or None

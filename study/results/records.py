"""The results folder's JSON files, one frozen record type per file.

A stage builds its record and writes it; every reader parses the file once, through the same type, and then
trusts it. The format number lives in the manifest, checked whenever a study is opened; a change to any
record that an older reader could not parse raises it. Format 2 only added keys, each with a default that says
what the tool did before it, so a format-1 folder still reads; a run that writes into it makes it format 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from study.errors import ResultsFormatError
from study.results.classes import CHEST_XRAY_NAMES, Classes
from study.results.json_record import JsonRecord

FORMAT_VERSION = 2
# 1: before the keys added since (the manifest's backend, precision and changes; the data summary's layout,
# classes and channels; test metrics' one_class_resamples; ...); this tool reads those files as written.
READABLE_FORMATS = (1, 2)

HpValue = str | int | float | bool | None


@dataclass(frozen=True)
class Manifest(JsonRecord):
    """manifest.json: the study's status, the stages done and what ran them; rewritten after every stage
    and when the first stage that trains starts (the device and Keras backend, which workers check)."""

    format: int
    status: str  # running, complete, stopped, partial, failed, interrupted
    stages_done: tuple[str, ...]
    stage_seconds: dict[str, float]
    command: str
    versions: dict[str, str]
    device: str | None
    git_sha: str | None
    started: str | None
    finished: str | None
    config_name: str | None = None
    data_source: str | None = None
    stopped: str | None = None  # why stages ended short of their plan (the time budget), "; "-joined
    precision: str | None = None  # the precision the first training run used
    changes: tuple[str, ...] = ()  # resumes on another device, precision or version, or with moved films
    backend: str | None = None  # the Keras backend that trained (studies from before it was recorded: TensorFlow)

    @classmethod
    def new(cls, command: str, versions: dict[str, str], git_sha: str | None) -> Manifest:
        return cls(FORMAT_VERSION, "running", (), {}, command, versions, None, git_sha, None, None)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Refuses another format version by number before reading any other key."""
        text = path.read_text(encoding="utf-8")
        try:
            found = json.loads(text).get("format")
        except (json.JSONDecodeError, AttributeError) as error:
            raise ResultsFormatError(
                f'{path}: unreadable manifest ({error}); expected a JSON object with "format": {FORMAT_VERSION}'
            ) from error
        if found not in READABLE_FORMATS:
            raise ResultsFormatError(
                f"{path}: results format {found!r}, this tool reads formats {READABLE_FORMATS[0]} to "
                f"{FORMAT_VERSION}; use a new --results folder or the tool version that wrote it"
            )
        return cls.from_json(text, str(path))

    @property
    def trained_backend(self) -> str | None:
        """The Keras backend its models trained on, or None before the first training stage. Studies from
        before the backend was recorded trained on TensorFlow: Grad-CAM ran on no other backend then."""
        if self.backend is not None:
            return self.backend
        return "tensorflow" if self.device is not None else None


@dataclass(frozen=True)
class DataSummary(JsonRecord):
    """data/summary.json: films per split and class, patients, what was skipped or removed, the split's seed."""

    counts: dict[str, dict[str, int]]  # split -> class -> films, after the split
    patients: dict[str, int]
    source_counts: dict[str, dict[str, int]]  # the folders the films came from
    data_hash: str
    skipped: int
    skipped_by_reason: dict[str, int]
    duplicates_removed: int
    test_leakage_duplicates: int
    files_without_patient_id: int
    val_fraction: float
    val_share: float
    seed: int
    data_root: str
    # A patient id in both test/ and train+val: the same child ("shared": its train/val films left the pool) or
    # another ("separate"). Studies from before the check were all "separate" and counted nothing (None).
    group_pattern: str = "chest_xray"  # data.group_pattern: how file names named their patients
    test_drawn: bool = False  # no test folder: the test set was drawn from the pool (data.test_fraction, seed)
    test_share: float | None = None  # the drawn test set's share of the films (folds are 1/k of the patients)
    layout: str = "kaggle"  # kaggle (train/ val/ test/) | train_test | single (one folder of class folders)
    test_patient_ids: str = "separate"
    shared_test_ids: int | None = None
    shared_test_id_examples: tuple[str, ...] = ()
    shared_id_pool_films: int | None = None  # train/val films carrying a shared id
    classes: tuple[str, str] = CHEST_XRAY_NAMES  # (negative, positive), spelled as the folders are
    channels: int = 1  # the decoded arrays' and the model's input channels: 1 (gray) or 3 (RGB, data.color)
    colour_files: int | None = None  # files whose channels differ (counted in the grayscale read)
    files_with_group_id: int | None = None  # files whose name the group pattern read (0: it named no group)

    @property
    def class_pair(self) -> Classes:
        return Classes(*self.classes)


@dataclass(frozen=True)
class PlanRound(JsonRecord):
    round: int
    trials: int
    epochs: int
    initial_epoch: int


@dataclass(frozen=True)
class PlanBracket(JsonRecord):
    iteration: int
    bracket: int
    rounds: tuple[PlanRound, ...]


@dataclass(frozen=True)
class SearchPlan(JsonRecord):
    """search/plan.json: Hyperband's brackets, trials and epochs, as keras-tuner will schedule them."""

    max_epochs: int
    factor: int
    hyperband_iterations: int
    total_trials: int
    total_epochs: int
    brackets: tuple[PlanBracket, ...]


@dataclass(frozen=True)
class Calibration(JsonRecord):
    """search/calibration.json: what one trial costs on this machine, a fixed part (build, compile, trace)
    and one epoch per size."""

    build_seconds: float
    epoch_seconds: dict[int, float]

    @classmethod
    def pixel_units(cls, resolutions: tuple[int, ...]) -> Calibration:
        """No timing run (a chief that trains nothing): an epoch costs its pixel count relative to the largest
        size, and finished trials supply the seconds."""
        largest = max(resolutions)
        return cls(0.0, {size: (size / largest) ** 2 for size in resolutions})


@dataclass(frozen=True)
class BestTrial(JsonRecord):
    """best/hyperparameters.json: the trial Hyperband selected on validation AUC, and its searched values."""

    trial_id: str
    values: dict[str, HpValue]
    val_auc: float

    @property
    def resolution(self) -> int:
        return int(self.values["resolution"])  # type: ignore[arg-type]


@dataclass(frozen=True)
class Threshold(JsonRecord):
    """best/threshold.json: the decision threshold, chosen on validation predictions only."""

    method: str
    threshold: float
    val_sensitivity: float
    val_specificity: float
    n_val: int


@dataclass(frozen=True)
class Estimate(JsonRecord):
    value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ConfusionCounts(JsonRecord):
    tn: int
    fp: int
    fn: int
    tp: int


@dataclass(frozen=True)
class TestMetrics(JsonRecord):
    """best/test_metrics.json: the test set, scored once at the validation threshold, with bootstrap CIs."""

    n: int
    n_positive: int
    n_negative: int
    n_patients: int
    threshold: float
    confidence: float
    bootstrap_resamples: int
    ci_method: str
    metrics: dict[str, Estimate]
    confusion_matrix: ConfusionCounts
    one_class_resamples: int | None = None  # resamples whose patients held one class only (no AUC; left out)


@dataclass(frozen=True)
class SubgroupSensitivity(JsonRecord):
    """One kind of positive film named by its file (Kaggle's `bacteria` and `virus`): how many, and the share the
    model called positive at the validation threshold, with its patient-bootstrap interval."""

    films: int
    patients: int
    sensitivity: Estimate


@dataclass(frozen=True)
class Subgroups(JsonRecord):
    """best/subgroups.json: test sensitivity per subgroup the file names carry (empty where they carry none)."""

    confidence: float
    bootstrap_resamples: int
    groups: dict[str, SubgroupSensitivity]


@dataclass(frozen=True)
class AblationPlan(JsonRecord):
    """ablation/plan.json: the runs planned inside the budget, and what the budget left out."""

    seeds: int
    factors: tuple[str, ...]
    epochs: int
    variants: tuple[str, ...]
    runs: tuple[str, ...]
    skipped: tuple[str, ...]
    refused: str | None  # why the budget left no room for any run
    estimate_seconds: float


@dataclass(frozen=True)
class MethodScores(JsonRecord):
    """How far one Grad-CAM method's maps can be trusted, as means over the scored test films."""

    deletion_auc_mean: float | None
    random_deletion_auc_mean: float | None
    border_share_mean: float | None
    border_flagged: int
    mask_ratio_mean: float | None  # lesion energy over chance, on films with a lesion mask (the demo)
    mask_ratio_median: float | None
    films_with_masks: int


@dataclass(frozen=True)
class CamScores(JsonRecord):
    """gradcam/scores.json: each method's trust scores on a sample of the test films."""

    layer: str
    films_scored: int
    explained_class: str
    border_band: float
    border_warning: float
    methods: dict[str, MethodScores]


@dataclass(frozen=True)
class CamBaseline(JsonRecord):
    """gradcam/baseline.json: each method's paired comparison with random maps on the layer's own grid (a file
    of its own, so a report of an older study, which lacks it, still renders). Paired on the films the model
    called positive, where a map points at a finding that deleting can remove; the films called negative are
    paired apart (`other_*`), since there is no finding to delete there and a map may do worse than random."""

    random_grid: int
    confidence: float
    resamples: int
    differences: dict[str, Estimate]  # per method: mean per-film deletion AUC minus the random maps', with its interval
    films: str = "every image scored"  # which films `differences` pairs (older studies: all of them, pooled)
    other_films: str | None = None  # the films called negative, paired apart (None: older studies pooled them)
    other_differences: dict[str, Estimate] = field(default_factory=dict)


def read_manifest(manifest_path: Path) -> Manifest | None:
    """The manifest, or None when the study has not started."""
    return Manifest.read(manifest_path) if manifest_path.exists() else None

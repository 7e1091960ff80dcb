"""The config's sections as frozen dataclasses: every value is range-checked when a section is built, so a
wrong value fails with ConfigError naming its key before any work starts."""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study.budget import parse_duration
from study.errors import ConfigError
from study.results.vocab import (
    ASPECT_MODES,
    CAM_METHODS,
    CLASS_WEIGHTINGS,
    COLOR_MODES,
    FACTORS,
    GROUP_PRESETS,
    PRECISIONS,
    TEST_PATIENT_IDS,
    THRESHOLD_RULES,
    XLA_MODES,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataConfig:
    val_fraction: float
    split_seed: int
    aspect: str
    test_patient_ids: str
    group_pattern: str
    test_fraction: float
    positive_class: str
    color: str

    def __post_init__(self) -> None:
        _require(self.color in COLOR_MODES, "data.color", f"one of {COLOR_MODES}")
        _require(self.positive_class.strip() != "", "data.positive_class", "auto or the name of a class folder")
        _require(0.05 <= self.val_fraction <= 0.5, "data.val_fraction", "a share between 0.05 and 0.5")
        _require(self.aspect in ASPECT_MODES, "data.aspect", f"one of {ASPECT_MODES}")
        _require(self.test_patient_ids in TEST_PATIENT_IDS, "data.test_patient_ids", f"one of {TEST_PATIENT_IDS}")
        _require(0.05 <= self.test_fraction <= 0.5, "data.test_fraction", "a share between 0.05 and 0.5")
        if self.group_pattern not in GROUP_PRESETS:
            _check_group_pattern(self.group_pattern)


@dataclass(frozen=True)
class DemoConfig:
    train_images: int
    test_images: int
    normal_share: float
    seed: int

    def __post_init__(self) -> None:
        _require(self.train_images >= 40, "demo.train_images", "at least 40")
        _require(self.test_images >= 8, "demo.test_images", "at least 8")
        _require(0.1 <= self.normal_share <= 0.9, "demo.normal_share", "a share between 0.1 and 0.9")


@dataclass(frozen=True)
class ModelConfig:
    weights: str
    alpha: float
    bn_momentum: float
    horizontal_flip: bool
    precision: str
    xla: str
    require_gpu: bool
    deterministic: bool

    def __post_init__(self) -> None:
        _require(
            self.weights in ("imagenet", "none") or Path(self.weights).is_file(),
            "model.weights",
            f"imagenet, none or the path of an existing weights file (no file at {self.weights!r})",
        )
        _require(self.alpha in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4), "model.alpha", "one of 0.35, 0.5, 0.75, 1.0, 1.3, 1.4")
        _require(0.0 < self.bn_momentum < 1.0, "model.bn_momentum", "a value between 0 and 1")
        _require(self.precision in PRECISIONS, "model.precision", f"one of {PRECISIONS}")
        _require(self.xla in XLA_MODES, "model.xla", f"one of {XLA_MODES}")


@dataclass(frozen=True)
class SpaceConfig:
    resolutions: tuple[int, ...]
    augmentation: tuple[float, ...]
    dropout_min: float
    dropout_max: float
    unfrozen_layers: tuple[int, ...]
    class_weighting: tuple[str, ...]
    learning_rate_min: float
    learning_rate_max: float

    def __post_init__(self) -> None:
        _require(bool(self.resolutions) and min(self.resolutions) >= 32, "space.resolutions", "sizes of at least 32 px")
        _require(all(0.0 <= s <= 1.0 for s in self.augmentation), "space.augmentation", "strengths in [0, 1]")
        _require(0.0 <= self.dropout_min <= self.dropout_max < 1.0, "space.dropout_min", "0 <= min <= max < 1")
        _require(all(n >= -1 for n in self.unfrozen_layers), "space.unfrozen_layers", "counts >= 0, or -1 for all")
        _require(set(self.class_weighting) <= set(CLASS_WEIGHTINGS), "space.class_weighting", f"of {CLASS_WEIGHTINGS}")
        _require(0.0 < self.learning_rate_min <= self.learning_rate_max, "space.learning_rate_min", "0 < min <= max")


@dataclass(frozen=True)
class SearchConfig:
    max_epochs: int
    factor: int
    hyperband_iterations: int
    seed: int
    batch_size: int
    max_consecutive_failed_trials: int

    def __post_init__(self) -> None:
        _require(self.max_epochs >= 1, "search.max_epochs", "at least 1")
        _require(self.factor >= 2, "search.factor", "at least 2")
        _require(self.hyperband_iterations >= 1, "search.hyperband_iterations", "at least 1")
        _require(self.batch_size >= 1, "search.batch_size", "at least 1")


@dataclass(frozen=True)
class BudgetConfig:
    time: str
    search_share: float
    ablation_share: float
    memory_growth: float

    def __post_init__(self) -> None:
        parse_duration(self.time, "budget.time")
        _require(0.1 <= self.search_share <= 1.0, "budget.search_share", "a share between 0.1 and 1")
        _require(
            0.0 <= self.ablation_share <= 1.0 - self.search_share,
            "budget.ablation_share",
            f"a share between 0 and 1 - budget.search_share ({1.0 - self.search_share:g})",
        )
        _require(0.0 < self.memory_growth <= 0.9, "budget.memory_growth", "a share of the RAM in (0, 0.9]")

    @property
    def seconds(self) -> float | None:
        """The whole run's wall-clock budget in seconds; None for no limit."""
        return parse_duration(self.time, "budget.time")


@dataclass(frozen=True)
class AblationConfig:
    seeds: int
    factors: tuple[str, ...]
    resolution: tuple[int, ...]
    augmentation: tuple[float, ...]
    dropout: tuple[float, ...]
    unfrozen_layers: tuple[int, ...]
    class_weighting: tuple[str, ...]

    def __post_init__(self) -> None:
        _require(self.seeds >= 2, "ablation.seeds", "at least 2 (a spread needs two runs)")
        _require(set(self.factors) <= set(FACTORS), "ablation.factors", f"names of {FACTORS}")
        _require(len(set(self.factors)) == len(self.factors), "ablation.factors", "each factor once")
        _require(all(r >= 32 for r in self.resolution), "ablation.resolution", "sizes of at least 32 px")
        _require(all(0.0 <= s <= 1.0 for s in self.augmentation), "ablation.augmentation", "strengths in [0, 1]")
        _require(all(0.0 <= d < 1.0 for d in self.dropout), "ablation.dropout", "rates in [0, 1)")
        _require(all(n >= -1 for n in self.unfrozen_layers), "ablation.unfrozen_layers", "counts >= 0, or -1")
        _require(
            set(self.class_weighting) <= set(CLASS_WEIGHTINGS), "ablation.class_weighting", f"of {CLASS_WEIGHTINGS}"
        )


@dataclass(frozen=True)
class EvaluateConfig:
    threshold_rule: str
    bootstrap_resamples: int
    confidence: float
    seed: int

    def __post_init__(self) -> None:
        _require(self.threshold_rule in THRESHOLD_RULES, "evaluate.threshold_rule", f"one of {THRESHOLD_RULES}")
        _require(self.bootstrap_resamples >= 100, "evaluate.bootstrap_resamples", "at least 100")
        _require(0.5 < self.confidence < 1.0, "evaluate.confidence", "a level between 0.5 and 1")


@dataclass(frozen=True)
class GradcamConfig:
    layer: str
    methods: tuple[str, ...]
    per_category: int
    score_films: int
    border_band: float
    border_warning: float

    def __post_init__(self) -> None:
        _require(bool(self.methods) and set(self.methods) <= set(CAM_METHODS), "gradcam.methods", f"of {CAM_METHODS}")
        _require(self.per_category >= 1, "gradcam.per_category", "at least 1")
        _require(self.score_films >= 0, "gradcam.score_films", "0 (all test films) or more")
        _require(0.0 < self.border_band < 0.5, "gradcam.border_band", "a share of the side between 0 and 0.5")
        _require(0.0 < self.border_warning <= 1.0, "gradcam.border_warning", "a share of map energy in (0, 1]")


@dataclass(frozen=True)
class StudyConfig:
    name: str
    data: DataConfig
    demo: DemoConfig
    model: ModelConfig
    space: SpaceConfig
    search: SearchConfig
    budget: BudgetConfig
    ablation: AblationConfig
    evaluate: EvaluateConfig
    gradcam: GradcamConfig

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_group_pattern(pattern: str) -> None:
    """A custom grouping must compile and capture exactly one group, the group's name."""
    expected = f"one of {GROUP_PRESETS} or a regular expression with one capture group, e.g. '^(.+)_\\d+$'"
    try:
        groups = re.compile(pattern).groups
    except re.error as error:
        message = f"config key data.group_pattern: {pattern!r} does not compile ({error}); expected {expected}"
        raise ConfigError(message) from error
    _require(groups == 1, "data.group_pattern", f"{expected} ({pattern!r} has {groups})")


def _require(condition: bool, key: str, expected: str) -> None:
    if not condition:
        raise ConfigError(f"config key {key}: expected {expected}")

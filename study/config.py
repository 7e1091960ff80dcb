"""Study configuration: TOML files into frozen dataclasses, with `--set section.key=value` overrides.

Defaults live in one readable place, configs/overnight.toml; demo.toml and smoke.toml name it as their
`base` and change only what differs. Every key is checked: an unknown key, a missing key or a wrong type
raises ConfigError naming the key, which the CLI turns into exit code 2.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from study.budget import parse_duration
from study.errors import ConfigError

logger = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
CLASS_WEIGHTINGS = ("none", "balanced", "sqrt")
ASPECT_MODES = ("squash", "pad", "crop")
THRESHOLD_RULES = ("youden", "f1", "fixed")
CAM_METHODS = ("gradcam", "gradcam++")
PRECISIONS = ("auto", "mixed_float16", "float32")
XLA_MODES = ("auto", "on", "off")
FACTORS = ("resolution", "augmentation", "dropout", "unfrozen_layers", "class_weighting")


@dataclass(frozen=True)
class DataConfig:
    val_fraction: float
    split_seed: int
    aspect: str

    def __post_init__(self) -> None:
        _require(0.05 <= self.val_fraction <= 0.5, "data.val_fraction", "a share between 0.05 and 0.5")
        _require(self.aspect in ASPECT_MODES, "data.aspect", f"one of {ASPECT_MODES}")


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
    memory_share: float

    def __post_init__(self) -> None:
        parse_duration(self.time, "budget.time")
        _require(0.1 <= self.search_share <= 1.0, "budget.search_share", "a share between 0.1 and 1")
        _require(
            0.0 <= self.ablation_share <= 1.0 - self.search_share,
            "budget.ablation_share",
            f"a share between 0 and 1 - budget.search_share ({1.0 - self.search_share:g})",
        )
        _require(0.0 < self.memory_share <= 0.9, "budget.memory_share", "a share of the RAM in (0, 0.9]")

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


def _require(condition: bool, key: str, expected: str) -> None:
    if not condition:
        raise ConfigError(f"config key {key}: expected {expected}")


def builtin_config_path(name: str) -> Path:
    return CONFIG_DIR / f"{name}.toml"


def _read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a config file, merging it over the file its `base` key names (relative to it)."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (expected a TOML file such as configs/overnight.toml)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from error
    base_name = raw.pop("base", None)
    if base_name is None:
        return raw
    base_path = (path.parent / str(base_name)).resolve()
    if base_path in seen:
        raise ConfigError(f"{path}: key base: files name each other in a loop")
    merged = _read_toml(base_path, (*seen, base_path))
    for section, values in raw.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return merged


def parse_override(text: str) -> tuple[str, str, Any]:
    """`section.key=value` -> (section, key, value); the value is read as TOML, else taken as a string."""
    name, sep, value_text = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. --set search.max_epochs=12")
    try:
        value = tomllib.loads(f"v = {value_text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text.strip()
    return section, key, value


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check one value against its dataclass annotation; ints are accepted where floats are expected."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {key}: expected a list of {item_type.__name__}, got {value!r}")
        return tuple(_coerce(key, item, item_type) for item in value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is bool and not isinstance(value, bool):
        raise ConfigError(f"config key {key}: expected true or false, got {value!r}")
    if annotation is int and isinstance(value, bool):
        raise ConfigError(f"config key {key}: expected an integer, got {value!r}")
    if not isinstance(value, annotation):
        raise ConfigError(f"config key {key}: expected {annotation.__name__}, got {value!r}")
    return value


def _build_section(section: str, cls: type, values: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigError(f"config key {section}.{unknown[0]}: unknown key (known: {', '.join(sorted(hints))})")
    missing = sorted(set(hints) - set(values))
    if missing:
        raise ConfigError(f"config key {section}.{missing[0]}: missing (every key must be set)")
    return cls(**{name: _coerce(f"{section}.{name}", values[name], hints[name]) for name in hints})


def load_config(path: Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """Load a config file, apply `--set` overrides (each one logged), and validate every key."""
    raw = _read_toml(path)
    for text in overrides:
        section, key, value = parse_override(text)
        if not isinstance(raw.get(section), dict):
            raise ConfigError(f"--set {text!r}: unknown config section {section!r}")
        logger.info("override %s.%s = %r", section, key, value)
        raw[section] = {**raw[section], key: value}
    hints = typing.get_type_hints(StudyConfig)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise ConfigError(f"config key {unknown[0]}: unknown section (known: {', '.join(sorted(hints))})")
    sections: dict[str, Any] = {}
    for name, cls in hints.items():
        if name == "name":
            sections[name] = _coerce("name", raw.get("name", path.stem), str)
            continue
        if not isinstance(raw.get(name), dict):
            raise ConfigError(f"config key {name}: missing section [{name}]")
        sections[name] = _build_section(name, cls, raw[name])
    return StudyConfig(**sections)

"""The study's configuration. Public face: `StudyConfig` and its sections (`sections`), `load_config` for a
TOML file with `--set` overrides, and `config_to_json`/`config_from_json` for results/config.json (`loading`)."""

from study.config.loading import (
    CONFIG_DIR,
    builtin_config_path,
    config_from_json,
    config_to_json,
    load_config,
    parse_override,
)
from study.config.sections import (
    AblationConfig,
    BudgetConfig,
    DataConfig,
    DemoConfig,
    EvaluateConfig,
    GradcamConfig,
    ModelConfig,
    SearchConfig,
    SpaceConfig,
    StudyConfig,
)

__all__ = [
    "CONFIG_DIR",
    "AblationConfig",
    "BudgetConfig",
    "DataConfig",
    "DemoConfig",
    "EvaluateConfig",
    "GradcamConfig",
    "ModelConfig",
    "SearchConfig",
    "SpaceConfig",
    "StudyConfig",
    "builtin_config_path",
    "config_from_json",
    "config_to_json",
    "load_config",
    "parse_override",
]

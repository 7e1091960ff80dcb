"""Study configuration: TOML files into frozen dataclasses, with `--set section.key=value` overrides.

Defaults live in one readable place, configs/overnight.toml; demo.toml and smoke.toml name it as their
`base` and change only what differs. Every key is checked: an unknown key, a missing key or a wrong type
raises ConfigError naming the key, which the CLI turns into exit code 2. The resolved config is saved as
results/config.json and read back through the same checks (`config_from_json`).
"""

from __future__ import annotations

import json
import logging
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomllib

from study.config.sections import StudyConfig
from study.errors import ConfigError

logger = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent.parent.parent / "configs"


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
    return _build_config(raw, path.stem)


def config_to_json(cfg: StudyConfig) -> str:
    return json.dumps(cfg.to_dict(), indent=2) + "\n"


# Keys added after studies were saved, each with the value that reproduces what the tool did before it: a study
# saved without the key reads as the study it was (and resumes only with that value).
ADDED_KEYS: dict[tuple[str, str], Any] = {
    ("data", "test_patient_ids"): "separate",
    ("data", "group_pattern"): "chest_xray",
    ("data", "test_fraction"): 0.2,
    ("data", "positive_class"): "auto",
    ("data", "color"): "auto",  # older studies were chest X-rays, which auto reads as gray, as they were
}


def config_from_json(text: str, source: Path) -> StudyConfig:
    """A saved config.json, through the same checks as a config file (a file it names must still exist)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}: not valid JSON ({error})") from error
    for (section, key), value in ADDED_KEYS.items():
        if isinstance(raw.get(section), dict) and key not in raw[section]:
            raw[section] = {**raw[section], key: value}
    return _build_config(raw, str(raw.get("name", source.stem)))


def _build_config(raw: Mapping[str, Any], default_name: str) -> StudyConfig:
    hints = typing.get_type_hints(StudyConfig)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise ConfigError(f"config key {unknown[0]}: unknown section (known: {', '.join(sorted(hints))})")
    sections: dict[str, Any] = {}
    for name, cls in hints.items():
        if name == "name":
            sections[name] = _coerce("name", raw.get("name", default_name), str)
            continue
        if not isinstance(raw.get(name), dict):
            raise ConfigError(f"config key {name}: missing section [{name}]")
        sections[name] = _build_section(name, cls, raw[name])
    return StudyConfig(**sections)

"""Config files load into frozen dataclasses; every bad key is named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from study.config import builtin_config_path, load_config
from study.errors import ConfigError


@pytest.mark.parametrize("name", ["overnight", "demo", "smoke"])
def test_builtin_configs_load_and_are_frozen(name: str) -> None:
    cfg = load_config(builtin_config_path(name))
    assert cfg.name == name
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.search.max_epochs = 1  # type: ignore[misc]


def test_demo_inherits_what_it_does_not_override() -> None:
    overnight = load_config(builtin_config_path("overnight"))
    demo = load_config(builtin_config_path("demo"))
    assert demo.model.weights == "none"
    assert demo.evaluate == overnight.evaluate
    assert demo.space.class_weighting == overnight.space.class_weighting


def test_override_is_typed_and_applied() -> None:
    cfg = load_config(
        builtin_config_path("demo"), ["search.max_epochs=5", "space.resolutions=[96]", "model.weights=none"]
    )
    assert cfg.search.max_epochs == 5
    assert cfg.space.resolutions == (96,)
    assert cfg.model.weights == "none"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("search.max_epoch=5", "search.max_epoch"),
        ("search.max_epochs=many", "search.max_epochs"),
        ("space.class_weighting=['inverse']", "space.class_weighting"),
        ("nosuch.key=1", "nosuch"),
        ("model.horizontal_flip=1", "model.horizontal_flip"),
        ("data.aspect=stretch", "data.aspect"),
    ],
)
def test_bad_keys_and_types_are_named(override: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config(builtin_config_path("demo"), [override])


def test_unknown_key_in_a_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(f'base = "{builtin_config_path("demo")}"\n[search]\nepochs = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"search\.epochs"):
        load_config(path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [("person(", "does not compile"), ("person\\d+", "has 0"), ("(person)(\\d+)", "has 2")],
)
def test_a_group_pattern_must_compile_with_one_capture_group(pattern: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"data\.group_pattern") as raised:
        load_config(builtin_config_path("demo"), [f"data.group_pattern={pattern}"])
    assert problem in str(raised.value)

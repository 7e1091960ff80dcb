"""Which ablation runs are made: variants of the best configuration, and the cuts a short budget forces."""

from __future__ import annotations

from dataclasses import replace

import pytest

from study.ablation.plan import BEST, factor_levels, plan_runs, run_seeds, variants
from study.config import StudyConfig, builtin_config_path, load_config

BEST_VALUES = {
    "resolution": 192,
    "augmentation": 0.5,
    "dropout": 0.21,
    "unfrozen_layers": 30,
    "class_weighting": "none",
    "learning_rate": 3e-4,
}


@pytest.fixture
def cfg() -> StudyConfig:
    return load_config(builtin_config_path("overnight"))


def test_default_levels_are_both_ends_of_the_search(cfg: StudyConfig) -> None:
    assert factor_levels(cfg) == {
        "resolution": (160, 224),
        "augmentation": (0.0, 1.0),
        "dropout": (0.0, 0.5),
        "unfrozen_layers": (0, -1),
        "class_weighting": ("none", "balanced"),
    }


def test_variants_change_one_factor_and_skip_the_best_level(cfg: StudyConfig) -> None:
    found = variants(BEST_VALUES, cfg)
    assert found[0].name == BEST and found[0].values == BEST_VALUES
    names = [v.name for v in found[1:]]
    # priority order of overnight.toml; class_weighting=none is the best's own level, so only balanced
    assert names == [
        "unfrozen_layers=0", "unfrozen_layers=-1", "augmentation=0.0", "augmentation=1.0",
        "class_weighting=balanced", "resolution=160", "resolution=224", "dropout=0.0", "dropout=0.5",
    ]  # fmt: skip
    for variant in found[1:]:
        changed = {k for k in BEST_VALUES if variant.values[k] != BEST_VALUES[k]}
        assert changed == {variant.factor}


def test_configured_levels_replace_the_defaults(cfg: StudyConfig) -> None:
    cfg = replace(cfg, ablation=replace(cfg.ablation, factors=("dropout",), dropout=(0.21, 0.4)))
    assert [v.name for v in variants(BEST_VALUES, cfg)] == [BEST, "dropout=0.4"]


def test_plan_keeps_everything_when_it_fits(cfg: StudyConfig) -> None:
    found = variants(BEST_VALUES, cfg)
    plan = plan_runs(found, cfg, set(), lambda v: 10.0, seconds_left=1e9)
    assert plan.seeds == 3 and len(plan.runs) == 3 * len(found) and plan.skipped == ()
    assert [run.run_id for run in plan.runs[:3]] == [f"best_seed{s}" for s in run_seeds(0, 3)]


def test_short_budget_cuts_seeds_to_two_before_any_factor(cfg: StudyConfig) -> None:
    found = variants(BEST_VALUES, cfg)  # 10 variants
    plan = plan_runs(found, cfg, set(), lambda v: 10.0, seconds_left=2 * 10 * 10.0)
    assert plan.seeds == 2 and len(plan.runs) == 20
    assert plan.skipped == ("2 seeds per variant instead of 3: the time budget",)


def test_shorter_budget_drops_factors_from_the_end_of_the_priority_list(cfg: StudyConfig) -> None:
    found = variants(BEST_VALUES, cfg)
    # best + unfrozen_layers (2 levels) + augmentation (2 levels) at 2 seeds = 10 runs
    plan = plan_runs(found, cfg, set(), lambda v: 10.0, seconds_left=10 * 10.0)
    assert plan.seeds == 2 and plan.factors == ("unfrozen_layers", "augmentation")
    assert any(note.startswith("class_weighting: left out by the time budget") for note in plan.skipped)
    assert any(note.startswith("dropout: left out by the time budget") for note in plan.skipped)


def test_finished_runs_cost_nothing_when_planning_a_resume(cfg: StudyConfig) -> None:
    found = variants(BEST_VALUES, cfg)
    everything = plan_runs(found, cfg, set(), lambda v: 10.0, seconds_left=1e9)
    done = {run.run_id for run in everything.runs[:-1]}
    resumed = plan_runs(found, cfg, done, lambda v: 10.0, seconds_left=10.0)
    assert resumed.runs == everything.runs and resumed.estimate_seconds == 10.0


def test_no_room_for_two_seeds_refuses_with_the_numbers(cfg: StudyConfig) -> None:
    plan = plan_runs(variants(BEST_VALUES, cfg), cfg, set(), lambda v: 60.0, seconds_left=100.0)
    assert plan.runs == () and plan.refused is not None
    assert "need about 6m00s, 1m40s was left" in plan.refused


def test_demo_and_smoke_configs_load_their_ablation() -> None:
    smoke = load_config(builtin_config_path("smoke"))
    assert smoke.ablation.seeds == 2 and smoke.ablation.factors == ("augmentation",)

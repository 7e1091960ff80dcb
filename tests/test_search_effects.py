"""What the search's trials suggest per factor: means over each bracket's first round (Hyperband's random draws;
never a promoted trial, nor across budgets, where a longer-trained trial would flatter its level), dropout in
three bins, and importance only from ten trials, with the forest's out-of-bag R²."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from study.ablation.effects import MIN_TRIALS_FOR_IMPORTANCE, completed_trials, factor_effects, importance
from study.results import trial_columns, write_csv
from study.results.vocab import HP_NAMES, MIN_OOB_R2

BASE = {"resolution": 64, "augmentation": 0.0, "dropout": 0.1, "unfrozen_layers": -1, "class_weighting": "none",
        "learning_rate": 1e-3}  # fmt: skip


def _write(path: Path, trials: list[tuple[int, dict[str, object], float | None]], promoted: int = 0) -> Path:
    """Each epoch budget is its own bracket's first round; the last `promoted` trials are a later round."""
    rows = [
        {"trial_id": f"{i:04d}", "status": "COMPLETED" if auc is not None else "FAILED", "epochs": epochs,
         "bracket": 10 - epochs, "round": int(i >= len(trials) - promoted), "initial_epoch": 0,
         **{f"hp_{k}": v for k, v in {**BASE, **values}.items()}, "val_auc": auc}
        for i, (epochs, values, auc) in enumerate(trials)
    ]  # fmt: skip
    write_csv(path, trial_columns(HP_NAMES), rows)
    return path


def test_means_are_taken_over_each_brackets_random_draws_only(tmp_path: Path) -> None:
    trials = [
        (1, {"resolution": 64}, 0.70), (1, {"resolution": 64}, 0.74), (1, {"resolution": 80}, 0.80),
        (3, {"resolution": 64}, 0.95), (3, {"resolution": 80}, 0.90), (3, {"resolution": 80}, 0.92),
        (1, {"resolution": 80}, None),  # failed: not counted
        (3, {"resolution": 80}, 0.99),  # promoted to a later round for its val AUC: not a random draw
    ]  # fmt: skip
    effects = factor_effects(completed_trials(_write(tmp_path / "trials.csv", trials, promoted=1)), 0.95)
    rows = [(r.factor, r.level, r.bracket, r.epochs, r.n, round(r.mean, 6)) for r in effects.itertuples()]
    assert rows == [
        ("resolution", "64", "9", 1, 2, 0.72), ("resolution", "80", "9", 1, 1, 0.80),
        ("resolution", "64", "7", 3, 1, 0.95), ("resolution", "80", "7", 3, 2, 0.91),
    ]  # fmt: skip
    two = effects.iloc[0]
    half = stats.t.ppf(0.975, 1) * stats.tstd([0.70, 0.74]) / math.sqrt(2)
    assert two.ci_low == pytest.approx(0.72 - half) and two.ci_high == pytest.approx(0.72 + half)
    near_one = effects.iloc[3]  # 0.91 +- 12.7 x 0.01: the t interval reaches past 1 and is cut there
    assert near_one.ci_high == 1.0 and near_one.ci_low == pytest.approx(0.91 - stats.t.ppf(0.975, 1) * 0.01)


def test_dropout_is_binned_over_the_searched_range_and_words_sort_last(tmp_path: Path) -> None:
    trials = [
        (1, {"dropout": 0.0, "class_weighting": "balanced"}, 0.7), (1, {"dropout": 0.05}, 0.8),
        (1, {"dropout": 0.15}, 0.6), (1, {"dropout": 0.3}, 0.9),
    ]  # fmt: skip
    effects = factor_effects(completed_trials(_write(tmp_path / "trials.csv", trials)), 0.95)
    assert [(r.factor, r.level, r.n) for r in effects.itertuples()] == [
        ("dropout", "0.00-0.10", 2), ("dropout", "0.10-0.20", 1), ("dropout", "0.20-0.30", 1),
        ("class_weighting", "balanced", 1), ("class_weighting", "none", 3),
    ]  # fmt: skip


def test_importance_needs_enough_trials_and_finds_the_factor_that_moves_auc(tmp_path: Path) -> None:
    few = [(1, {"resolution": 64}, 0.7)] * (MIN_TRIALS_FOR_IMPORTANCE - 1)
    assert importance(completed_trials(_write(tmp_path / "few.csv", few)), seed=0).empty
    trials = [
        (1, {"resolution": size, "augmentation": augmentation}, 0.6 + 0.3 * (size == 80) + 0.01 * augmentation)
        for size in (64, 80) for augmentation in (0.0, 0.1, 0.2, 0.3) for _ in range(2)
    ]  # fmt: skip
    ranked = importance(completed_trials(_write(tmp_path / "many.csv", trials)), seed=0)
    assert set(ranked["factor"]) == {"resolution", "augmentation"}  # constant features are left out
    assert ranked.set_index("factor")["importance"].idxmax() == "resolution"
    assert ranked["importance"].sum() == pytest.approx(1.0)
    assert ranked["oob_r2"].nunique() == 1 and ranked["oob_r2"].iloc[0] > 0.5  # resolution predicts unseen trials
    raw = ranked.set_index("factor")["importance_raw"]
    assert raw["resolution"] > raw["augmentation"] >= 0


def test_a_forest_that_predicts_nothing_says_so(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    trials = [(1, {"resolution": int(size), "augmentation": 0.0}, float(rng.uniform(0.6, 0.9)))
              for size in rng.choice([64, 80], 30)]  # fmt: skip
    ranked = importance(completed_trials(_write(tmp_path / "noise.csv", trials)), seed=0)
    assert ranked["oob_r2"].iloc[0] < MIN_OOB_R2

"""Evidence that costs nothing: what the search's own trials say about each factor. Observational only.

Hyperband trains trials to different epoch budgets and continues the promising ones, so a factor's raw
mean over all trials mixes its effect with the budget. Marginal means are therefore computed within one
epoch budget at a time, and the importance model sees the budget as a feature of its own. Neither is an
experiment: the controlled answer is the ablation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import permutation_importance

from study.ablation.stats import seed_interval
from study.results import FACTOR_EFFECT_COLUMNS, HP_PREFIX, IMPORTANCE_COLUMNS, ResultsPaths, read_csv, write_csv
from study.results.vocab import FACTORS

logger = logging.getLogger(__name__)

IMPORTANCE_FEATURES = (*FACTORS, "learning_rate", "epochs")
DROPOUT_BINS = 3
MIN_TRIALS_FOR_IMPORTANCE = 10
IMPORTANCE_METHOD = "random-forest permutation importance on val AUC (observational, in-sample)"


def _completed(rows: Sequence[Mapping[str, str]]) -> list[Mapping[str, str]]:
    return [row for row in rows if row["status"] == "COMPLETED" and row.get("val_auc")]


def _dropout_bin(value: float, low: float, high: float) -> str:
    """Dropout is sampled uniformly: three equal-width bins, labelled by their range."""
    width = (high - low) / DROPOUT_BINS or 1.0
    index = min(int((value - low) / width), DROPOUT_BINS - 1)
    return f"{low + index * width:.2f}-{low + (index + 1) * width:.2f}"


def factor_effects(rows: Sequence[Mapping[str, str]], confidence: float) -> list[dict[str, Any]]:
    """Mean val AUC per factor level within each epoch budget, with a t interval over the trials."""
    completed = _completed(rows)
    dropouts = [float(row[HP_PREFIX + "dropout"]) for row in completed]
    effects = []
    for factor in FACTORS:
        if len({row[HP_PREFIX + factor] for row in completed}) < 2:
            continue  # one level searched (or tried): nothing to compare
        groups: dict[tuple[int, str], list[float]] = {}
        for row in completed:
            value = row[HP_PREFIX + factor]
            level = _dropout_bin(float(value), min(dropouts), max(dropouts)) if factor == "dropout" else value
            groups.setdefault((int(row["epochs"]), level), []).append(float(row["val_auc"]))
        for (epochs, level), values in sorted(groups.items(), key=lambda item: (item[0][0], _sort_key(item[0][1]))):
            interval = seed_interval(values, confidence)
            effects.append({"factor": factor, "level": level, "epochs": epochs, "n": interval.n,
                            "mean": interval.mean, "ci_low": interval.low, "ci_high": interval.high})  # fmt: skip
    return effects


def _sort_key(level: str) -> tuple[int, float | str]:
    try:
        return (0, float(level.split("-")[0]) if "-" in level[1:] else float(level))
    except ValueError:
        return (1, level)


def _feature(row: Mapping[str, str], name: str) -> float:
    if name == "epochs":
        return float(row["epochs"])
    value = row[HP_PREFIX + name]
    if name == "class_weighting":
        return float(("none", "sqrt", "balanced").index(value))  # ordered by strength of the correction
    return math.log10(float(value)) if name == "learning_rate" else float(value)


def importance(rows: Sequence[Mapping[str, str]], seed: int) -> list[dict[str, Any]]:
    """Share of the forest's accuracy lost when one factor is shuffled (summing to 1 over the factors);
    empty below MIN_TRIALS_FOR_IMPORTANCE completed trials, where a forest would fit noise."""
    completed = _completed(rows)
    if len(completed) < MIN_TRIALS_FOR_IMPORTANCE:
        return []
    features = [name for name in IMPORTANCE_FEATURES if len({_feature(row, name) for row in completed}) > 1]
    x = np.array([[_feature(row, name) for name in features] for row in completed])
    y = np.array([float(row["val_auc"]) for row in completed])
    forest = RandomForestRegressor(n_estimators=300, min_samples_leaf=2, random_state=seed).fit(x, y)
    result = permutation_importance(forest, x, y, n_repeats=20, random_state=seed)
    total = float(np.clip(result.importances_mean, 0, None).sum()) or 1.0
    return [
        {"factor": name, "importance": max(float(mean), 0.0) / total, "importance_sd": float(sd) / total,
         "n_trials": len(completed), "method": IMPORTANCE_METHOD}
        for name, mean, sd in zip(features, result.importances_mean, result.importances_std, strict=True)
    ]  # fmt: skip


def write_search_effects(paths: ResultsPaths, confidence: float, seed: int) -> None:
    """search/factor_effects.csv and search/importance.csv from trials.csv."""
    rows = read_csv(paths.trials_csv)
    write_csv(paths.factor_effects, FACTOR_EFFECT_COLUMNS, factor_effects(rows, confidence))
    ranked = importance(rows, seed)
    write_csv(paths.importance, IMPORTANCE_COLUMNS, ranked)
    if ranked:
        top = max(ranked, key=lambda row: row["importance"])
        logger.info("search (observational): %s matters most for val AUC (%.0f%% of the importance)",
                    top["factor"], 100 * top["importance"])  # fmt: skip
    else:
        logger.info("search: fewer than %d completed trials, no importance estimate", MIN_TRIALS_FOR_IMPORTANCE)

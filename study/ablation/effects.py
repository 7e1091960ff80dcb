"""Evidence that costs nothing: what the search's own trials say about each factor. Observational only.

Hyperband trains trials to different epoch budgets and continues the promising ones, so a factor's raw
mean over all trials mixes its effect with the budget, and with the promotion: a later round holds the trials
chosen for their validation AUC on this same validation set. Marginal means are therefore computed on each
bracket's first round only, Hyperband's random draws, one epoch budget at a time. The importance model sees
the budget as a feature of its own and reports its out-of-bag R², below which it explains nothing. Neither
is an experiment: the controlled answer is the ablation.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import permutation_importance

from study.ablation.stats import seed_interval
from study.results import FACTOR_EFFECT_COLUMNS, HP_PREFIX, IMPORTANCE_COLUMNS, ResultsPaths, write_csv
from study.results.vocab import FACTORS, MIN_OOB_R2

logger = logging.getLogger(__name__)

IMPORTANCE_FEATURES = (*FACTORS, "learning_rate", "epochs")
DROPOUT_BINS = 3
MIN_TRIALS_FOR_IMPORTANCE = 10
IMPORTANCE_METHOD = "random-forest permutation importance on val AUC (observational, in-sample)"
WEIGHTING_STRENGTH = {"none": 0.0, "sqrt": 1.0, "balanced": 2.0}  # the class_weighting choices, by strength


def completed_trials(trials_csv: Path) -> pd.DataFrame:
    """The completed, scored trials of trials.csv; hyperparameter cells stay text, so a level reads as written."""
    trials = pd.read_csv(trials_csv, dtype=str, keep_default_na=False)
    completed = trials[(trials["status"] == "COMPLETED") & (trials["val_auc"] != "")]
    return completed.assign(val_auc=completed["val_auc"].astype(float), epochs=completed["epochs"].astype(int))


def _dropout_bins(values: pd.Series) -> pd.Series:
    """Dropout is sampled uniformly: three equal-width bins over the searched range, labelled by their range."""
    low, high = values.min(), values.max()
    width = (high - low) / DROPOUT_BINS or 1.0
    index = ((values - low) // width).clip(upper=DROPOUT_BINS - 1).astype(int)
    return index.map(lambda i: f"{low + i * width:.2f}-{low + (i + 1) * width:.2f}")


def factor_effects(trials: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Mean val AUC per factor level among each bracket's first-round trials (random draws, one epoch budget),
    with a t interval over the trials cut to the AUC's range."""
    drawn = trials[trials["round"] == "0"]
    effects = []
    for factor in FACTORS:
        column = drawn[HP_PREFIX + factor]
        if column.nunique() < 2:
            continue  # one level searched (or drawn): nothing to compare
        level = _dropout_bins(column.astype(float)) if factor == "dropout" else column
        groups = drawn.groupby([drawn["bracket"], drawn["epochs"], level.rename("level")])["val_auc"]
        for (bracket, epochs, value), aucs in groups:
            interval = seed_interval(aucs.to_numpy(), confidence, bounds=(0.0, 1.0))
            effects.append({"factor": factor, "level": value, "bracket": bracket, "epochs": epochs,
                            "n": interval.n, "mean": interval.mean, "ci_low": interval.low,
                            "ci_high": interval.high, "confidence": confidence})  # fmt: skip
    table = pd.DataFrame(effects, columns=list(FACTOR_EFFECT_COLUMNS))
    if table.empty:
        return table
    order = table.assign(rank=table["factor"].map(FACTORS.index), numeric=table["level"].map(_level_number))
    return table.loc[order.sort_values(["rank", "epochs", "bracket", "numeric", "level"], na_position="last").index]


def _level_number(level: str) -> float:
    """A level's number for sorting ("0.10-0.20" sorts by its lower end); NaN for a word such as "balanced"."""
    try:
        return float(level.split("-")[0]) if "-" in level[1:] else float(level)
    except ValueError:
        return float("nan")


def _features(trials: pd.DataFrame) -> pd.DataFrame:
    """The importance model's inputs: numbers (log learning rate, ordered class weighting) for each feature."""
    features = pd.DataFrame(
        {name: trials[HP_PREFIX + name].astype(float) for name in ("resolution", "augmentation", "dropout",
                                                                    "unfrozen_layers")}
    )  # fmt: skip
    features["class_weighting"] = trials[HP_PREFIX + "class_weighting"].map(WEIGHTING_STRENGTH)
    features["learning_rate"] = np.log10(trials[HP_PREFIX + "learning_rate"].astype(float))
    features["epochs"] = trials["epochs"].astype(float)
    return features[list(IMPORTANCE_FEATURES)]


def importance(trials: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Share of the forest's accuracy lost when one factor is shuffled (summing to 1 over the factors), the raw
    loss (in R²) and the forest's out-of-bag R² (how well it predicts trials it did not see); empty below
    MIN_TRIALS_FOR_IMPORTANCE completed trials, where a forest would fit noise."""
    if len(trials) < MIN_TRIALS_FOR_IMPORTANCE:
        return pd.DataFrame(columns=list(IMPORTANCE_COLUMNS))
    features = _features(trials)
    features = features.loc[:, features.nunique() > 1]  # a constant feature cannot matter
    forest = RandomForestRegressor(n_estimators=300, min_samples_leaf=2, oob_score=True, random_state=seed)
    forest.fit(features.to_numpy(), trials["val_auc"].to_numpy())
    result = permutation_importance(
        forest, features.to_numpy(), trials["val_auc"].to_numpy(), n_repeats=20, random_state=seed
    )
    total = float(np.clip(result.importances_mean, 0, None).sum()) or 1.0
    return pd.DataFrame(
        {
            "factor": features.columns,
            "importance": np.clip(result.importances_mean, 0, None) / total,
            "importance_sd": result.importances_std / total,
            "importance_raw": result.importances_mean,
            "oob_r2": float(forest.oob_score_),
            "n_trials": len(trials),
            "method": IMPORTANCE_METHOD,
        }
    )


def write_search_effects(paths: ResultsPaths, confidence: float, seed: int) -> None:
    """search/factor_effects.csv and search/importance.csv from trials.csv."""
    trials = completed_trials(paths.trials_csv)
    write_csv(paths.factor_effects, FACTOR_EFFECT_COLUMNS, factor_effects(trials, confidence).to_dict("records"))
    ranked = importance(trials, seed)
    write_csv(paths.importance, IMPORTANCE_COLUMNS, ranked.to_dict("records"))
    if ranked.empty:
        logger.info("search: fewer than %d completed trials, no importance estimate", MIN_TRIALS_FOR_IMPORTANCE)
    elif ranked["oob_r2"].iloc[0] < MIN_OOB_R2:
        logger.info("search: the importance forest explains nothing (out-of-bag R² %.2f)", ranked["oob_r2"].iloc[0])
    else:
        top = ranked.loc[ranked["importance"].idxmax()]
        logger.info("search (observational): %s matters most for val AUC (%.0f%% of the importance, out-of-bag "
                    "R² %.2f)", top["factor"], 100 * top["importance"], top["oob_r2"])  # fmt: skip

"""The ablation statistics against hand-computed cases and a brute-force patient bootstrap."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from study.ablation.stats import paired_delta, seed_interval
from study.ablation.tables import summarise
from study.config import builtin_config_path, load_config
from study.results import ABLATION_RUN_COLUMNS, PREDICTION_COLUMNS, SPLIT_COLUMNS, ResultsPaths, write_csv


def test_seed_interval_is_the_t_interval_by_hand() -> None:
    # mean 0.8, sd 0.1 (ddof 1), n 3: half width t(0.975, 2) * 0.1 / sqrt(3) = 4.302653 * 0.057735 = 0.248414
    interval = seed_interval([0.7, 0.8, 0.9], 0.95)
    assert interval.n == 3 and math.isclose(interval.mean, 0.8) and math.isclose(interval.sd, 0.1)
    assert math.isclose(interval.low, 0.8 - 0.248414, abs_tol=1e-6)
    assert math.isclose(interval.high, 0.8 + 0.248414, abs_tol=1e-6)


def test_seed_interval_of_one_value_has_no_spread() -> None:
    interval = seed_interval([0.9], 0.95)
    assert interval.mean == 0.9 and math.isnan(interval.low) and math.isnan(interval.sd)


def test_paired_delta_by_hand() -> None:
    # differences 0.10, 0.05, 0.05: mean 0.0666667, sd 0.0288675, se 0.0166667, t(0.975, 2) 4.302653
    delta = paired_delta([0.8, 0.9, 0.85], [0.7, 0.85, 0.8], 0.95)
    assert delta.n == 3 and math.isclose(delta.mean, 0.0666667, abs_tol=1e-6)
    assert math.isclose(delta.low, 0.0666667 - 0.0717109, abs_tol=1e-6)
    assert math.isclose(delta.high, 0.0666667 + 0.0717109, abs_tol=1e-6)
    assert math.isclose(delta.p, 0.0571910, abs_tol=1e-6)  # t = 4, df = 2


def test_paired_delta_pairs_by_seed_not_by_pooling() -> None:
    """A near-constant shift is clear when paired, though the seeds' spread (0.1) is far larger than it."""
    delta = paired_delta([0.711, 0.809, 0.911], [0.7, 0.8, 0.9], 0.95)
    assert 0.0 < delta.low < delta.mean < delta.high < 0.02 and delta.p < 0.01


def test_paired_delta_without_spread_claims_no_interval() -> None:
    """Two seeds that moved accuracy by the same film count: no spread, so no interval and no p."""
    delta = paired_delta([0.65, 0.60], [0.80, 0.75], 0.95)
    assert math.isclose(delta.mean, -0.15) and math.isnan(delta.low) and math.isnan(delta.p)


def _write_predictions(
    paths: ResultsPaths, run_id: str, films: list[tuple[str, int, float]], order: np.ndarray
) -> None:
    rows = ({"split": "test", "path": films[i][0], "label": films[i][1], "prob": films[i][2]} for i in order)
    write_csv(paths.ablation_predictions(run_id), PREDICTION_COLUMNS, rows)


def test_paired_auc_bootstrap_equals_brute_force_resampling_aligned_by_path(tmp_path: Path) -> None:
    """Both models of a seed are scored on the same resampled patients; prediction files in different orders
    still pair each film with itself."""
    rng = np.random.default_rng(3)
    cfg = load_config(builtin_config_path("smoke"), ["evaluate.bootstrap_resamples=200"])
    paths = ResultsPaths(tmp_path)
    patients = [f"test/person{rng.integers(0, 25)}" for _ in range(60)]
    labels = rng.integers(0, 2, 60)
    film_paths = [f"/d/test/f{i:02d}.jpeg" for i in range(60)]
    write_csv(paths.split_csv, SPLIT_COLUMNS, (
        {"path": p, "label": "PNEUMONIA" if y else "NORMAL", "patient_id": pid, "source_split": "test",
         "split": "test", "sha1": "x"} for p, y, pid in zip(film_paths, labels, patients, strict=True)))  # fmt: skip
    probs = {run: np.clip(labels * shift + rng.normal(0.3, 0.25, 60), 0, 1)
             for run, shift in (("v0", 0.05), ("v1", 0.1), ("b0", 0.5), ("b1", 0.45))}  # fmt: skip
    for run, run_probs in probs.items():
        films = [(film_paths[i], int(labels[i]), float(run_probs[i])) for i in range(60)]
        _write_predictions(paths, run, films, rng.permutation(60))
    runs = [
        {column: "" for column in ABLATION_RUN_COLUMNS} | {
            "run_id": run, "variant": "best" if run[0] == "b" else "dropout=0.0", "factor": "dropout",
            "level": "0.0", "seed": run[1], "status": "ok", "val_auc": "0.9",
            "test_auc": f"{roc_auc_score(labels, probs[run]):.6f}", "test_accuracy": "0.8",
            "test_sensitivity": f"{0.7 + 0.01 * int(run[1])}", "test_specificity": "0.8",
        }
        for run in ("b0", "b1", "v0", "v1")
    ]  # fmt: skip
    row = next(r for r in summarise(runs, paths, cfg) if r["variant"] != "best" and r["metric"] == "test_auc")

    unique, inverse = np.unique(np.array(patients), return_inverse=True)
    draw_rng = np.random.default_rng(cfg.evaluate.seed)
    differences = []
    for _ in range(200):
        films = [i for p in draw_rng.integers(0, unique.size, unique.size) for i in np.flatnonzero(inverse == p)]
        if len(set(labels[films])) < 2:
            continue
        auc = {run: roc_auc_score(labels[films], run_probs[films]) for run, run_probs in probs.items()}
        differences.append(np.mean([auc[f"v{seed}"] - auc[f"b{seed}"] for seed in (0, 1)]))
    tail = (1 - cfg.evaluate.confidence) / 2 * 100
    assert math.isclose(row["patient_boot_low"], np.percentile(differences, tail), abs_tol=1e-12)
    assert math.isclose(row["patient_boot_high"], np.percentile(differences, 100 - tail), abs_tol=1e-12)
    assert row["patient_boot_low"] < row["patient_boot_high"] < 0  # the variants' signal is weaker
    assert row["mark"].endswith("†")

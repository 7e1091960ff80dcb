"""Column lists of every CSV in the results folder: one constant per file, used by its writer and its reader.

The JSON files have typed records instead (records.py); the words these columns share with the config,
the report and the code (stages, metrics, factors) are in vocab.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from study.results.vocab import ABLATION_METRICS, HP_NAMES

SPLIT_COLUMNS: tuple[str, ...] = ("path", "label", "patient_id", "source_split", "split", "sha1")
SKIPPED_COLUMNS: tuple[str, ...] = ("path", "reason")
TRIAL_BASE_COLUMNS: tuple[str, ...] = (
    "trial_id",
    "status",
    "bracket",
    "round",
    "parent",
    "epochs",
    "initial_epoch",
    "best_epoch",
    "seconds",
    "rss_mb",
    "error",
)
TRIAL_METRIC_COLUMNS: tuple[str, ...] = ("val_auc", "val_loss", "val_accuracy", "auc", "loss")
HISTORY_COLUMNS: tuple[str, ...] = ("epoch", "loss", "auc", "accuracy", "val_loss", "val_auc", "val_accuracy")
PREDICTION_COLUMNS: tuple[str, ...] = ("split", "path", "label", "prob")
HP_PREFIX = "hp_"
ABLATION_HP_COLUMNS: tuple[str, ...] = tuple(HP_PREFIX + name for name in HP_NAMES)
ABLATION_RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "variant",
    "factor",
    "level",
    "seed",
    "status",
    "epochs",
    "best_epoch",
    "seconds",
    "threshold",
    *ABLATION_METRICS,
    *ABLATION_HP_COLUMNS,
    "error",
)
ABLATION_SUMMARY_COLUMNS: tuple[str, ...] = (
    "variant",
    "factor",
    "level",
    "metric",
    "n",
    "mean",
    "sd",
    "ci_low",
    "ci_high",
    "delta_n",
    "delta_mean",
    "delta_ci_low",
    "delta_ci_high",
    "delta_p",
    "patient_boot_low",
    "patient_boot_high",
    "patient_boot_p",
    "patient_boot_one_class",
    "mark",
)
# export/summary.csv: one row per TFLite variant, scored on the test films against the Keras model.
EXPORT_COLUMNS: tuple[str, ...] = (
    "variant", "status", "error", "file", "size_bytes", "auc", "auc_low", "auc_high", "auc_diff", "auc_diff_low",
    "auc_diff_high", "accuracy", "sensitivity", "specificity", "agreement", "max_abs_dp", "median_abs_dp",
    "latency_ms_1", "latency_ms_2", "runtime",
)  # fmt: skip
FACTOR_EFFECT_COLUMNS: tuple[str, ...] = (
    "factor", "level", "bracket", "epochs", "n", "mean", "ci_low", "ci_high", "confidence",
)  # fmt: skip
IMPORTANCE_COLUMNS: tuple[str, ...] = (
    "factor", "importance", "importance_sd", "n_trials", "method", "importance_raw", "oob_r2",
)  # fmt: skip
GRADCAM_COLUMNS: tuple[str, ...] = (
    "file",
    "source",
    "category",
    "selection",
    "label",
    "prob",
    "patient_id",
    "method",
    "layer",
    "deletion_auc",
    "border_share",
    "mask_ratio",
)
COMPARISON_COLUMNS: tuple[str, ...] = (
    "source", "patient_id", "label", "variant", "variant_label", "prob", "method", "layer", "border_share",
    "selection",
)  # fmt: skip


def trial_columns(hp_names: Iterable[str]) -> list[str]:
    """trials.csv columns: fixed bookkeeping, one hp_ column per searched value, then the metrics."""
    return [*TRIAL_BASE_COLUMNS, *(HP_PREFIX + name for name in sorted(hp_names)), *TRIAL_METRIC_COLUMNS]

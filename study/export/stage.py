"""The export stage: the best model as four TFLite files, each scored on the test set against the Keras model.

The test set was already scored once, by the evaluate stage, with the model selected on validation; an export
changes no choice, so scoring each file on the same films, beside the Keras model's own probabilities for them,
measures what the conversion costs, nothing else. The conversions run in a child process (export.background), which
the pipeline starts before the ablation and collects after it; the files are then scored and timed one by one, each
variant's row of export/summary.csv written as it is scored: a study killed half-way converts, on its next start,
the variants without a row, and tries a failed one again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from study.ablation.stats import paired_auc_difference
from study.budget import Deadline
from study.config import StudyConfig
from study.data.readers import dataset_arrays, study_classes
from study.evaluate.metrics import Predictions, cluster_bootstrap, make_predictions, point_metrics, rank_auc
from study.evaluate.stage import load_best_model
from study.export.background import ConversionJob
from study.export.runtime import TfliteModel
from study.results import EXPORT_COLUMNS, BestTrial, ResultsPaths, Threshold, read_csv, write_csv
from study.results.classes import Classes
from study.results.vocab import EXPORT_VARIANTS
from study.search.batches import predict_probabilities

logger = logging.getLogger(__name__)

CALIBRATION_FILMS = 200  # training films for the full-integer calibration
LATENCY_RUNS = 50
LATENCY_THREADS = (1, 2)


def _keras_test_predictions(
    rows: list[dict[str, str]], films: np.ndarray, model: keras.Model, batch: int, classes: Classes
) -> Predictions:
    """The Keras model's probabilities for the test films (`rows`, split.csv's order), with labels and patients.
    They are predicted here rather than joined with best/predictions.csv by path: the films may have moved
    since (Colab), and split.csv alone follows them."""
    return make_predictions(rows, [row["path"] for row in rows], predict_probabilities(model, films, batch), classes)


def _calibration_films(split_rows: list[dict[str, str]], seed: int) -> list[str]:
    """A seeded sample of training films: the int8 ranges never see a validation or test film."""
    train = [row["path"] for row in split_rows if row["split"] == "train"]
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(train, size=min(CALIBRATION_FILMS, len(train)), replace=False).tolist())


def score_variant(
    model: TfliteModel, films: np.ndarray, keras_test: Predictions, threshold: float, cfg: StudyConfig
) -> dict[str, object]:
    """Test AUC with its patient interval, the difference to Keras paired on resampled patients, the threshold
    metrics, the decisions shared with Keras, |Δp|, and the latency of one film."""
    probs = model.predict(films)
    variant = Predictions(keras_test.paths, keras_test.labels, probs, keras_test.patients)
    evaluate = cfg.evaluate
    interval = cluster_bootstrap(
        variant, lambda labels, p: {"auc": rank_auc(labels, p)}, evaluate.bootstrap_resamples, evaluate.confidence,
        evaluate.seed,
    )["auc"]  # fmt: skip
    difference = paired_auc_difference(
        keras_test.labels, keras_test.patients, [probs], [keras_test.probs], evaluate.bootstrap_resamples,
        evaluate.confidence, evaluate.seed,
    )  # fmt: skip
    point = point_metrics(keras_test.labels, probs, threshold)
    shift = np.abs(probs - keras_test.probs)
    latency = {
        f"latency_ms_{threads}": TfliteModel(model.path, threads).latency_ms(films[0], LATENCY_RUNS)
        for threads in LATENCY_THREADS
    }
    return {
        "auc": point["auc"], "auc_low": interval[0], "auc_high": interval[1],
        "auc_diff": difference.mean, "auc_diff_low": difference.low, "auc_diff_high": difference.high,
        "accuracy": point["accuracy"], "sensitivity": point["sensitivity"], "specificity": point["specificity"],
        "agreement": float(np.mean((probs >= threshold) == (keras_test.probs >= threshold))),
        "max_abs_dp": float(shift.max()), "median_abs_dp": float(np.median(shift)), **latency,
        "runtime": model.runtime,
    }  # fmt: skip


@dataclass(frozen=True)
class PendingExport:
    """An export whose variants are converting in a child process (export.background) while the study goes on."""

    todo: tuple[str, ...]
    job: ConversionJob


def start_export(
    cfg: StudyConfig, paths: ResultsPaths, cache_dir: Path, deadline: Deadline
) -> PendingExport | str | None:
    """Start converting each variant not yet in export/summary.csv. Returns the conversion under way, None when
    every variant is done, or why none was started (the time budget)."""
    written = read_csv(paths.export_summary) if paths.export_summary.exists() else []
    done = {row["variant"] for row in written if row["status"] == "ok"}
    todo = tuple(variant for variant in EXPORT_VARIANTS if variant not in done)
    if not todo:
        return None
    if deadline.left() <= 0:
        logger.info("export: the time budget is spent; %d variant(s) not exported", len(todo))
        return f"time budget: {len(todo)} export variant(s) not made"
    resolution = BestTrial.read(paths.best_hyperparameters).resolution
    split_rows = read_csv(paths.split_csv)
    decoded = dataset_arrays(paths, [resolution], cfg.data.aspect, cache_dir)
    calibration = decoded.take(resolution, _calibration_films(split_rows, cfg.evaluate.seed))
    paths.export_dir.mkdir(parents=True, exist_ok=True)
    for leftover in paths.export_dir.glob(".*.tmp"):  # a converter killed mid-write
        leftover.unlink()
    targets = {variant: paths.export_model(variant) for variant in todo}
    logger.info("export: converting %s in a child process on TensorFlow", ", ".join(todo))
    return PendingExport(todo, ConversionJob(paths.best_model, targets, calibration))


def finish_export(pending: PendingExport, cfg: StudyConfig, paths: ResultsPaths, cache_dir: Path) -> float:
    """Wait for the conversions, then score and time each file, one row of export/summary.csv each. Returns the
    stage's own seconds: converting, then scoring, without the wait for what ran beside it."""
    errors = pending.job.wait()
    if pending.job.seconds:
        logger.info("export: converted in %.1f s", pending.job.seconds)
    scoring_started = time.monotonic()
    written = read_csv(paths.export_summary) if paths.export_summary.exists() else []
    done = {row["variant"]: row for row in written if row["status"] == "ok"}
    model, resolution = load_best_model(paths)
    decoded = dataset_arrays(paths, [resolution], cfg.data.aspect, cache_dir)
    test_rows = [row for row in read_csv(paths.split_csv) if row["split"] == "test"]
    films = decoded.take(resolution, [row["path"] for row in test_rows])
    keras_test = _keras_test_predictions(test_rows, films, model, cfg.search.batch_size, study_classes(paths))
    threshold = Threshold.read(paths.threshold).threshold
    for variant in pending.todo:
        row: dict[str, object] = {"variant": variant, "file": paths.export_model(variant).name}
        error = errors.get(variant, "not converted")
        if error is not None:
            row.update(status="failed", error=error)
        else:
            tflite = TfliteModel(paths.export_model(variant))
            row.update(status="ok", size_bytes=paths.export_model(variant).stat().st_size,
                       **score_variant(tflite, films, keras_test, threshold, cfg))  # fmt: skip
            logger.info(
                "export %s: %.0f KB, test AUC %.4f (Keras %+.4f), decisions shared with Keras %.1f%%, max |Δp| %.2g, "
                "%.1f ms per film on 1 thread", variant, row["size_bytes"] / 1024, row["auc"], row["auc_diff"],
                100 * row["agreement"], row["max_abs_dp"], row["latency_ms_1"],
            )  # fmt: skip
        done[variant] = row
        write_csv(paths.export_summary, EXPORT_COLUMNS, [done[v] for v in EXPORT_VARIANTS if v in done])
    return pending.job.seconds + time.monotonic() - scoring_started


def export_best_model(cfg: StudyConfig, paths: ResultsPaths, cache_dir: Path, deadline: Deadline) -> str | None:
    """The whole stage at once: convert, score and time each variant not yet in export/summary.csv; why it stopped
    short, or None."""
    pending = start_export(cfg, paths, cache_dir, deadline)
    if isinstance(pending, PendingExport):
        finish_export(pending, cfg, paths, cache_dir)
        return None
    return pending

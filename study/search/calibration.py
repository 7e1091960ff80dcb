"""A short timing run before the search, so the plan can say "about T" on this machine, not on ours.

One model at the costliest setting (largest input, most trainable layers) is built and traced, then timed
over a few training and evaluation steps; smaller inputs are scaled by their pixel count. The search
corrects these figures with every finished trial (study.budget.TrialClock).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import keras
import numpy as np

from study.config import StudyConfig
from study.data.split import SplitArrays
from study.results import Calibration
from study.search.batches import first_rows
from study.search.hypermodel import build_model, build_optimizer

logger = logging.getLogger(__name__)

TIMED_STEPS = 4


def most_trainable(unfrozen_settings: tuple[int, ...]) -> int:
    """-1 (all layers) when searched, else the largest count: the slowest backward pass."""
    return -1 if -1 in unfrozen_settings else max(unfrozen_settings)


def calibrate(cfg: StudyConfig, arrays: dict[int, SplitArrays]) -> Calibration:
    """Seconds for a trial's fixed part (build, compile, first train and eval step) and for one epoch per size."""
    largest = max(cfg.space.resolutions)
    batch = cfg.search.batch_size
    sample = arrays[largest]
    x_batch, y_batch, x_val_batch, y_val_batch = first_rows(
        (sample.x_train, sample.y_train.astype("float32"), sample.x_val, sample.y_val.astype("float32")), batch
    )
    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.search.seed)
    started = time.monotonic()
    model = build_model(
        resolution=largest,
        augmentation=max(cfg.space.augmentation),
        dropout=cfg.space.dropout_max,
        unfrozen_layers=most_trainable(cfg.space.unfrozen_layers),
        learning_rate=cfg.space.learning_rate_min,
        model_cfg=cfg.model,
        channels=sample.x_train.shape[-1],
    )
    build_optimizer(model)  # as every trial does before its first step
    weights = np.ones(batch, np.float32)  # every trial's steps take sample weights (study.search.batches)
    model.train_on_batch(x_batch, y_batch, sample_weight=weights)
    model.test_on_batch(x_val_batch, y_val_batch, sample_weight=weights)
    build_seconds = time.monotonic() - started
    train_step = _steady_step_seconds(lambda: model.train_on_batch(x_batch, y_batch, sample_weight=weights))
    eval_step = _steady_step_seconds(lambda: model.test_on_batch(x_batch, y_batch, sample_weight=weights))
    keras.backend.clear_session()
    epoch_seconds = {}
    for size in cfg.space.resolutions:
        pixels = (size / largest) ** 2
        train_steps = math.ceil(len(arrays[size].y_train) / batch)
        val_steps = math.ceil(len(arrays[size].y_val) / batch)
        epoch_seconds[size] = (train_steps * train_step + val_steps * eval_step) * pixels
    calibration = Calibration(build_seconds, epoch_seconds)
    logger.info(
        "calibration: %.1f s to build and trace a model, %.2f s per epoch at %d px",
        build_seconds, epoch_seconds[largest], largest,
    )  # fmt: skip
    return calibration


def _steady_step_seconds(step: Callable[[], object]) -> float:
    """Median of a few timed calls after the trace: the per-step cost the epochs will pay."""
    times = []
    for _ in range(TIMED_STEPS):
        started = time.monotonic()
        step()
        times.append(time.monotonic() - started)
    return float(np.median(times))

"""A short timing run before the search, so the plan can say "about T" on this machine, not on ours.

One model at the costliest setting (largest input, most trainable layers) is built and traced, then timed
through fit and evaluate as an epoch runs them, a short pass and a long one each; smaller inputs are scaled by
their pixel count. The search corrects these figures with every finished trial (study.budget.TrialClock).

Why passes and not single steps: a call such as train_on_batch waits for its result (and on JAX reassigns
every variable) each step, where fit and evaluate queue steps on the device and do that once per call. On an
NVIDIA H200 under JAX (224 px, mixed_float16, batch 32) one train_on_batch took 28.6 ms against 11.4 ms a step
in a 64-step fit, and test_on_batch 22.1 ms against 6.0 ms in evaluate: single steps put a 224 px epoch at 2.5
times its measured length (docs/performance.md). On a CPU, where a step is far longer than a call's own cost,
both came within 12% of a measured 64 px epoch.
"""

from __future__ import annotations

import dataclasses
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

# batches in the short and the long timed pass: their difference is the cost of one more batch
SHORT_PASS, LONG_PASS = 4, 16
TIMINGS = 2  # of each pass, the faster taken: interruptions only ever add time


@dataclasses.dataclass(frozen=True)
class PassCost:
    """One call of fit (one epoch) or evaluate: a fixed part paid once a call, and a part per batch."""

    per_call: float
    per_batch: float

    def seconds(self, batches: int, pixels: float = 1.0) -> float:
        """A pass over `batches` batches at `pixels` times the timed input's pixel count."""
        return self.per_call + batches * self.per_batch * pixels


def most_trainable(unfrozen_settings: tuple[int, ...]) -> int:
    """-1 (all layers) when searched, else the largest count: the slowest backward pass."""
    return -1 if -1 in unfrozen_settings else max(unfrozen_settings)


def calibrate(cfg: StudyConfig, arrays: dict[int, SplitArrays]) -> Calibration:
    """Seconds for a trial's fixed part (build, compile, first train and eval step) and for one epoch per size."""
    largest = max(cfg.space.resolutions)
    batch = cfg.search.batch_size
    sample = arrays[largest]
    films = LONG_PASS * batch
    x_train, y_train, x_val, y_val = first_rows(
        (sample.x_train, sample.y_train.astype("float32"), sample.x_val, sample.y_val.astype("float32")), films
    )
    weights = np.ones(films, np.float32)  # every trial's steps take sample weights (study.search.batches)
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
    model.train_on_batch(x_train[:batch], y_train[:batch], sample_weight=weights[:batch])
    model.test_on_batch(x_val[:batch], y_val[:batch], sample_weight=weights[:batch])
    build_seconds = time.monotonic() - started

    def train(batches: int) -> None:
        rows = batches * batch
        model.fit(x_train[:rows], y_train[:rows], sample_weight=weights[:rows], batch_size=batch, verbose=0)

    def evaluate(batches: int) -> None:
        rows = batches * batch
        model.evaluate(x_val[:rows], y_val[:rows], sample_weight=weights[:rows], batch_size=batch, verbose=0)

    train_pass, eval_pass = _pass_cost(train), _pass_cost(evaluate)
    keras.backend.clear_session()
    epoch_seconds = {}
    for size in cfg.space.resolutions:
        pixels = (size / largest) ** 2
        train_steps = math.ceil(len(arrays[size].y_train) / batch)
        val_steps = math.ceil(len(arrays[size].y_val) / batch)
        epoch_seconds[size] = train_pass.seconds(train_steps, pixels) + eval_pass.seconds(val_steps, pixels)
    calibration = Calibration(build_seconds, epoch_seconds)
    logger.info(
        "calibration: %.1f s to build and trace a model, %.2f s per epoch at %d px (%.1f ms a training batch, "
        "%.1f ms an evaluation batch)",
        build_seconds, epoch_seconds[largest], largest, 1e3 * train_pass.per_batch, 1e3 * eval_pass.per_batch,
    )  # fmt: skip
    return calibration


def _pass_cost(run: Callable[[int], object]) -> PassCost:
    """Time a short and a long pass, each the faster of two, after an untimed one (which takes a first call's own
    costs): the difference is the cost per batch, what remains of the short pass the cost per call. The cost per
    batch is held to at least half the long pass's average: noise that shrank the difference would otherwise
    move an epoch's batches into its one call and estimate it far too short."""
    run(SHORT_PASS)
    short = min(_seconds(run, SHORT_PASS) for _ in range(TIMINGS))
    long = min(_seconds(run, LONG_PASS) for _ in range(TIMINGS))
    per_batch = max((long - short) / (LONG_PASS - SHORT_PASS), 0.5 * long / LONG_PASS)
    return PassCost(max(short - SHORT_PASS * per_batch, 0.0), per_batch)


def _seconds(run: Callable[[int], object], batches: int) -> float:
    started = time.monotonic()
    run(batches)
    return time.monotonic() - started

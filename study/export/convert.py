"""The best model as TFLite files, four ways: float32, float16, dynamic-range int8 and full-integer int8.

The Keras model goes through a SavedModel (`keras.export.ExportArchive`) into TFLite's converter: measured on
TF 2.20-2.21, that route converts all four variants and is about twice as fast as `from_keras_model`, which
writes a SavedModel internally and falls back to an older, crash-prone path when it cannot. The model's uint8 input
and its preprocessing stay inside every file, so a raw film goes in. Full-integer int8 is calibrated on
training films only (never validation or test) and keeps a float32 output, the probability.

TFLite's converter is TensorFlow's and takes a TensorFlow graph. The study converts in a child process on the
TensorFlow backend whatever its own backend (`export.background`, which calls `convert_request`): the
.keras file is the same model on either backend, while JAX's own route to TensorFlow (jax2tf) carries the
augmentation layers' uint32 seed state into the graph, which TFLite refuses.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from study.search.saving import load_model

logger = logging.getLogger(__name__)


def _configure(converter: tf.lite.TFLiteConverter, variant: str, calibration: np.ndarray) -> None:
    """fp32 as is; the others quantised, int8 with a uint8 input and ranges from the calibration films."""
    if variant == "fp32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.representative_dataset = lambda: ([film[None]] for film in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8


def saved_model(model: keras.Model, folder: Path) -> Path:
    """The model's inference function as a SavedModel, the converter's input. Called with training=False
    explicitly: `model.export` calls the model without it, and the augmentation layers then default to training
    and put their random ops into the graph (the converter refused them; had it not, every film would have been
    augmented)."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve",
        lambda films: model(films, training=False),
        input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8, name="film")],
    )
    archive.write_out(str(folder), verbose=False)
    return folder


def convert(saved: Path, variant: str, calibration: np.ndarray, target: Path) -> None:
    """Write one variant; the converter's error propagates (the stage lists it and goes on)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    _configure(converter, variant, calibration)
    flatbuffer = converter.convert()
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # the mirror skips it; whole or absent after
    partial.write_bytes(flatbuffer)
    partial.replace(target)


def _convert_all(
    model: keras.Model, targets: dict[str, Path], calibration: np.ndarray, scratch: Path
) -> dict[str, str | None]:
    errors: dict[str, str | None] = {}
    saved = saved_model(model, scratch / "saved_model")
    for variant, target in targets.items():
        try:
            convert(saved, variant, calibration, target)
            errors[variant] = None
        except Exception as error:  # a converter failure names no common type; the stage goes on
            logger.warning("export: %s failed to convert: %s", variant, str(error).splitlines()[0])
            errors[variant] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
    return errors


def convert_request(request: dict[str, Any]) -> None:
    """The child process of `export.background.ConversionJob`: load the model, convert every variant, write the
    errors and the time it finished."""
    model = load_model(Path(request["model"]))
    calibration = np.load(request["calibration"])
    targets = {variant: Path(target) for variant, target in request["targets"].items()}
    with tempfile.TemporaryDirectory(prefix="export-") as scratch:
        errors = _convert_all(model, targets, calibration, Path(scratch))
    outcome = {"errors": errors, "finished": time.time()}  # the parent's clock for how long converting took
    Path(request["errors"]).write_text(json.dumps(outcome), encoding="utf-8")

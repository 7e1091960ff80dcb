"""A study model to disk and back: written whole or not at all, and read with the study's own layer, optimizer
and metric classes registered, on whichever backend runs."""

from __future__ import annotations

from pathlib import Path

import keras

from study.device import allow_compiling_on_jax, distribute_batches
from study.search import batches, batchnorm
from study.search.dropout import SearchedDropout
from study.search.optimizer import FusedAdam

# what a saved model names (its metrics too: study.search.batches's real-films metrics); imported here, so registered
STUDY_OBJECTS = (
    batchnorm.BatchNormalization, FusedAdam, SearchedDropout, batches.RealFilmsAUC, batches.RealFilmsAccuracy,
)  # fmt: skip


def save_model_atomically(model: keras.Model, path: Path) -> None:
    """Written beside, then renamed, so a kill never leaves half a model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.tmp.keras")
    model.save(partial)
    partial.replace(path)


def load_model(path: Path) -> keras.Model:
    """A saved study model, uncompiled, for prediction and Grad-CAM on the active backend."""
    distribute_batches()  # before the variables are made: on several JAX devices, each holds them
    model = keras.saving.load_model(path, compile=False)
    if keras.backend.backend() == "jax":
        allow_compiling_on_jax(model.layers)
        model.jit_compile = True  # loading settled it from the flags as saved
    return model

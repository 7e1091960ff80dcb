"""Dropout whose rate is a value the compiled step reads, not a constant compiled into it.

Keras's Dropout compiles its rate into the training step as a constant, so on JAX two trials that differ in
dropout alone (a searched float: nearly every trial) compile their steps apart, and the compilation cache
(study.device.cache_compilations) never serves one to the other. With the rate held in a variable, every model
of one resolution, augmentation and unfrozen depth compiles to the same step: the cache serves it to every
later trial and ablation run of that shape. TensorFlow traces each model anyway; nothing changes there.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="chest_xray_study")
class SearchedDropout(keras.layers.Layer):
    """Keras's Dropout, at rate 0 too (one structure for every rate). The rate is the layer's config, and its
    variable is neither written to nor read from checkpoints: like Keras's Dropout, the layer has no weights
    there, so trial checkpoints written with either layer load into the other."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"dropout rate {rate}: expected a value in [0, 1)")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.rate_variable = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(rate), trainable=False, autocast=False, name="rate"
        )  # float32 under mixed precision too: the rate as given, not rounded to float16
        self.supports_masking = True
        self.built = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training:
            return inputs
        keep = 1.0 - ops.cast(self.rate_variable, "float32")
        kept = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator) < keep
        return ops.where(kept, inputs / ops.cast(keep, inputs.dtype), ops.zeros_like(inputs))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}

    def save_own_variables(self, store: Any) -> None:
        """Nothing: the rate is in the config."""

    def load_own_variables(self, store: Any) -> None:
        """Nothing: the rate came with the config."""

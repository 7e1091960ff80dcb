"""Grad-CAM's one backend-specific step: a layer's activations and the gradient of the signed logit w.r.t.
them, for a batch, under the active Keras backend (TensorFlow or JAX).

Keras has no backend-neutral gradient of an output w.r.t. an intermediate tensor. TensorFlow watches the
activations on a tape. JAX differentiates functions, so the backbone is run with a zero tensor added to the
layer's output, and the gradient w.r.t. that zero is the gradient w.r.t. the activations. The backbone is run
through `Functional._run_through_graph`, the private method that `Functional.call` itself uses (its signature
is the same in Keras 3.13.2, Colab's, and 3.15.1, the pin; CI runs this path on both, with Colab's JAX 0.7.2
and the pinned 0.10.2); it is the only way to reach inside a nested functional model without rebuilding it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

FLOAT16_GRADIENT_SCALE = 1024.0

# (uint8 films, +1/-1 per film) -> float32 activations and gradients, N x h x w x channels, backend tensors
GradientPass = Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]


class CamModel:
    """The parts of the final model a gradient pass runs: its preprocessing, the nested backbone up to and
    past the explained layer, and the head that gives the logit. Nothing is copied or changed."""

    def __init__(self, preprocess: list[keras.layers.Layer], to_rgb: keras.layers.Layer | None,
                 backbone: keras.Model, layer: keras.layers.Layer, head: list[keras.layers.Layer]) -> None:  # fmt: skip
        self.preprocess = preprocess
        self.to_rgb = to_rgb
        self.backbone = backbone
        self.layer = layer
        self.head = head

    def rgb(self, films: Any) -> Any:
        to_float, scale = self.preprocess
        scaled = scale(to_float(films))
        return scaled if self.to_rgb is None else self.to_rgb([scaled, scaled, scaled])

    def logit(self, final: Any) -> Any:
        pool, logit_layer = self.head
        return logit_layer(pool(final))[:, 0]


def gradient_pass(cam: CamModel) -> GradientPass:
    """The gradient pass for the active backend, compiled once (tf.function or jax.jit): a graph-mode backward
    pass over batches is what makes this an order of magnitude faster than the usual eager per-image loop."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_pass(cam)
    if backend == "jax":
        return _jax_pass(cam)
    raise NotImplementedError(f"Grad-CAM: the {backend} backend is not supported; use tensorflow or jax")


def _loss_scale(dtype: Any) -> float:
    """A mixed_float16 model back-propagates in float16, where small gradients flush to zero: the target is
    scaled up like a loss scale, and the scale undone in float32."""
    return FLOAT16_GRADIENT_SCALE if keras.backend.standardize_dtype(dtype) == "float16" else 1.0


def _tensorflow_pass(cam: CamModel) -> GradientPass:
    import tensorflow as tf

    features = keras.Model(cam.backbone.inputs, [cam.layer.output, cam.backbone.output])

    def activations_and_gradients(films: tf.Tensor, sign: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        rgb = cam.rgb(films)
        with tf.GradientTape() as tape:
            activations, final = features(rgb, training=False)
            scale = _loss_scale(activations.dtype)
            scaled_target = tf.cast(cam.logit(final), tf.float32) * sign * scale
        gradients = tf.cast(tape.gradient(scaled_target, activations), tf.float32) / scale
        return tf.cast(activations, tf.float32), gradients

    compiled = tf.function(activations_and_gradients, reduce_retracing=True)
    return lambda films, sign: compiled(tf.constant(films), tf.constant(sign, tf.float32))


def _jax_pass(cam: CamModel) -> GradientPass:
    import jax
    import jax.numpy as jnp

    activation_shape = tuple(cam.layer.output.shape[1:])
    activation_dtype = cam.layer.output.dtype

    def signed_logits(zero: jax.Array, rgb: jax.Array, sign: jax.Array) -> tuple[jax.Array, jax.Array]:
        seen: list[jax.Array] = []

        def perturbed(operation: Any) -> Any:
            if operation is not cam.layer:
                return operation

            def call(*args: Any, **kwargs: Any) -> Any:
                seen.append(operation(*args, **kwargs))
                return seen[0] + zero

            return call

        final = cam.backbone._run_through_graph(rgb, operation_fn=perturbed)
        scale = _loss_scale(seen[0].dtype)
        return jnp.sum(cam.logit(final).astype(jnp.float32) * sign) * scale, seen[0]

    def activations_and_gradients(films: jax.Array, sign: jax.Array) -> tuple[jax.Array, jax.Array]:
        rgb = cam.rgb(films)
        zero = jnp.zeros((films.shape[0], *activation_shape), activation_dtype)
        gradients, activations = jax.grad(signed_logits, has_aux=True)(zero, rgb, sign)
        scale = _loss_scale(activations.dtype)
        return activations.astype(jnp.float32), gradients.astype(jnp.float32) / scale

    compiled = jax.jit(activations_and_gradients)
    return lambda films, sign: compiled(jnp.asarray(films), jnp.asarray(sign, jnp.float32))

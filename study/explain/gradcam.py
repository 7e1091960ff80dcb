"""Batched Grad-CAM and Grad-CAM++ on the final model, with MobileNetV2 nested inside it.

Gradients are taken of the logit (not the sigmoid, which saturates) and of the negated logit when the
explained class is NORMAL. The model is never changed: a feature model is cut from the nested backbone
and the head layers are reused as they are.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from study.errors import UserInputError
from study.results.vocab import CAM_METHODS
from study.search.hypermodel import LOGIT_LAYER

logger = logging.getLogger(__name__)

EPSILON = 1e-8
FLOAT16_GRADIENT_SCALE = 1024.0


class GradCam:
    """Grad-CAM maps for a batch of uint8 films (N x R x R x C), computed in one forward/backward pass."""

    def __init__(self, model: keras.Model, layer_name: str) -> None:
        self.backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
        names = [layer.name for layer in self.backbone.layers]
        if layer_name not in names:
            raise UserInputError(
                f"gradcam.layer {layer_name!r}: no such backbone layer; valid names: {', '.join(names)}"
            )
        self.preprocess = [model.get_layer(name) for name in ("to_float", "mobilenet_scale")]
        # A gray model repeats its one channel three times for the backbone; an RGB model has no such layer.
        self.to_rgb = next((layer for layer in model.layers if layer.name == "gray_to_rgb"), None)
        self.features = keras.Model(
            self.backbone.inputs, [self.backbone.get_layer(layer_name).output, self.backbone.output]
        )
        self.head = [model.get_layer(name) for name in ("pool", LOGIT_LAYER)]
        self._compiled = tf.function(self._activations_and_gradients, reduce_retracing=True)

    def _rgb(self, films: np.ndarray) -> tf.Tensor:
        to_float, scale = self.preprocess
        scaled = scale(to_float(films))
        return scaled if self.to_rgb is None else self.to_rgb([scaled, scaled, scaled])

    def _activations_and_gradients(self, films: tf.Tensor, sign: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The layer's activations and the gradient of the signed logit w.r.t. them, for the whole batch.

        Compiled once per GradCam with tf.function: a graph-mode backward pass over batches is what makes
        this an order of magnitude faster than the usual eager per-image loop."""
        rgb = self._rgb(films)
        with tf.GradientTape() as tape:
            activations, final = self.features(rgb, training=False)
            pool, logit_layer = self.head
            target = tf.cast(logit_layer(pool(final))[:, 0], tf.float32) * sign
            # A mixed_float16 model back-propagates in float16, where small gradients flush to zero: scale
            # the target up like a loss scale, and undo it in float32.
            scale = FLOAT16_GRADIENT_SCALE if activations.dtype == tf.float16 else 1.0
            scaled_target = target * scale
        gradients = tf.cast(tape.gradient(scaled_target, activations), tf.float32) / scale
        return tf.cast(activations, tf.float32), gradients

    def maps(self, films: np.ndarray, explain_pneumonia: np.ndarray, method: str = "gradcam") -> np.ndarray:
        """N x h x w maps in [0, 1] at the layer's resolution; a constant film gives a finite (zero) map.

        gradcam weighs each channel by its mean gradient; gradcam++ by positive gradients with the
        second-order weights of Chattopadhay et al. (2018), which separates several lesions better.
        """
        sign = tf.constant(np.where(explain_pneumonia, 1.0, -1.0), dtype=tf.float32)
        activations, gradients = self._compiled(tf.constant(films), sign)
        if method == "gradcam":
            weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        elif method == "gradcam++":
            squared = tf.square(gradients)
            summed = tf.reduce_sum(activations, axis=(1, 2), keepdims=True)
            alpha = squared / (2.0 * squared + summed * squared * gradients + EPSILON)
            alpha = tf.where(gradients != 0.0, alpha, tf.zeros_like(alpha))
            weights = tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=(1, 2), keepdims=True)
        else:
            raise UserInputError(f"gradcam.method {method!r}: expected one of {CAM_METHODS}")
        cams = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1)).numpy()
        peaks = cams.reshape(len(cams), -1).max(axis=1).reshape(-1, 1, 1)
        # Each map to its own peak, whatever its scale: a barely trained model's maps peak near 1e-10, where
        # adding an epsilon to the peak would shrink them towards zero instead.
        return np.divide(cams, peaks, out=np.zeros_like(cams), where=peaks > 0)


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """Maps from the layer's grid to the model's size x size input grid (bilinear), where scores are taken."""
    return np.stack(
        [
            np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BILINEAR))
            for m in maps
        ]
    )

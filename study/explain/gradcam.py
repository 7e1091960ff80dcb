"""Batched Grad-CAM, Grad-CAM++ and LayerCAM on the final model, with MobileNetV2 nested inside it.

Gradients are taken of the logit (not the sigmoid, which saturates) and of the negated logit when the
explained class is NORMAL. The model is never changed: its layers are reused as they are, and the one
backend-specific step, the gradient pass, is in `gradients.py`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops
from PIL import Image

from study.errors import UserInputError
from study.explain.gradients import CamModel, gradient_pass
from study.results.vocab import CAM_METHODS
from study.search.batches import one_batch_size, padding, with_copies
from study.search.hypermodel import LOGIT_LAYER

EPSILON = 1e-8


class GradCam:
    """Grad-CAM maps for a batch of uint8 films (N x R x R x C), computed in one forward/backward pass."""

    def __init__(self, model: keras.Model, layer_name: str) -> None:
        backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
        names = [layer.name for layer in backbone.layers]
        if layer_name not in names:
            raise UserInputError(
                f"gradcam.layer {layer_name!r}: no such backbone layer; valid names: {', '.join(names)}"
            )
        self._gradients = gradient_pass(
            CamModel(
                preprocess=[model.get_layer(name) for name in ("to_float", "mobilenet_scale")],
                # A gray model repeats its one channel three times for the backbone; an RGB model has no such layer.
                to_rgb=next((layer for layer in model.layers if layer.name == "gray_to_rgb"), None),
                backbone=backbone,
                layer=backbone.get_layer(layer_name),
                head=[model.get_layer(name) for name in ("pool", LOGIT_LAYER)],
            )
        )

    def maps(self, films: np.ndarray, explain_pneumonia: np.ndarray, method: str = "gradcam") -> np.ndarray:
        """N x h x w maps in [0, 1] at the layer's resolution; a constant film gives a finite (zero) map."""
        if method not in CAM_METHODS:
            raise UserInputError(f"gradcam.method {method!r}: expected one of {CAM_METHODS}")
        activations, gradients = self._gradients(films, np.where(explain_pneumonia, 1.0, -1.0).astype(np.float32))
        cams = ops.convert_to_numpy(class_activation(activations, gradients, method))
        peaks = cams.reshape(len(cams), -1).max(axis=1).reshape(-1, 1, 1)
        # Each map to its own peak, whatever its scale: a barely trained model's maps peak near 1e-10, where
        # adding an epsilon to the peak would shrink them towards zero instead.
        return np.divide(cams, peaks, out=np.zeros_like(cams), where=peaks > 0)

    def maps_in_batches(
        self, films: np.ndarray, explain_pneumonia: np.ndarray, method: str, batch_size: int
    ) -> np.ndarray:
        """`maps` over batches of one size, `batch_size` or fewer films' worth: the last batch is filled with
        copies whose maps are dropped (each map is scaled on its own), so the compiled pass sees one shape:
        jax.jit compiles once per shape, and tf.function traces again at a second shape."""
        batch = one_batch_size(len(films), batch_size)
        extra = padding(len(films), batch)
        padded, explain = with_copies(films, extra), with_copies(explain_pneumonia, extra)
        maps = [self.maps(padded[i : i + batch], explain[i : i + batch], method) for i in range(0, len(padded), batch)]
        return np.concatenate(maps)[: len(films)]


def class_activation(activations: Any, gradients: Any, method: str) -> Any:
    """N x h x w unscaled maps from a layer's N x h x w x channels activations and the explained logit's gradients.

    gradcam weighs each channel by its mean gradient over the grid (Selvaraju et al., 2017); gradcam++ by its
    positive gradients with second-order weights (Chattopadhay et al., 2018), which separates several lesions
    better. Both give a channel one weight for the whole grid, which describes a deep layer well and a shallow
    one badly: there a channel's gradient changes sign across the grid and its mean cancels out. layercam
    weighs every cell by its own positive gradient (Jiang et al., 2021), the method made for shallow layers.
    """
    if method == "gradcam":
        weights = ops.mean(gradients, axis=(1, 2), keepdims=True)
    elif method == "gradcam++":
        squared = ops.square(gradients)
        summed = ops.sum(activations, axis=(1, 2), keepdims=True)
        alpha = squared / (2.0 * squared + summed * squared * gradients + EPSILON)
        alpha = ops.where(gradients != 0.0, alpha, ops.zeros_like(alpha))
        weights = ops.sum(alpha * ops.relu(gradients), axis=(1, 2), keepdims=True)
    elif method == "layercam":
        weights = ops.relu(gradients)
    else:
        raise ValueError(f"unknown saliency method {method!r}; expected one of {CAM_METHODS}")
    return ops.relu(ops.sum(weights * activations, axis=-1))


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """Maps from the layer's grid to the model's size x size input grid (bilinear), where scores are taken."""
    return np.stack(
        [
            np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BILINEAR))
            for m in maps
        ]
    )

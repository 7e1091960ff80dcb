"""The search space and the model: MobileNetV2 over grayscale films, five searched factors plus the learning rate.

Everything that touches pixels after the cache runs inside the model (uint8 -> float, augmentation,
1 -> 3 channels, MobileNetV2 scaling), so it runs on the accelerator and the CPU only copies uint8 batches.
No file I/O here: the data arrive as in-memory arrays, the weights file path comes from the config.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import keras_tuner
import numpy as np

from study.config import ModelConfig, SearchConfig, SpaceConfig
from study.data.split import SplitArrays
from study.device import allow_compiling_on_jax, distribute_batches, gpu_names
from study.errors import UserInputError
from study.search.batches import fit_data, study_metrics
from study.search.batchnorm import with_fused_batchnorm
from study.search.dropout import SearchedDropout
from study.search.optimizer import FusedAdam

logger = logging.getLogger(__name__)

BACKBONE_NAME = "mobilenetv2"
LOGIT_LAYER = "logit"
XLA_SETTINGS: dict[str, bool | str] = {"on": True, "off": False, "auto": "auto"}


def class_weights(labels: np.ndarray, rule: str) -> dict[int, float] | None:
    """Loss weights per class: none, balanced (n / (2 n_c)) or its square root (a milder correction)."""
    if rule == "none":
        return None
    counts = np.bincount(labels.astype(int), minlength=2).astype(float)
    balanced = labels.size / (2.0 * np.maximum(counts, 1.0))
    weights = np.sqrt(balanced) if rule == "sqrt" else balanced
    return {0: float(weights[0]), 1: float(weights[1])}


def resolve_weights(weights: str) -> str | None:
    """`imagenet` | `none` | a weights file path (checked by the config) -> what keras.applications expects."""
    return None if weights == "none" else weights


def resolve_precision(precision: str) -> str:
    """auto: mixed_float16 where a GPU does the work (about twice the throughput on tensor cores), float32 on
    CPU, where float16 is emulated and slower. The logit and sigmoid stay float32 either way."""
    if precision != "auto":
        return precision
    return "mixed_float16" if gpu_names() else "float32"


def _augmentation(strength: float, horizontal_flip: bool) -> list[keras.layers.Layer]:
    """Mild geometric and photometric jitter scaled by one strength in [0, 1]; nothing at strength 0."""
    if strength <= 0:
        return []
    layers = [
        keras.layers.RandomRotation(0.04 * strength, fill_mode="constant"),
        keras.layers.RandomZoom(0.15 * strength, fill_mode="constant"),
        keras.layers.RandomTranslation(0.08 * strength, 0.08 * strength, fill_mode="constant"),
        keras.layers.RandomContrast(0.3 * strength, value_range=(0, 255)),
        keras.layers.RandomBrightness(0.2 * strength, value_range=(0, 255)),
    ]
    if horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal"))
    allow_compiling_on_jax(layers)
    return layers


def _backbone(resolution: int, model_cfg: ModelConfig) -> keras.Model:
    weights = resolve_weights(model_cfg.weights)
    try:
        backbone = keras.applications.MobileNetV2(
            input_shape=(resolution, resolution, 3), alpha=model_cfg.alpha, include_top=False, weights=weights
        )
    except Exception as error:  # keras raises plain Exception/URLError when the download fails
        if weights == "imagenet":
            raise UserInputError(
                "--weights imagenet: could not load the ImageNet weights of MobileNetV2 "
                f"({type(error).__name__}: {error}); connect to the internet once, or pass --weights PATH.h5 or none"
            ) from error
        raise
    return backbone


def check_model_settings(model_cfg: ModelConfig, resolutions: Sequence[int], gradcam_layer: str) -> None:
    """Fetch (or find) the backbone weights for every resolution, and check the Grad-CAM layer name, now:
    inside a trial keras-tuner would record a failure as a failed trial and go on, and a wrong layer name
    found after the night could not be fixed without changing the study's config."""
    for resolution in resolutions:
        backbone = _backbone(resolution, model_cfg)
    names = [layer.name for layer in backbone.layers]
    if gradcam_layer not in names:
        raise UserInputError(
            f"gradcam.layer {gradcam_layer!r}: no such backbone layer; valid names: {', '.join(names)}"
        )
    keras.backend.clear_session()


def _set_trainable(backbone: keras.Model, unfrozen_layers: int, pretrained: bool) -> None:
    """Unfreeze the top `unfrozen_layers` (-1: all). Pretrained BatchNorm stays frozen (inference mode)."""
    count = len(backbone.layers) if unfrozen_layers < 0 else min(unfrozen_layers, len(backbone.layers))
    backbone.trainable = count > 0
    for index, layer in enumerate(backbone.layers):
        layer.trainable = index >= len(backbone.layers) - count
        if pretrained and isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


class ChestXrayHyperModel(keras_tuner.HyperModel):
    """MobileNetV2 over the five factors. `fit` picks the cached arrays at the trial's resolution."""

    def __init__(
        self,
        space: SpaceConfig,
        model_cfg: ModelConfig,
        search_cfg: SearchConfig,
        arrays_by_resolution: dict[int, SplitArrays],
        channels: int = 1,
    ) -> None:
        super().__init__(name="chest_xray_mobilenetv2")
        self.space = space
        self.model_cfg = model_cfg
        self.search_cfg = search_cfg
        self.arrays_by_resolution = arrays_by_resolution  # empty on a chief, which trains nothing
        self.channels = channels

    def declare(self, hp: keras_tuner.HyperParameters) -> dict[str, float | int | str]:
        """Register the search space on `hp` and return this trial's values."""
        space = self.space
        return {
            "resolution": hp.Choice("resolution", list(space.resolutions)),
            "augmentation": hp.Choice("augmentation", list(space.augmentation)),
            "dropout": hp.Float("dropout", space.dropout_min, space.dropout_max),
            "unfrozen_layers": hp.Choice("unfrozen_layers", list(space.unfrozen_layers)),
            "class_weighting": hp.Choice("class_weighting", list(space.class_weighting)),
            "learning_rate": hp.Float("learning_rate", space.learning_rate_min, space.learning_rate_max, sampling="log")
            if space.learning_rate_min < space.learning_rate_max
            else hp.Fixed("learning_rate", space.learning_rate_min),
        }

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        return build_from_values(self.declare(hp), self.model_cfg, self.channels)

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: object, **kwargs: object) -> object:
        arrays = self.arrays_by_resolution[int(hp.get("resolution"))]
        weights = class_weights(arrays.y_train, str(hp.get("class_weighting")))
        build_optimizer(model)  # after keras-tuner loaded a continuation's weights: Adam restarts, as before
        return model.fit(
            **fit_data(arrays, weights, self.search_cfg.batch_size),
            shuffle=True,
            **{**kwargs, "verbose": "auto" if sys.stdout.isatty() else 0},  # Keras's bar on a terminal only
        )


def build_from_values(values: Mapping[str, Any], model_cfg: ModelConfig, channels: int = 1) -> keras.Model:
    """The model of one set of searched values (a trial's, or an ablation variant's), for 1- or 3-channel input."""
    return build_model(
        resolution=int(values["resolution"]),
        augmentation=float(values["augmentation"]),
        dropout=float(values["dropout"]),
        unfrozen_layers=int(values["unfrozen_layers"]),
        learning_rate=float(values["learning_rate"]),
        model_cfg=model_cfg,
        channels=channels,
    )


def build_model(
    resolution: int,
    augmentation: float,
    dropout: float,
    unfrozen_layers: int,
    learning_rate: float,
    model_cfg: ModelConfig,
    channels: int = 1,
) -> keras.Model:
    """uint8 grayscale (or RGB, `channels` 3) in, P(positive class) out; the layer named `logit` feeds Grad-CAM."""
    pretrained = model_cfg.weights != "none"
    # Set on every build: keras-tuner's clear_session() between trials resets the global policy and distribution.
    keras.mixed_precision.set_global_policy(resolve_precision(model_cfg.precision))
    distribute_batches()
    inputs = keras.Input((resolution, resolution, channels), dtype="uint8", name="film")
    x = keras.layers.Rescaling(1.0, name="to_float")(inputs)
    for layer in _augmentation(augmentation, model_cfg.horizontal_flip):
        x = layer(x)
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="mobilenet_scale")(x)
    if channels == 1:
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    backbone = with_fused_batchnorm(_backbone(resolution, model_cfg))  # not in the start-up check: 1 s a size
    if not pretrained:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = model_cfg.bn_momentum
    _set_trainable(backbone, unfrozen_layers, pretrained)
    x = backbone(x, training=False) if pretrained else backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = SearchedDropout(dropout, name="dropout")(x)
    logit = keras.layers.Dense(1, name=LOGIT_LAYER, dtype="float32")(x)
    prob = keras.layers.Activation("sigmoid", name="prob", dtype="float32")(logit)
    model = keras.Model(inputs, prob, name="chest_xray_mobilenetv2")
    model.compile(
        optimizer=FusedAdam(learning_rate),
        loss="binary_crossentropy",
        **study_metrics(),
        jit_compile=jit_setting(model_cfg.xla),
    )
    return model


def jit_setting(xla: str) -> bool | str:
    """model.xla as Keras's jit_compile on TensorFlow. JAX has no other compiled path than XLA: off would run
    every step op by op (3.3-3.9x slower per epoch on two CPU cores at 64 px), so JAX always compiles."""
    return True if keras.backend.backend() == "jax" else XLA_SETTINGS[xla]


def xla_caveat(model_cfg: ModelConfig, augmentation_levels: Sequence[float]) -> str | None:
    """Why model.xla will not compile every trial, or None. TensorFlow's XLA has no kernel for the rotation, zoom
    and translation (ImageProjectiveTransformV3), and Keras trains such a model without XLA, after a generic
    warning per model under "on" and silently under "auto": "on" would otherwise read as every trial compiled.
    Whether the others are compiled stays Keras's call (never on the CPU under "auto", nor with deterministic
    kernels)."""
    augmented = sorted(level for level in augmentation_levels if level > 0)
    if keras.backend.backend() == "jax" or model_cfg.xla == "off" or not augmented:
        return None
    return (
        f"model.xla = \"{model_cfg.xla}\": TensorFlow's XLA cannot compile the augmentation's rotation, zoom and "
        f"translation, so trials at augmentation {', '.join(f'{level:g}' for level in augmented)} train without "
        "it (with KERAS_BACKEND=jax every trial is compiled)"
    )


def build_optimizer(model: keras.Model) -> None:
    """Create the optimizer's variables before the first step. Keras creates them lazily inside the traced
    training step, which makes TensorFlow trace that step twice: on two CPU cores, MobileNetV2 at alpha 0.35
    and 64 px took 26-30 s to build and train its first epoch of 960 films, and 18-21 s with the optimizer
    built first. Call it after loading any weights: a built optimizer would also load the Adam state saved
    beside them."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)

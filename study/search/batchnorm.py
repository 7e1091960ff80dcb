"""BatchNormalization as TensorFlow's fused kernel, so MobileNetV2's 52 BatchNorm layers trace and step faster.

Keras 3 writes BatchNormalization as separate ops on every backend (the moments, then the normalisation, and
their gradients op by op; keras-team/keras-core#225). TensorFlow's FusedBatchNormV3 computes the same in one op
forward and one backward. Measured on two CPU cores, weights none, fully trainable, batch 32, alternated runs:
at alpha 0.35 and 64 px (1,600 films, one thread) the first epoch, which pays the trace, took 10.8-11.7 s
instead of 14.6-19.5 s and a later epoch 4.2-4.3 s instead of 5.6-5.7 s; at alpha 1.0 and 224 px training ran
at 18.5 instead of 9.3 films/s. Keras's own code still runs on other backends, for masks, renorm, synchronized
statistics, a layer without scale or centre, inputs other than 4-D channels-last float, and in inference mode
once the study asked for deterministic kernels (TensorFlow's GPU kernel has no deterministic gradient of the
fused op in inference mode, and Grad-CAM's gradient passes through every BatchNorm in that mode).
"""

from __future__ import annotations

from typing import Any

import keras

from study.device import deterministic_kernels

FUSABLE_DTYPES = ("float16", "bfloat16", "float32")


@keras.saving.register_keras_serializable(package="chest_xray_study")
class BatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization computed by TensorFlow's fused kernel, with Keras's statistics: float32
    arithmetic, and the biased batch variance in the moving average. Keras's class name on purpose: a weights
    file names each layer's variables after its class, so checkpoints written before the fusing still load."""

    def _fusable(self, inputs: Any, mask: Any, training_now: bool) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not getattr(self, "renorm", False)  # Keras 3.13 (Colab's) has no renorm option
            and not self.synchronized
            and self.scale
            and self.center
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and keras.backend.standardize_dtype(inputs.dtype) in FUSABLE_DTYPES
            and (training_now or not deterministic_kernels())
        )

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        training_now = bool(training) and self.trainable
        if not self._fusable(inputs, mask, training_now):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        films = tf.cast(inputs, "float32")  # as Keras: BatchNorm overflows in float16
        gamma, beta = tf.cast(self.gamma, "float32"), tf.cast(self.beta, "float32")
        if training_now:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                films, gamma, beta, epsilon=self.epsilon, is_training=True
            )
            # The kernel returns the unbiased batch variance (n / (n - 1)); Keras averages the biased one.
            count = tf.cast(tf.reduce_prod(tf.shape(films)[:-1]), "float32")
            variance = variance * (count - 1.0) / count
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                films,
                gamma,
                beta,
                mean=tf.cast(self.moving_mean, "float32"),
                variance=tf.cast(self.moving_variance, "float32"),
                epsilon=self.epsilon,
                is_training=False,
            )
        return tf.cast(outputs, self.compute_dtype)


def with_fused_batchnorm(model: keras.Model) -> keras.Model:
    """The same functional model, layer names and weights included, with every Keras BatchNormalization layer
    fused. The clone initialises its variables before the original's are copied in (about 0.7 s per build at
    alpha 0.35, 1 s at alpha 1.0)."""

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        kind = BatchNormalization if type(layer) is keras.layers.BatchNormalization else type(layer)
        return kind.from_config(layer.get_config())

    original = model.inputs[0]
    inputs = keras.Input(batch_shape=original.shape, dtype=original.dtype, name=model.layers[0].name)
    fused = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    fused.set_weights(model.get_weights())
    return fused

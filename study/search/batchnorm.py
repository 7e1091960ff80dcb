"""BatchNormalization as TensorFlow's fused kernel, so MobileNetV2's 52 BatchNorm layers trace and step faster.

Keras 3 writes BatchNormalization as separate ops on every backend (the moments, then the normalisation, and
their gradients op by op; keras-team/keras-core#225). TensorFlow's FusedBatchNormV3 computes the same in one op
forward and one backward, as tf.keras did. Measured on two CPU cores (alpha 0.35, 1,600 films, batch 32, one
thread): at 64 px the first epoch, which pays the trace, took 10.8-11.7 s instead of 14.6-19.5 s, and a later
epoch 4.2-4.3 s instead of 5.6-5.7 s; at 48 px a later epoch took 3.0 s instead of 5.2 s. Other backends, and the
layer's rarer options (masks, renorm, other axes), keep Keras's own code.
"""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="chest_xray_study")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization computed by TensorFlow's fused kernel on 4-D channels-last inputs, with
    Keras's statistics: float32 arithmetic, and the biased batch variance in the moving average."""

    def _fusable(self, inputs: Any, mask: Any) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not getattr(self, "renorm", False)  # Keras 3.13 (Colab's) has no renorm option
            and not self.synchronized
            and self.scale
            and self.center
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
        )

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        films = tf.cast(inputs, "float32")  # as Keras: BatchNorm overflows in float16
        gamma, beta = tf.cast(self.gamma, "float32"), tf.cast(self.beta, "float32")
        if training and self.trainable:
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
    """The same functional model, layer names and weights included, with every BatchNormalization layer fused."""

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        kind = FusedBatchNormalization if type(layer) is keras.layers.BatchNormalization else type(layer)
        return kind.from_config(layer.get_config())

    inputs = keras.Input(model.input_shape[1:], name=model.layers[0].name)
    fused = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    fused.set_weights(model.get_weights())
    return fused

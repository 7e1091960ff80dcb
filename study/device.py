"""Which accelerators the Keras backend sees: the study picks precision and distribution from this."""

from __future__ import annotations

import platform

import keras


def gpu_names() -> list[str]:
    """Names of the GPUs the active Keras backend can use (TensorFlow or JAX); empty on a CPU-only machine."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [
            tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")
        ]
    if backend == "jax":
        import jax

        return [device.device_kind for device in jax.devices() if device.platform == "gpu"]
    return []


def describe_device() -> str:
    """What the manifest records as the machine that trained: the GPUs, else the CPU."""
    gpus = gpu_names()
    return ", ".join(gpus) if gpus else f"CPU ({platform.processor() or platform.machine()})"

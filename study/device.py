"""Which accelerators the Keras backend sees, and what that backend compiles: the study picks precision and
distribution from this."""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterable
from pathlib import Path

import keras

from study.errors import UserInputError

logger = logging.getLogger(__name__)

_deterministic_kernels = False  # whether use_deterministic_kernels ran: process-wide, as TensorFlow's switch


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


def device_line() -> str:
    """One line for the log and --prepare-only: the GPUs (or that none is visible), with the framework and
    the CUDA it was built for, so a night that would run on the CPU is caught before it starts."""
    gpus = gpu_names()
    found = ", ".join(gpus) if gpus else f"no GPU visible, CPU ({platform.processor() or platform.machine()})"
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return f"{found}; Keras {keras.__version__} on JAX {jax.__version__}, platform {jax.default_backend()}"
    if backend != "tensorflow":
        return f"{found}; Keras {keras.__version__} on {backend}"
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    cuda = f"built for CUDA {build['cuda_version']}" if build.get("is_cuda_build") else "built without CUDA"
    return f"{found}; TensorFlow {tf.__version__}, {cuda}"


def deterministic_kernels() -> bool:
    """Whether this process asked TensorFlow for deterministic kernels (`use_deterministic_kernels`)."""
    return _deterministic_kernels


def data_parallel_devices() -> list[object]:
    """The devices a JAX study splits every batch across: all of JAX's default platform when it has several
    (the GPUs of a multi-GPU machine; host devices when XLA_FLAGS asks for them), else none. TensorFlow spreads
    the search over several GPUs with MirroredStrategy instead (study.search.tuner)."""
    if keras.backend.backend() != "jax":
        return []
    import jax

    devices = jax.devices()
    return list(devices) if len(devices) > 1 else []


def distribute_batches() -> None:
    """On JAX with several devices, Keras's DataParallel: the weights on every device, each batch split across
    them. Keras's clear_session() forgets it, as it forgets the precision policy (keras-tuner clears between
    trials), so every build and load sets it again."""
    devices = data_parallel_devices()
    if devices:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))


def replicas() -> int:
    """How many parts every batch splits into: its size must divide by this (JAX's DataParallel refuses any
    other), which check_batch_divides ensures at start-up and study.search.batches keeps by padding every split
    to whole batches. 1 on TensorFlow, whose MirroredStrategy takes uneven batches."""
    return len(data_parallel_devices()) or 1


def check_batch_divides(batch_size: int) -> None:
    """Refuse a batch size the devices cannot share before any work is done, not at the first trial."""
    parts = replicas()
    if batch_size % parts:
        fitting = max(parts, batch_size - batch_size % parts)
        raise UserInputError(
            f"search.batch_size {batch_size}: JAX splits every batch across its {parts} devices, so the batch "
            f"size must be a multiple of {parts} (--set search.batch_size={fitting})"
        )


def require_gpu() -> None:
    """The search would train on the CPU: refuse with what was found and how to go on anyway."""
    if not gpu_names():
        raise UserInputError(
            f"model.require_gpu: {device_line()}; a night on the CPU trains only a few trials. Give the runtime "
            "a GPU (TensorFlow's own lines above say why it found none), or run on the CPU anyway with --cpu "
            "(--set model.require_gpu=false)"
        )


def use_deterministic_kernels() -> None:
    """Ask the framework for deterministic kernels, so that a rerun trial repeats on a GPU as it does on the
    CPU (cuDNN otherwise picks kernels whose sums are not bit-for-bit repeatable). Costs GPU speed."""
    global _deterministic_kernels
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        _deterministic_kernels = True
    else:
        logger.warning(
            "model.deterministic: only the TensorFlow backend is made deterministic here, not %s",
            keras.backend.backend(),
        )


def cache_compilations(folder: Path) -> None:
    """On JAX, every compiled step is also kept in `folder`, so a trial or an ablation run whose model was
    compiled before (a Hyperband continuation, the best configuration retrained, a resumed session) loads it
    instead of compiling again: the smoke study took 6 min 44 s instead of 7 min 31 s on two CPU cores.
    TensorFlow has no such cache; nothing changes there."""
    if keras.backend.backend() != "jax":
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))


def allow_compiling_on_jax(layers: Iterable[keras.layers.Layer]) -> None:
    """Keras marks rotation, zoom and translation as not XLA-compatible, which is true of TensorFlow's
    projective-transform kernel; on JAX they are jnp code that compiles, and one such flag makes Keras run a
    whole training or prediction step op by op (an augmented epoch: 36.5 s against 11.6 s compiled, two CPU
    cores). The flag is not saved with a model, so it is set on every model built or loaded."""
    if keras.backend.backend() != "jax":
        return
    for layer in layers:
        if isinstance(layer, (keras.layers.RandomRotation, keras.layers.RandomZoom, keras.layers.RandomTranslation)):
            layer.supports_jit = True

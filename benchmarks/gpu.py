"""What a night costs on this machine: the study's own model timed on the GPU, one command (12 minutes on an H200
under JAX, most of it compiling).

Measures, each side by side in one run:
- training throughput (images/s) of the study's model (MobileNetV2, alpha 1.0) at 160, 192 and 224 px, fully
  trainable; at 224 px also frozen, float32 against mixed_float16 (and bfloat16 where the GPU has it), XLA
  off against on (the compile's cost and the per-epoch gain reported apart; on TensorFlow both without
  augmentation, whose rotation, zoom and translation its XLA cannot compile), and on TensorFlow the study's
  fused BatchNorm against Keras's own layer; each row records whether Keras compiled the model with XLA;
- the per-trial overhead: build, trace and the first epoch against later epochs, and the same again for a
  second build of the study's model at 224 px, as a later trial of a step shape already compiled pays it (on
  JAX its steps load from a compilation cache, as they do from the study's cache folder);
- the feed ratio: fitting from the uint8 arrays as the study does, against the same steps on one batch the
  backend holds (a cached tf.data batch on TensorFlow, which still crosses to the GPU each step; a jax.Array
  already on the GPU on JAX): no NumPy slicing or shuffling per step; target >= 0.95;
- batched Grad-CAM throughput at 224 px;
- the night this implies: the overnight plan's trials and epochs at the measured rates, beside the estimate the
  study's own calibration makes for the same plan on this machine. The calibration is checked against the first
  setting as soon as that setting's feed ratio, Grad-CAM and second build are done, so a run cut short keeps
  that check.
Writes a table to stdout and the figures to --out (JSON, rewritten after each measurement). Without a GPU it
says so and exits 0; --quick runs a tiny version on whatever is there (the CPU included) in under a minute, so
the script cannot rot unseen. On JAX it needs no TensorFlow.

Run: python benchmarks/gpu.py [--quick] [--out benchmarks/gpu.json]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras

from study.config import builtin_config_path, load_config
from study.data.split import SplitArrays
from study.device import cache_compilations, device_line, gpu_names, replicas
from study.explain.gradcam import GradCam
from study.results.io import write_json
from study.search import hypermodel
from study.search.calibration import calibrate
from study.search.hypermodel import build_model, build_optimizer, resolve_precision
from study.search.plan import hyperband_plan

# Kaggle's train+val pool (5,232 films) split by the overnight config's validation share of 0.2.
KAGGLE_TRAIN, KAGGLE_VAL = 4186, 1046


@dataclasses.dataclass(frozen=True)
class Setting:
    """One timed model: input size, trainable backbone or not, precision, XLA, whether its BatchNorm layers are
    the study's fused ones or Keras's own, and whether it augments (at the strongest strength searched) or not."""

    resolution: int
    trainable: bool
    precision: str
    xla: bool
    fused_batchnorm: bool = True
    augmented: bool = True

    @property
    def name(self) -> str:
        # JAX compiles every step with XLA whatever model.xla says (hypermodel.jit_setting)
        xla = "XLA (JAX)" if keras.backend.backend() == "jax" else f"XLA {'on' if self.xla else 'off'}"
        backbone = "trainable" if self.trainable else "frozen"
        batchnorm = "" if self.fused_batchnorm else ", Keras BatchNorm"
        augmentation = "" if self.augmented else ", no augmentation"
        return f"{self.resolution} px, {backbone}, {self.precision}, {xla}{batchnorm}{augmentation}"

    @property
    def as_the_study_trains(self) -> bool:
        as_built = self.fused_batchnorm and self.augmented  # as the calibration builds it
        return self.trainable and not self.xla and self.precision == study_precision() and as_built


@dataclasses.dataclass(frozen=True)
class Scale:
    """The sizes of one run: the full benchmark or --quick."""

    alpha: float
    resolutions: tuple[int, ...]
    images: int  # per timed epoch
    batch: int
    precisions: tuple[str, ...]
    xla: bool  # time XLA on as well (not on a CPU, where it is 5-20x slower)
    steady_seconds: float  # the later epochs of a setting run until they add up to this (at least two)


def _scale(quick: bool, has_gpu: bool) -> Scale:
    if quick:
        return Scale(alpha=0.35, resolutions=(32,), images=64, batch=16, precisions=("float32",), xla=False,
                     steady_seconds=0.0)  # fmt: skip
    precisions = ("float32", "mixed_float16", *(("mixed_bfloat16",) if _has_bfloat16() else ()))
    # an H200 trains 2,048 films in under a second, where one epoch's timing is noise: time several
    return Scale(alpha=1.0, resolutions=(160, 192, 224), images=2048, batch=32, precisions=precisions, xla=has_gpu,
                 steady_seconds=5.0)  # fmt: skip


def _has_bfloat16() -> bool:
    """bfloat16 runs on tensor cores from compute capability 8.0 (A100, L4, H100); a T4 (7.5) emulates it."""
    if keras.backend.backend() == "jax":  # without asking TensorFlow, which a JAX machine may not have
        import jax

        gpus = [device for device in jax.devices() if device.platform == "gpu"]
        return any(float(getattr(gpu, "compute_capability", "0")) >= 8.0 for gpu in gpus)
    import tensorflow as tf

    details = [tf.config.experimental.get_device_details(gpu) for gpu in tf.config.list_physical_devices("GPU")]
    return any(detail.get("compute_capability", (0, 0)) >= (8, 0) for detail in details)


def study_precision() -> str:
    """The precision the overnight study trains in on this machine (model.precision = auto)."""
    return resolve_precision(load_config(builtin_config_path("overnight")).model.precision)


def settings(scale: Scale) -> list[Setting]:
    """The largest size as the study trains it first (the calibration is checked against it before the next
    setting, so a run cut short keeps that check), then the other sizes, then at the largest size: each
    precision, frozen, XLA."""
    largest, ours = max(scale.resolutions), study_precision()
    chosen = [Setting(largest, True, ours, False)] + [Setting(size, True, ours, False) for size in scale.resolutions]
    chosen += [Setting(largest, True, precision, False) for precision in scale.precisions]
    chosen.append(Setting(largest, False, ours, False))
    if scale.xla and keras.backend.backend() == "tensorflow":  # on JAX every setting is compiled already
        # TensorFlow's XLA has no kernel for the rotation, zoom and translation (ImageProjectiveTransformV3), and
        # Keras silently trains such a model without it: the pair is timed without augmentation, as the study's
        # augmentation 0 trains, the only trials model.xla = "on" compiles there
        chosen += [Setting(largest, True, ours, xla, augmented=False) for xla in (False, True)]
    if keras.backend.backend() == "tensorflow":  # the fused kernel is TensorFlow's; JAX runs Keras's layer anyway
        chosen.append(Setting(largest, True, ours, False, fused_batchnorm=False))
    return list(dict.fromkeys(chosen))


def _films(count: int, resolution: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, resolution, resolution, 1), dtype=np.uint8), rng.integers(0, 2, count)


def _model(setting: Setting, scale: Scale) -> keras.Model:
    cfg = load_config(builtin_config_path("overnight"))
    model_cfg = dataclasses.replace(cfg.model, weights="none", alpha=scale.alpha, xla="on" if setting.xla else "off")
    keras.backend.clear_session()
    # as the study's calibration builds it (the strongest augmentation searched, unless the setting has none; the
    # highest dropout), so the night printed beside the calibration's compares the same model
    augmentation, dropout = max(cfg.space.augmentation) if setting.augmented else 0.0, cfg.space.dropout_max
    # each setting names its precision, mixed_bfloat16 too, which the study's model.precision does not offer
    precision = mock.patch.object(hypermodel, "resolve_precision", lambda _configured: setting.precision)
    unfused = mock.patch.object(hypermodel, "with_fused_batchnorm", lambda backbone: backbone)
    with precision, contextlib.nullcontext() if setting.fused_batchnorm else unfused:
        model = build_model(setting.resolution, augmentation, dropout, -1 if setting.trainable else 0, 1e-3, model_cfg)
    build_optimizer(model)
    return model


# the most epochs one setting trains, its first (the compile) included
MAX_EPOCHS = 12


class _EpochTimes(keras.callbacks.Callback):
    """Each epoch's seconds; ends the fit once the epochs after the first (which carries the trace) number at
    least two and add up to `steady_seconds`."""

    def __init__(self, steady_seconds: float) -> None:
        super().__init__()
        self.steady_seconds = steady_seconds
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._started)
        steady = self.seconds[1:]
        if len(steady) >= 2 and sum(steady) >= self.steady_seconds:
            self.model.stop_training = True


def time_setting(setting: Setting, scale: Scale) -> tuple[dict[str, float], keras.Model]:
    """Build, epochs from uint8 arrays (the first carries the trace; the later ones, at least two, for
    scale.steady_seconds), then evaluation throughput; the model, traced, for the measurements that follow.
    Whether the model was compiled with XLA is recorded: Keras trains one it cannot compile without, after a
    warning alone."""
    x, y = _films(scale.images, setting.resolution)
    started = time.perf_counter()
    model = _model(setting, scale)
    build = time.perf_counter() - started
    epochs = _EpochTimes(scale.steady_seconds)
    model.fit(x, y.astype("float32"), batch_size=scale.batch, epochs=MAX_EPOCHS, verbose=0, callbacks=[epochs])
    steady = float(np.median(epochs.seconds[1:]))
    started = time.perf_counter()
    model.evaluate(x, y.astype("float32"), batch_size=scale.batch, verbose=0)  # traces the evaluation step
    eval_trace = time.perf_counter() - started
    started = time.perf_counter()
    model.evaluate(x, y.astype("float32"), batch_size=scale.batch, verbose=0)
    evaluate = time.perf_counter() - started
    return {"build_s": build, "first_epoch_s": epochs.seconds[0], "epoch_s": steady,
            "later_epochs": len(epochs.seconds) - 1, "eval_trace_s": max(eval_trace - evaluate, 0.0),
            "train_images_per_s": scale.images / steady, "eval_images_per_s": scale.images / evaluate,
            "xla_compiled": bool(model.jit_compile)}, model  # fmt: skip


class _OneBatch(keras.utils.PyDataset):
    """The same batch, already on the devices (a jax.Array, split across them as DataParallel splits a batch when
    there are several), `steps` times: JAX's counterpart of a cached tf.data batch."""

    def __init__(self, x: np.ndarray, y: np.ndarray, steps: int) -> None:
        super().__init__()
        import jax

        distribution = keras.distribution.distribution()

        def placed(array: np.ndarray) -> Any:
            if distribution is None:
                return jax.device_put(array)
            return jax.device_put(array, distribution.get_data_layout(array.shape).backend_layout)

        self.batch, self.steps = (placed(x), placed(y)), steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.batch


def _resident_batches(x: np.ndarray, y: np.ndarray, steps: int) -> Any:
    """One batch held by the backend for `steps` steps: no NumPy slicing or shuffling per step."""
    if keras.backend.backend() == "jax":
        return _OneBatch(x, y, steps)
    import tensorflow as tf

    return tf.data.Dataset.from_tensors((tf.constant(x), tf.constant(y))).repeat(steps)


def feed_ratio(model: keras.Model, scale: Scale) -> dict[str, float]:
    """The time of an epoch on one batch held by the backend (a cached tf.data batch on TensorFlow, a jax.Array
    on the device on JAX) over the same epoch fed from the uint8 arrays as the study feeds them: below 1 by what
    the array feed costs on the host. `model` has trained already."""
    x, y = _films(scale.images, model.input_shape[1])
    steps = scale.images // scale.batch
    started = time.perf_counter()
    model.fit(x, y.astype("float32"), batch_size=scale.batch, epochs=1, verbose=0)
    host = time.perf_counter() - started
    resident = _resident_batches(x[: scale.batch], y[: scale.batch].astype("float32"), steps)
    model.fit(resident, epochs=1, verbose=0, shuffle=False)  # trace of the dataset path
    started = time.perf_counter()
    model.fit(resident, epochs=1, verbose=0, shuffle=False)
    device = time.perf_counter() - started
    return {"host_s": host, "device_s": device, "ratio": device / host}


def gradcam_rate(model: keras.Model, scale: Scale) -> float:
    """Batched Grad-CAM maps per second on the last backbone layer, after one warm-up batch."""
    x, _ = _films(scale.images, model.input_shape[1])
    cam = GradCam(model, "out_relu")
    explain = np.ones(len(x), bool)
    cam.maps(x[: scale.batch], explain[: scale.batch], "gradcam")
    started = time.perf_counter()
    for start in range(0, len(x), scale.batch):
        cam.maps(x[start : start + scale.batch], explain[start : start + scale.batch], "gradcam")
    return len(x) / (time.perf_counter() - started)


# JAX's event for a compiled step loaded from the compilation cache, and every one heard in this process: the
# listener is registered once and never removed (JAX 0.7, Colab's, has no public way to remove one)
CACHE_LOAD_EVENT = "/jax/compilation_cache/cache_hits"
_cache_loads: list[str] = []


def _listen_for_cache_loads() -> None:
    import jax

    def listen(event: str, **_details: Any) -> None:
        if event == CACHE_LOAD_EVENT:
            _cache_loads.append(event)

    jax.monitoring.register_event_listener(listen)


@contextlib.contextmanager
def _fresh_compilation_cache() -> Iterator[None]:
    """On JAX, every compiled step is kept in a new, empty folder, as the study keeps them in its cache folder: the
    first build of a step shape compiles it, a later build of that shape loads it. TensorFlow keeps no such cache."""
    if keras.backend.backend() != "jax":
        yield
        return
    with tempfile.TemporaryDirectory(prefix="gpu-benchmark-") as folder:
        cache_compilations(Path(folder))
        _listen_for_cache_loads()
        yield


def repeat_build(setting: Setting, scale: Scale) -> dict[str, float]:
    """The same model built and trained again, as a later trial of a step shape the night has compiled already:
    on JAX its steps load from the compilation cache (how many did is recorded), on TensorFlow they are traced
    again."""
    loaded_before = len(_cache_loads)
    row, _ = time_setting(setting, scale)
    if keras.backend.backend() == "jax":
        row["compiled_steps_loaded"] = len(_cache_loads) - loaded_before
    return row


def _fixed_part(row: dict[str, float]) -> float:
    """A trial's cost beyond its epochs: build, the training step's trace (first epoch minus a later one), the
    evaluation's trace."""
    return row["build_s"] + row["first_epoch_s"] - row["epoch_s"] + row["eval_trace_s"]


def _epoch_seconds(row: dict[str, float], train: int, val: int) -> float:
    """One epoch of `train` films and a validation pass over `val` at a setting's measured rates."""
    return train / row["train_images_per_s"] + val / row["eval_images_per_s"]


def _epoch_films(scale: Scale, quick: bool) -> tuple[int, int]:
    """Training and validation films of one epoch of the night: Kaggle's split, or tiny ones for --quick."""
    return (scale.images, scale.images // 4) if quick else (KAGGLE_TRAIN, KAGGLE_VAL)


def calibration_check(largest: dict[str, float], scale: Scale, quick: bool) -> dict[str, Any]:
    """The study's own calibration on this machine, for the overnight space at the benchmark's sizes, and its epoch
    at the largest size over the epoch the measured rates imply (the budget needs it within 25%)."""
    cfg = load_config(builtin_config_path("overnight"))
    train, val = _epoch_films(scale, quick)
    arrays = {}
    for size in scale.resolutions:
        x_train, y_train = _films(train, size)
        x_val, y_val = _films(val, size, seed=1)
        arrays[size] = SplitArrays(x_train, y_train, x_val, y_val)
    space = dataclasses.replace(cfg.space, resolutions=scale.resolutions)
    model_cfg = dataclasses.replace(cfg.model, weights="none", alpha=scale.alpha)
    calibration = calibrate(dataclasses.replace(cfg, space=space, model=model_cfg), arrays)
    measured = _epoch_seconds(largest, train, val)
    estimated = calibration.epoch_seconds[max(scale.resolutions)]
    return {"build_s": calibration.build_seconds, "epoch_s": calibration.epoch_seconds,
            "epoch_s_largest": estimated, "epoch_s_largest_measured": measured,
            "calibration_over_measured": estimated / measured}  # fmt: skip


def night(measured: dict[str, dict[str, float]], repeat: dict[str, float], calibration: dict[str, Any], scale: Scale,
          quick: bool) -> dict[str, float]:  # fmt: skip
    """The overnight plan at the measured rates, beside the calibration's estimate for it. Each step shape of the
    space (input size, augmentation, unfrozen depth; dropout, class weights and learning rate are not compiled
    in) is charged one first build of a fully trainable model, and the other trials the repeated build: an upper
    bound, since frozen and partly frozen backbones compile faster and a night need not meet every shape."""
    cfg = load_config(builtin_config_path("overnight"))
    plan = hyperband_plan(cfg.search.max_epochs, cfg.search.factor, cfg.search.hyperband_iterations)
    train, val = _epoch_films(scale, quick)
    rates = [measured[s.name] for s in settings(scale) if s.as_the_study_trains]
    epoch = float(np.mean([_epoch_seconds(row, train, val) for row in rates]))
    first_build = float(np.mean([_fixed_part(row) for row in rates]))
    space = cfg.space
    shapes = min(plan.total_trials, len(space.resolutions) * len(space.augmentation) * len(space.unfrozen_layers))
    epochs_s = plan.total_epochs * epoch
    estimated = plan.total_trials * calibration["build_s"] + plan.total_epochs * float(
        np.mean(list(calibration["epoch_s"].values()))
    )
    return {"trials": plan.total_trials, "epochs": plan.total_epochs, "step_shapes": shapes,
            "measured_s": shapes * first_build + (plan.total_trials - shapes) * _fixed_part(repeat) + epochs_s,
            "measured_every_trial_compiling_s": plan.total_trials * first_build + epochs_s,
            "calibration_s": estimated}  # fmt: skip


def run(quick: bool, out: Path) -> dict[str, Any]:
    """Every measurement, the JSON at `out` rewritten after each one ("complete": false until the last), so a
    session cut off or a run stopped at its time limit keeps what it measured: the calibration's check comes
    before the second setting."""
    scale = _scale(quick, bool(gpu_names()))
    largest = Setting(max(scale.resolutions), True, study_precision(), False)  # as the study trains at that size
    result: dict[str, Any] = {"device": device_line(), "quick": quick, "complete": False, "alpha": scale.alpha,
                              "batch": scale.batch, "images_per_epoch": scale.images, "settings": {}}  # fmt: skip
    with _fresh_compilation_cache():
        for setting in settings(scale):
            result["settings"][setting.name], model = time_setting(setting, scale)
            print(f"{setting.name:58s} {result['settings'][setting.name]['train_images_per_s']:9.1f} images/s",
                  flush=True)  # fmt: skip
            write_json(out, result)
            if setting == largest:  # feed and Grad-CAM on its model, before the next build clears the session
                result["feed"] = feed_ratio(model, scale)
                result["gradcam_images_per_s"] = gradcam_rate(model, scale)
                write_json(out, result)
                result["repeat"] = repeat_build(setting, scale)
                write_json(out, result)
                result["calibration"] = calibration_check(result["settings"][setting.name], scale, quick)
                print(f"calibration / measured, a {setting.resolution} px epoch: "
                      f"{result['calibration']['calibration_over_measured']:.2f}", flush=True)  # fmt: skip
                write_json(out, result)
        result["night"] = night(result["settings"], result["repeat"], result["calibration"], scale, quick)
    result["complete"] = True
    write_json(out, result)
    return result


def _print_table(result: dict[str, Any]) -> None:
    print(f"\n{result['device']}; alpha {result['alpha']}, batch {result['batch']}")
    print(f"{'setting':58s} {'build s':>8s} {'1st epoch':>9s} {'epoch s':>8s} {'img/s':>9s}")
    repeated = {f"{next(iter(result['settings']))}, built again": result["repeat"]}
    for name, row in {**result["settings"], **repeated}.items():
        print(f"{name:58s} {row['build_s']:8.1f} {row['first_epoch_s']:9.2f} {row['epoch_s']:8.2f} "
              f"{row['train_images_per_s']:9.1f}")  # fmt: skip
    if "compiled_steps_loaded" in result["repeat"]:
        print(f"built again: {result['repeat']['compiled_steps_loaded']} compiled steps loaded from the cache")
    feed, cams, plan, check = result["feed"], result["gradcam_images_per_s"], result["night"], result["calibration"]
    print(f"feed ratio (one batch the backend holds / the study's uint8 arrays, epoch time): {feed['ratio']:.2f} "
          "(target >= 0.95)")  # fmt: skip
    print(f"Grad-CAM: {cams:.1f} maps/s")
    print(f"the overnight plan, {plan['trials']} trials and {plan['epochs']} epochs: {plan['measured_s'] / 3600:.2f} h "
          f"at the measured rates with at most {plan['step_shapes']} step shapes compiled "
          f"({plan['measured_every_trial_compiling_s'] / 3600:.2f} h if every trial compiled its own), "
          f"{plan['calibration_s'] / 3600:.2f} h by the study's calibration (largest size's epoch: calibration / "
          f"measured = {check['calibration_over_measured']:.2f})"
          + (" [--quick: tiny films and sizes, not a real night]" if result["quick"] else ""))  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny run on any device, the CPU included")
    parser.add_argument("--out", type=Path, default=Path("benchmarks") / "gpu.json", help="where to write the JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.quick and not gpu_names():
        print(f"benchmarks/gpu.py: {device_line()}; nothing to measure (run with --quick to try it on the CPU)")
        return 0
    batch = _scale(args.quick, has_gpu=True).batch
    if batch % replicas():
        print(
            f"benchmarks/gpu.py: JAX splits every batch across its {replicas()} devices, which cannot share the "
            f"benchmark's batch of {batch}; run it on 2, 4 or 8 of them (CUDA_VISIBLE_DEVICES)",
            file=sys.stderr,
        )
        return 2
    try:  # before any measurement, so a path that cannot be written costs no GPU time
        write_json(args.out, {"device": device_line(), "quick": args.quick, "complete": False})
    except OSError as error:
        print(f"benchmarks/gpu.py: --out {args.out}: cannot write a JSON file there ({error})", file=sys.stderr)
        return 2
    result = run(args.quick, args.out)
    _print_table(result)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

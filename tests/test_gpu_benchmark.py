"""benchmarks/gpu.py cannot rot before a GPU day: its --quick run measures every part on this CPU, and without
--quick a machine with no GPU is told so, with exit 0; on JAX it runs without TensorFlow."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import pytest

from study.config import builtin_config_path, load_config
from study.search.hypermodel import resolve_precision
from study.search.plan import hyperband_plan
from tests.blocked_imports import run_without
from tests.gpu_benchmark_script import SCRIPT, load_gpu_benchmark


@pytest.mark.slow
def test_the_quick_run_measures_every_part(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["complete"]  # rewritten after each measurement, marked complete after the last
    assert result["quick"] and {"trainable", "frozen"} <= {name.split(", ")[1] for name in result["settings"]}
    assert any(name.endswith("Keras BatchNorm") for name in result["settings"])  # beside the fused, on TensorFlow
    for row in result["settings"].values():
        assert row["train_images_per_s"] > 0 and row["first_epoch_s"] > row["epoch_s"], row
        assert row["later_epochs"] == 2, row  # --quick times two epochs after the compile, whatever their length
    for name, row in result["settings"].items():  # Keras compiled with XLA what the row says it did
        assert row["xla_compiled"] == ("XLA off" not in name), name
    assert result["feed"]["ratio"] > 0 and result["gradcam_images_per_s"] > 0
    first = next(iter(result["settings"]))
    # the study's own setting first, so a run cut short keeps the calibration's check, made before the second
    precision = resolve_precision(load_config(builtin_config_path("overnight")).model.precision)
    assert first.startswith(f"32 px, trainable, {precision}, XLA") and "BatchNorm" not in first
    assert "augmentation" not in first  # augmented at the strongest strength, as the calibration's model
    assert result["repeat"]["later_epochs"] == 2 and result["repeat"]["train_images_per_s"] > 0
    assert result["calibration"]["calibration_over_measured"] > 0
    plan = result["night"]
    search = load_config(builtin_config_path("overnight")).search
    expected = hyperband_plan(search.max_epochs, search.factor, search.hyperband_iterations)
    assert (plan["trials"], plan["epochs"], plan["step_shapes"]) == (expected.total_trials, expected.total_epochs, 36)
    assert plan["measured_s"] > 0 and plan["calibration_s"] > 0
    assert "overnight plan" in completed.stdout and f"{first}, built again" in completed.stdout


def test_each_precision_the_full_run_times_builds_in_that_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU run times mixed_bfloat16 too, which the study's model.precision does not offer: rehearsed on the CPU
    before the first GPU day, the full run stopped there with a ConfigError (--quick times float32 alone)."""
    benchmark = load_gpu_benchmark(monkeypatch)
    precisions = ("float32", "mixed_float16", "mixed_bfloat16")
    scale = benchmark.Scale(alpha=0.35, resolutions=(32,), images=16, batch=8, precisions=precisions, xla=False,
                            steady_seconds=0.0)  # fmt: skip
    try:
        for precision in precisions:
            model = benchmark._model(benchmark.Setting(32, True, precision, False), scale)
            convolutions = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
            assert convolutions and {layer.dtype_policy.name for layer in convolutions} == {precision}
            assert model.get_layer("logit").dtype_policy.name == "float32"  # the head stays float32, as in the study
    finally:
        keras.mixed_precision.set_global_policy("float32")  # the global policy the next test in this worker expects


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="on JAX every setting is compiled with XLA")
def test_on_tensorflow_the_xla_pair_times_models_that_differ_in_xla_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorFlow's XLA has no kernel for the augmentation's rotation, zoom and translation, and Keras trains such
    a model without XLA after a warning alone: built with the strongest augmentation, as before, the "XLA on" row
    timed a model without XLA."""
    benchmark = load_gpu_benchmark(monkeypatch)
    scale = benchmark.Scale(alpha=0.35, resolutions=(32,), images=16, batch=8, precisions=("float32",), xla=True,
                            steady_seconds=0.0)  # fmt: skip
    compiled = [setting for setting in benchmark.settings(scale) if setting.xla]
    assert len(compiled) == 1 and dataclasses.replace(compiled[0], xla=False) in benchmark.settings(scale)
    assert benchmark._model(compiled[0], scale).jit_compile


def test_later_epochs_are_timed_until_they_add_up_to_the_steady_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """An H200 trains an epoch in under a second, too short to time once: the fit goes on until the epochs after
    the compile add up to steady_seconds, at least two of them, and no longer."""
    benchmark = load_gpu_benchmark(monkeypatch)
    clock = iter([0.0, 100.0, 100.0, 100.8, 100.8, 101.6, 101.6, 102.4])  # a 100 s compile, then 0.8 s epochs
    monkeypatch.setattr(benchmark, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    model = SimpleNamespace(stop_training=False)
    epochs = benchmark._EpochTimes(steady_seconds=2.0)
    epochs.set_model(model)
    for epoch in range(4):
        epochs.on_epoch_begin(epoch)
        epochs.on_epoch_end(epoch)
        assert model.stop_training == (epoch == 3), epoch  # 0.8 + 0.8 < 2.0 <= 0.8 + 0.8 + 0.8
    assert epochs.seconds == pytest.approx([100.0, 0.8, 0.8, 0.8])


def test_the_night_charges_each_step_shape_one_first_build_and_every_later_trial_a_repeated_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On an H200 under JAX a first build of the study's model cost about 106 s and an epoch under 2 s: charging
    all 90 trials a first build about doubles the night, when the cache folder compiles each of the
    overnight space's 36 step shapes once (3 sizes x 3 augmentation strengths x 4 unfrozen depths)."""
    benchmark = load_gpu_benchmark(monkeypatch)
    scale = benchmark.Scale(alpha=1.0, resolutions=(160, 192, 224), images=2048, batch=32, precisions=("float32",),
                            xla=False, steady_seconds=5.0)  # fmt: skip
    # a first build of 1 + (101 - 1) + 4 = 105 s; an epoch of Kaggle's 4,186 + 1,046 films in 1 + 1 = 2 s
    rates = {"train_images_per_s": float(benchmark.KAGGLE_TRAIN), "eval_images_per_s": float(benchmark.KAGGLE_VAL)}
    first = {"build_s": 1.0, "first_epoch_s": 101.0, "epoch_s": 1.0, "eval_trace_s": 4.0, **rates}
    measured = {setting.name: first for setting in benchmark.settings(scale) if setting.as_the_study_trains}
    assert len(measured) == 3
    repeat = {**first, "first_epoch_s": 3.0, "eval_trace_s": 0.0}  # 1 + (3 - 1) + 0 = 3 s
    calibration = {"build_s": 100.0, "epoch_s": {160: 1.0, 192: 2.0, 224: 3.0}}
    plan = benchmark.night(measured, repeat, calibration, scale, quick=False)
    assert (plan["trials"], plan["epochs"], plan["step_shapes"]) == (90, 576, 36)
    assert plan["measured_s"] == pytest.approx(36 * 105 + (90 - 36) * 3 + 576 * 2)
    assert plan["measured_every_trial_compiling_s"] == pytest.approx(90 * 105 + 576 * 2)
    assert plan["calibration_s"] == pytest.approx(90 * 100 + 576 * 2)


def test_an_out_path_that_cannot_be_written_is_refused_before_any_measurement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPU session is short: a folder given as --out would otherwise fail the first write minutes in."""
    benchmark = load_gpu_benchmark(monkeypatch)
    monkeypatch.setattr(benchmark, "run", lambda *_args: pytest.fail("measured although --out cannot be written"))
    assert benchmark.main(["--quick", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert f"--out {tmp_path}" in error and "cannot write" in error


@pytest.mark.slow
def test_without_a_gpu_it_says_so_and_measures_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run in this process, with the backend made to list no GPU, so a machine that has one checks it too."""
    benchmark = load_gpu_benchmark(monkeypatch)
    monkeypatch.setattr(benchmark, "gpu_names", lambda: [])
    monkeypatch.setattr("study.device.gpu_names", lambda: [])  # what device_line lists
    out = tmp_path / "gpu.json"
    assert benchmark.main(["--out", str(out)]) == 0
    assert "no GPU visible" in capsys.readouterr().out and not out.exists()


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs JAX (bash .ci/run's JAX and Colab stacks)")
def test_on_jax_the_quick_run_needs_no_tensorflow(tmp_path: Path) -> None:
    """A JAX machine may have no TensorFlow at all, and the benchmark is how a night there is sized: its --quick
    run measures every part with TensorFlow unimportable, the feed ratio on a batch JAX holds on the device. It
    runs wherever JAX is installed, Colab's JAX 0.7 too, whose jax.monitoring lacks calls newer ones have."""
    out = tmp_path / "gpu.json"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = run_without({"tensorflow"}, SCRIPT, ["--quick", "--out", str(out)], timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert "on JAX" in result["device"] and result["feed"]["ratio"] > 0 and result["gradcam_images_per_s"] > 0
    assert all(row["train_images_per_s"] > 0 for row in result["settings"].values())
    # the second build of the study's model loads its training step from the compilation cache, as a later trial
    # of a step shape does from the study's cache folder
    assert result["repeat"]["compiled_steps_loaded"] >= 1

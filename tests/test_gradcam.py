"""Grad-CAM: batched maps equal per-image maps, constant films stay finite, the model is left untouched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from study.config import ModelConfig
from study.errors import UserInputError
from study.explain.gallery import GalleryItem, caption_for, choose_gallery, overlay
from study.explain.gradcam import GradCam, class_activation
from study.results.vocab import CAM_METHODS
from study.search.hypermodel import build_model


def _model_config(precision: str) -> ModelConfig:
    return ModelConfig(
        weights="none", alpha=0.35, bn_momentum=0.9, horizontal_flip=False, precision=precision, xla="off",
        require_gpu=False, deterministic=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """Seeded, so that a failure reproduces: every test here sees the same weights on every run."""
    keras.utils.set_random_seed(0)
    cfg = _model_config("float32")
    return build_model(
        resolution=64, augmentation=0.3, dropout=0.1, unfrozen_layers=-1, learning_rate=1e-3, model_cfg=cfg
    )


@pytest.fixture(scope="module")
def films() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (5, 64, 64, 1), dtype=np.uint8)


@pytest.mark.parametrize("method", CAM_METHODS)
def test_batched_maps_equal_per_image_maps(model: keras.Model, films: np.ndarray, method: str) -> None:
    explain = np.array([True, False, True, False, True])
    cam = GradCam(model, "out_relu")
    batched = cam.maps(films, explain, method)
    single = np.concatenate([cam.maps(films[i : i + 1], explain[i : i + 1], method) for i in range(len(films))])
    assert batched.shape == (5, 2, 2)
    assert np.allclose(batched, single, atol=1e-4)
    # Each map is scaled to its own peak (or is all zero where the class has no positive evidence).
    peaks = batched.reshape(5, -1).max(axis=1)
    assert batched.min() >= 0.0 and np.all(np.isclose(peaks, 1.0, atol=1e-4) | (peaks == 0.0))
    assert peaks.max() == pytest.approx(1.0, abs=1e-4), "all-zero maps: the gradient was lost"


def test_maps_in_batches_of_one_size_are_the_films_own(model: keras.Model, films: np.ndarray) -> None:
    """Five films in batches of two: the last batch is filled with a copy, whose map is dropped; each film keeps
    its own map, in order, and one batch shape reaches the compiled pass."""
    explain = np.array([True, False, True, False, True])
    cam = GradCam(model, "out_relu")
    shapes: list[tuple[int, ...]] = []
    maps = cam.maps
    cam.maps = lambda batch, *rest: shapes.append(batch.shape) or maps(batch, *rest)  # type: ignore[method-assign]
    in_batches = cam.maps_in_batches(films, explain, "layercam", batch_size=2)
    assert set(shapes) == {(2, 64, 64, 1)} and len(shapes) == 3
    assert np.allclose(in_batches, maps(films, explain, "layercam"), atol=1e-4)
    assert cam.maps_in_batches(films[:1], explain[:1], "layercam", batch_size=32).shape == (1, 2, 2)


def test_layercam_keeps_a_cell_whose_channel_gradient_cancels_over_the_grid() -> None:
    """Why LayerCAM at a shallow layer: one channel, active in both cells of a 1 x 2 grid, whose gradient is +1 in
    one and -1 in the other. Grad-CAM's one weight per channel (the mean gradient) is 0, so its map is empty;
    LayerCAM weighs each cell by its own positive gradient and lights the cell that raises the logit."""
    activations = np.ones((1, 1, 2, 1), np.float32)
    gradients = np.array([1.0, -1.0], np.float32).reshape(1, 1, 2, 1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(class_activation(activations, gradients, "gradcam")), 0.0)
    layercam = keras.ops.convert_to_numpy(class_activation(activations, gradients, "layercam"))
    np.testing.assert_allclose(layercam, [[[1.0, 0.0]]])


def test_layercam_equals_gradcam_where_each_channel_gradient_is_the_same_over_the_grid() -> None:
    """A deep layer's gradients vary little over its grid: where they do not vary at all, the two methods agree."""
    rng = np.random.default_rng(1)
    activations = rng.random((2, 3, 3, 4)).astype(np.float32)
    gradients = np.broadcast_to(rng.random((2, 1, 1, 4)).astype(np.float32), (2, 3, 3, 4))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(class_activation(activations, gradients, "layercam")),
        keras.ops.convert_to_numpy(class_activation(activations, gradients, "gradcam")),
        rtol=1e-5,
    )


def test_the_two_classes_are_explained_by_opposite_gradients(model: keras.Model, films: np.ndarray) -> None:
    """Grad-CAM of NORMAL back-propagates the negated logit, so its map is where PNEUMONIA's weighted sum is
    negative: the two maps of a film never light up the same cell, and one of them is non-zero."""
    cam = GradCam(model, "block_13_expand_relu")
    pneumonia = cam.maps(films, np.ones(5, bool), "gradcam")
    normal = cam.maps(films, np.zeros(5, bool), "gradcam")
    assert not np.any((pneumonia > 1e-6) & (normal > 1e-6))
    assert np.all((pneumonia.reshape(5, -1).max(axis=1) > 0.99) | (normal.reshape(5, -1).max(axis=1) > 0.99))


def test_an_earlier_layer_gives_a_finer_map(model: keras.Model, films: np.ndarray) -> None:
    maps = GradCam(model, "block_13_expand_relu").maps(films, np.ones(5, bool))
    assert maps.shape == (5, 4, 4)


@pytest.mark.parametrize("method", CAM_METHODS)
def test_constant_film_gives_a_finite_map(model: keras.Model, method: str) -> None:
    constant = np.full((2, 64, 64, 1), 128, np.uint8)
    maps = GradCam(model, "out_relu").maps(constant, np.array([True, False]), method)
    assert np.isfinite(maps).all()


def test_predictions_are_unchanged_by_computing_maps(model: keras.Model, films: np.ndarray) -> None:
    before = model.predict(films, verbose=0)
    GradCam(model, "out_relu").maps(films, np.ones(5, bool))
    assert np.array_equal(before, model.predict(films, verbose=0))


def test_unknown_layer_lists_valid_names(model: keras.Model) -> None:
    with pytest.raises(UserInputError, match=r"no_such_layer.*out_relu"):
        GradCam(model, "no_such_layer")


def test_gallery_picks_the_most_confident_then_the_borderline_films_of_each_category() -> None:
    rows = [
        {"path": "a", "label": "1", "prob": "0.95"}, {"path": "b", "label": "1", "prob": "0.7"},
        {"path": "g", "label": "1", "prob": "0.55"}, {"path": "h", "label": "1", "prob": "0.8"},
        {"path": "c", "label": "1", "prob": "0.2"}, {"path": "d", "label": "0", "prob": "0.9"},
        {"path": "e", "label": "0", "prob": "0.1"}, {"path": "f", "label": "0", "prob": "0.3"},
    ]  # fmt: skip
    items = choose_gallery(rows, {"a": "train/p1"}, threshold=0.5, per_category=1)
    assert [(item.category, item.selection, item.path) for item in items] == [
        ("TP", "confident", "a"), ("TP", "borderline", "g"),
        ("FP", "confident", "d"),
        ("FN", "confident", "c"),
        ("TN", "confident", "e"), ("TN", "borderline", "f"),
    ]  # fmt: skip
    assert items[0].patient_id == "train/p1"


def test_overlay_carries_its_caption_below_the_film(tmp_path: Path) -> None:
    film = tmp_path / "film.png"
    Image.fromarray(np.full((200, 240), 90, np.uint8)).save(film)
    item = GalleryItem(str(film), "FN", 1, 0.31, "person7", "borderline")
    plain = overlay(film, np.ones((2, 2), np.float32), "squash")
    captioned = overlay(film, np.ones((2, 2), np.float32), "squash", caption_for(item, "gradcam++", "out_relu"))
    assert captioned.width >= plain.width and captioned.height > plain.height
    band = np.asarray(captioned)[plain.height :]
    assert band.max() > 200, "white text drawn in the band"
    assert "FN (borderline)" in caption_for(item, "gradcam++", "out_relu")
    assert "person7" in caption_for(item, "gradcam++", "out_relu")


def test_overlay_of_a_colour_study_keeps_the_image_colours(tmp_path: Path) -> None:
    """A study of colour images (data.color) shows its images in colour under the map, as the model saw them;
    a gray study's overlay of the same file is gray underneath."""
    image = tmp_path / "image.png"
    Image.fromarray(np.tile(np.array([200, 20, 20], np.uint8), (100, 120, 1))).save(image)  # red
    no_heat = np.zeros((2, 2), np.float32)
    colour = np.asarray(overlay(image, no_heat, "squash", colour=True), dtype=int)
    gray = np.asarray(overlay(image, no_heat, "squash"), dtype=int)
    assert (colour[..., 0] - colour[..., 1]).mean() > 80, "red stays red under a cold map"
    assert abs((gray[..., 0] - gray[..., 1]).mean()) < 5, "a gray study's overlay has no colour of its own"


def test_mixed_precision_keeps_a_float32_head_and_finite_maps(films: np.ndarray) -> None:
    """What a GPU run gets by default (precision auto): float16 inside, float32 probabilities and maps."""
    cfg = _model_config("mixed_float16")
    try:
        mixed = build_model(64, augmentation=0.0, dropout=0.0, unfrozen_layers=-1, learning_rate=1e-3, model_cfg=cfg)
        assert mixed.get_layer("gray_to_rgb").compute_dtype == "float16"
        assert isinstance(mixed.optimizer, keras.optimizers.LossScaleOptimizer)
        probabilities = mixed.predict(films, verbose=0)
        assert probabilities.dtype == np.float32 and np.isfinite(probabilities).all()
        maps = GradCam(mixed, "out_relu").maps(films, np.ones(5, bool), "gradcam++")
        assert maps.dtype == np.float32 and np.isfinite(maps).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_maps_are_the_same_on_tensorflow_and_jax(model: keras.Model, films: np.ndarray, tmp_path: Path) -> None:
    """The two backends' gradient passes differ (a tape, a perturbed graph); the same saved weights must
    give the same maps on both, for a deep and a shallow layer and every method. The backends round float32
    differently (1e-7), and a random model can magnify that: a ReLU whose input is within rounding of zero passes
    the gradient on one backend only, and a map whose positive part is small beside cancelling channels is scaled
    up to its peak. CI once saw 1.5e-3 in 1.7% of one layer's Grad-CAM cells (5 films), where eight other draws
    agreed to 7e-6. So under 5% of each layer and method's cells may differ by more than 1e-4 (at out_relu's 20
    cells, none), and none by 1e-2; a wrong layer, sign or weighting moves most cells by far more. Runs where
    JAX is installed:
    bash .ci/run's JAX environment (requirements-jax.txt) and Colab's stack (.ci/colab-stack.txt)."""
    pytest.importorskip("jax")
    from tests.cam_on_backend import cam_maps

    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "films.npy", films)
    layers = ["out_relu", "block_3_expand_relu"]
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("cam_on_backend.py")), str(tmp_path / "model.keras"),
         str(tmp_path / "films.npy"), str(tmp_path / "maps.npz"), *layers],
        env={**os.environ, "KERAS_BACKEND": other}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    theirs = np.load(tmp_path / "maps.npz")
    assert str(theirs["backend"]) == other
    ours = cam_maps(keras.saving.load_model(tmp_path / "model.keras", compile=False), films, layers)
    for key, mine in ours.items():
        assert mine.max() == pytest.approx(1.0, abs=1e-4), f"{key}: all-zero maps compare equal on any backend"
        difference = np.abs(theirs[key] - mine)
        assert np.mean(difference > 1e-4) < 0.05, f"{key}: {np.mean(difference > 1e-4):.1%} of cells differ by >1e-4"
        assert difference.max() < 1e-2, f"{key}: cells differ by up to {difference.max():.1e}"

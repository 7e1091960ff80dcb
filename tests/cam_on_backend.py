"""Grad-CAM maps of a saved model under whichever backend KERAS_BACKEND names, for the cross-backend test:
python tests/cam_on_backend.py MODEL.keras FILMS.npy OUT.npz LAYER [LAYER ...]."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from study.explain.gradcam import GradCam
from study.results.vocab import CAM_METHODS
from study.search.saving import load_model


def cam_maps(model: keras.Model, films: np.ndarray, layers: list[str]) -> dict[str, np.ndarray]:
    """Every layer's maps by every method, explaining the positive class for even films and the negative for
    odd ones, keyed "layer/method"."""
    explain = np.arange(len(films)) % 2 == 0
    return {
        f"{layer}/{method}": GradCam(model, layer).maps(films, explain, method)
        for layer in layers
        for method in CAM_METHODS
    }


if __name__ == "__main__":
    model_path, films_path, out_path, *layer_names = sys.argv[1:]
    maps = cam_maps(load_model(Path(model_path)), np.load(films_path), layer_names)
    np.savez(out_path, backend=keras.backend.backend(), **maps)

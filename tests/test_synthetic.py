"""The demo films: Kaggle layout and names, deterministic, and separable only by where the opacity is."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from study.data.discover import find_split_root, list_films
from study.data.synthetic import mask_path_for, write_demo_dataset


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    write_demo_dataset(root, {"train": 400, "val": 16, "test": 40}, normal_share=0.4, seed=3)
    return root


def test_layout_names_and_patients(demo_root: Path) -> None:
    listing = list_films(find_split_root(demo_root))
    films = listing.films
    assert listing.without_patient == 0
    assert Counter((film.source_split, film.label) for film in films) == {
        ("train", "NORMAL"): 160, ("train", "PNEUMONIA"): 240, ("val", "NORMAL"): 6, ("val", "PNEUMONIA"): 10,
        ("test", "NORMAL"): 16, ("test", "PNEUMONIA"): 24,
    }  # fmt: skip
    per_patient = Counter(film.patient_id for film in films)
    assert max(per_patient.values()) > 1, "several films per patient exercise the grouped split"
    for film in films:
        with Image.open(film.path) as image:
            assert image.format == "JPEG" and image.mode == "L"
        assert mask_path_for(film.path).is_file()


def test_same_seed_same_bytes(tmp_path: Path, demo_root: Path) -> None:
    write_demo_dataset(tmp_path, {"train": 400, "val": 16, "test": 40}, normal_share=0.4, seed=3)
    first = sorted(demo_root.glob("chest_xray/train/*/*.jpeg"))[:20]
    for path in first:
        again = tmp_path / path.relative_to(demo_root)
        assert again.read_bytes() == path.read_bytes()


def test_pneumonia_opacities_sit_in_the_lungs_normal_ones_do_not(demo_root: Path) -> None:
    """Lungs span the film's middle rows; NORMAL opacities sit over the shoulders or the abdomen, never there."""
    for label in ("PNEUMONIA", "NORMAL"):
        for path in sorted(demo_root.glob(f"chest_xray/train/{label}/*.jpeg"))[:30]:
            mask = np.asarray(Image.open(mask_path_for(path))) > 0
            assert mask.any(), path.name
            rows = np.nonzero(mask)[0] / mask.shape[0]
            mid_share = np.mean((rows > 0.35) & (rows < 0.65))
            if label == "NORMAL":
                assert mid_share == 0.0, path.name
            else:
                assert np.mean((rows > 0.12) & (rows < 0.8)) > 0.9, path.name


def test_global_intensity_statistics_do_not_separate_the_classes(demo_root: Path) -> None:
    features, labels = [], []
    for path in sorted(demo_root.glob("chest_xray/*/*/*.jpeg")):
        pixels = np.asarray(Image.open(path), dtype=np.float32)
        histogram = np.histogram(pixels, bins=32, range=(0, 256))[0] / pixels.size
        features.append([pixels.mean(), pixels.std(), *histogram])
        labels.append(path.parent.name == "PNEUMONIA")
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    scores = cross_val_predict(classifier, np.array(features), np.array(labels), cv=folds, method="predict_proba")
    assert roc_auc_score(labels, scores[:, 1]) <= 0.65
